"""Which redirects the delivery client follows; every other 3xx is a failure that says why.

Every call it makes is a POST whose body is the log, so:
- 307 and 308 keep the method and the body: followed, with the same body and headers.
- 301 and 302 let a client turn the POST into a GET without its body, and 303 asks it to: the
  log would be gone while the GET answered 200. Never followed: a RedirectError naming the
  new address. Delivery keeps the log (spool) for when the address is fixed.
- Other 3xx (300, 304, 305, 306) give a POST nowhere to go: RedirectError as well.
- Only to the same origin (scheme, host, port). Anywhere else would get our API key
  (X-API-KEY) and the log, and PROMPTLAYER_BASE_URL is the operator's explicit choice: the
  error names the new address, to be set there.
- At most MAX_REDIRECTS hops in one post, so a redirect loop ends.
"""

from __future__ import annotations

from urllib.parse import quote, urljoin, urlsplit

from promptserve.tracing._http_errors import RedirectError

__all__ = ["FOLLOWED", "MAX_REDIRECTS", "Origin", "origin_of", "redirect_target"]

MAX_REDIRECTS = 5
FOLLOWED = frozenset({307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin:
    """(scheme, host, port) of an absolute http(s) URL, the port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def redirect_target(status: int, location: str | None, *, url: str) -> str:
    """The request target (path and query) a 3xx answer to a POST of `url` sends us to.

    Raises RedirectError for a redirect not followed (see the module docstring).
    """
    where = urljoin(url, location) if location else None
    if status not in FOLLOWED:
        changes = " (a POST would become a GET without its body)" if status in (301, 302, 303) \
            else ""
        raise RedirectError(
            f"HTTP {status} to {where or 'nowhere'}{changes}: not followed, the post failed; "
            "if PromptLayer moved, set PROMPTLAYER_BASE_URL to the new address",
            status=status, location=where)
    if where is None:
        raise RedirectError(f"HTTP {status} without a Location", status=status, location=None)
    if origin_of(where) != origin_of(url):
        raise RedirectError(
            f"HTTP {status} to {where}, another origin: not followed (it would get the API key "
            "and the log); set PROMPTLAYER_BASE_URL to it if PromptLayer moved there",
            status=status, location=where)
    parts = urlsplit(where)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # What a server put in Location goes on our request line: escape what may not be there.
    return quote(target, safe="/?&=%:@!$'()*+,;~[]")
