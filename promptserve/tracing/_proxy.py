"""Which proxy the delivery client goes through, from the usual environment variables.

Operators set these for a whole process, and every HTTP client reads them the same way
(curl, requests, httpx, so the PromptLayer SDK too): lower-case names first, then upper-case;
an https origin uses `https_proxy`, an http one `http_proxy`, either falls back on
`all_proxy`; an empty value counts as unset. `no_proxy` lists what goes direct, separated by
commas: `*` (everything), a host name (itself and its subdomains, also written
`.example.com` or `*.example.com`), any of these with `:port` (that port only), an IP address
or a CIDR block (`10.0.0.0/8`, `::1`, `[::1]:8080`). Names are compared as written: no DNS.
Loopback is not special (as for requests and httpx, so the SDK): an embedded backend behind
a proxy setting needs `no_proxy=127.0.0.1,localhost`, for the SDK's calls as for ours.

Only http:// proxies are spoken to (https origins are tunnelled through them with CONNECT,
http ones get absolute-form requests). Any other proxy scheme is refused when the client is
built, with a message, rather than silently bypassed.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["Proxy", "bypassed", "parse_proxy", "proxy_for"]


@dataclass(frozen=True, slots=True)
class Proxy:
    """An http proxy: where to connect, and the Proxy-Authorization value its URL implies."""

    host: str
    port: int
    authorization: str | None = None

    @property
    def label(self) -> str:
        """host:port, for messages (never the credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def proxy_for(url: str, environ: Mapping[str, str]) -> Proxy | None:
    """The proxy `url` goes through under `environ`, or None for a direct connection."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    value = _first(environ, f"{scheme}_proxy", "all_proxy")
    if value is None:
        return None
    port = parts.port or (443 if scheme == "https" else 80)
    host = parts.hostname or ""
    if bypassed(host, port, _first(environ, "no_proxy") or ""):
        return None
    return parse_proxy(value)


def parse_proxy(value: str) -> Proxy:
    """The Proxy a variable's value names (`http://user:pass@host:port`, scheme optional)."""
    parts = urlsplit(value if "://" in value else f"http://{value}")
    if parts.scheme.lower() != "http":
        raise ValueError(
            f"proxy {parts.scheme}://{parts.hostname}: only http:// proxies are supported")
    if not parts.hostname:
        raise ValueError(f"proxy {value!r} names no host")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise ValueError(f"proxy {parts.hostname}: bad port") from exc
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Proxy(parts.hostname, port, authorization)


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether `no_proxy` sends host:port direct."""
    host = host.lower().strip("[]").rstrip(".")
    address = _address(host)
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        name, entry_port = _split_port(entry)
        if not name or (entry_port is not None and entry_port != port):
            continue
        if address is not None:
            if _in_network(address, name):
                return True
            continue
        name = name.lstrip("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _first(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        for key in (name, name.upper()):
            value = environ.get(key, "").strip()
            if value:
                return value
    return None


def _split_port(entry: str) -> tuple[str, int | None]:
    """("host", port) of `host:port`, `[v6]:port`; a bare IPv6 address or CIDR keeps no port."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        return name, _port(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        return name, _port(port)
    return entry, None


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() else -1  # -1: a port that matches nothing


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _in_network(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        return address in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False  # a host name: an address never matches one (no DNS)
