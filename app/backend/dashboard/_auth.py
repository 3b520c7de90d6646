"""Dashboard sign-in: the backend's API key buys a signed session cookie; CSRF tokens for forms.

The cookie never holds the key: it holds `<expiry>.<HMAC(key, expiry)>`, so it lapses on its
own and changes when the key changes. Form posts carry a CSRF token: before sign-in a random
double-submit token (cookie + hidden field), after sign-in an HMAC of the session token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from fastapi import Request, Response

from app.backend.api._http import api_key_of, key_ring_of
from app.backend.errors import Unauthorized

__all__ = [
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "authenticated",
    "check_key",
    "clear_session",
    "cookie_path",
    "csrf_token",
    "issue_session",
    "new_login_csrf",
    "require_api_auth",
    "same_token",
    "session_of",
    "set_login_csrf",
]

SESSION_COOKIE = "promptserve_dashboard"
LOGIN_CSRF_COOKIE = "promptserve_login_csrf"
SESSION_SECONDS = 12 * 3600


def _mac(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def cookie_path(request: Request) -> str:
    """The backend's root path, so the cookie reaches both /dashboard and /api when mounted."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/") + "/"


def check_key(request: Request, given: object) -> bool:
    """Whether `given` is the backend key (constant time; False for a non-string)."""
    return key_ring_of(request).allows(given)


def _valid_session(request: Request, token: str) -> bool:
    expiry, _, mac = token.partition(".")
    if not expiry.isdigit() or int(expiry) < time.time():
        return False
    expected = _mac(api_key_of(request), f"session:{expiry}")
    return hmac.compare_digest(mac.encode(), expected.encode())


def session_of(request: Request) -> str | None:
    """The request's valid session token, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if token and _valid_session(request, token):
        return token
    return None


def authenticated(request: Request) -> bool:
    """Signed in by cookie, or presenting the key in X-API-KEY (for scripts)."""
    header = request.headers.get("x-api-key")
    if header is not None and check_key(request, header):
        return True
    return session_of(request) is not None


def require_api_auth(request: Request) -> None:
    """Dependency of the JSON API: 401 `{"message"}` unless authenticated."""
    if not authenticated(request):
        raise Unauthorized("sign in to the dashboard or send the X-API-KEY header")


def issue_session(request: Request, response: Response) -> None:
    """Set the session cookie on `response`."""
    expiry = str(int(time.time()) + SESSION_SECONDS)
    token = f"{expiry}.{_mac(api_key_of(request), f'session:{expiry}')}"
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_SECONDS,
        path=cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session(request: Request, response: Response) -> None:
    """Delete the session cookie."""
    response.delete_cookie(
        SESSION_COOKIE, path=cookie_path(request), httponly=True, samesite="strict"
    )


def csrf_token(request: Request, session: str) -> str:
    """The CSRF token of forms posted within `session`."""
    return _mac(api_key_of(request), f"csrf:{session}")[:40]


def new_login_csrf() -> str:
    """A fresh double-submit token for the sign-in form."""
    return secrets.token_urlsafe(24)


def same_token(expected: str, given: str) -> bool:
    """Constant-time comparison of two tokens."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))


def set_login_csrf(request: Request, response: Response, token: str) -> None:
    """Set the sign-in form's double-submit cookie."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path=cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
