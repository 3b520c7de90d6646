"""The TLS context the delivery client verifies PromptLayer's certificate with.

The same trust as the PromptLayer SDK's own HTTP clients: certifi's CA bundle, unless
`SSL_CERT_FILE` (a PEM bundle) or `SSL_CERT_DIR` (a hashed directory, as `c_rehash` makes)
says otherwise, which is how a corporate TLS-inspecting proxy's CA is added. Both may be
set; then both are trusted. Without certifi installed, the system's store is used.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

__all__ = ["verify_context"]


def verify_context(environ: Mapping[str, str]) -> ssl.SSLContext:
    """A verifying client context (hostnames checked, TLS 1.2+) for HTTP/1.1 over TLS."""
    cafile = environ.get("SSL_CERT_FILE") or None
    capath = environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        cafile = _certifi_bundle()
    try:
        context = ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load CA certificates from {cafile or capath}: {exc}") from exc
    # We speak HTTP/1.1 only: say so, so a server that offers h2 does not pick it.
    context.set_alpn_protocols(["http/1.1"])
    return context


def _certifi_bundle() -> str | None:
    try:
        import certifi
    except ImportError:
        return None
    return str(certifi.where())
