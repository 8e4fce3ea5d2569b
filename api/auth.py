"""Who is calling: bearer tokens for the REST API, a signed session cookie for the dashboard.

* **REST API**: `Authorization: Bearer <token>`; tokens come from `ITERLOOP_API_TOKENS` (may
  read and act) and `ITERLOOP_API_READ_TOKENS` (may only read). Every configured token is
  compared with `hmac.compare_digest`, so timing does not tell which one nearly matched.
* **Dashboard**: `/login` takes a token once and sets `iterloop_session`, an HttpOnly,
  SameSite=Strict cookie holding the token's fingerprint and an expiry, signed with the
  session secret; the token itself never goes into the cookie. Removing a token from the
  configuration ends its sessions. The cookie also lets the dashboard's own scripts read the
  API (GET requests: run state, the event stream); changing runs through `/api/...` always
  needs the bearer token, and the dashboard's forms carry a CSRF token tied to the session.
* **No auth** (`iterloop api --no-auth`, loopback addresses only): everyone may do everything.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import Depends, Request, Response

from api.deps import api_settings
from api.errors import Forbidden, Unauthorized
from api.settings import ApiSettings, ApiToken

SESSION_COOKIE = "iterloop_session"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: ``name`` is recorded as who answered a gate."""

    name: str
    can_write: bool
    via: Literal["token", "session", "open"]


def recorded_answerer(principal: str, given: str | None) -> str:
    """Who an answer is recorded as: the caller's token name, plus the name the request gives when it
    differs (`ada (for grace)`), so a request can say on whose behalf it answers but never forge who."""
    named = (given or "").strip()[:200]
    return principal if not named or named == principal else f"{principal} (for {named})"


def token_fingerprint(token: ApiToken) -> str:
    return hashlib.sha256(token.secret.encode()).hexdigest()[:24]


def match_token(settings: ApiSettings, presented: str) -> ApiToken | None:
    """The configured token equal to ``presented``; every token is compared in constant time."""
    found = None
    given = presented.encode()
    for token in settings.tokens:
        if hmac.compare_digest(token.secret.encode(), given):
            found = token
    return found


def _sign(settings: ApiSettings, text: str) -> str:
    return hmac.new(settings.session_secret, text.encode(), hashlib.sha256).hexdigest()


def session_cookie_value(settings: ApiSettings, token: ApiToken, *, now: float | None = None) -> str:
    expires = int((now or time.time()) + settings.session_hours * 3600)
    body = f"{token_fingerprint(token)}.{expires}"
    return f"{body}.{_sign(settings, body)}"


def session_principal(settings: ApiSettings, value: str, *, now: float | None = None) -> Principal | None:
    """The caller a session cookie stands for, or None if it is forged, expired or its token is gone."""
    fingerprint, _, rest = value.partition(".")
    expires_text, _, signature = rest.partition(".")
    if not fingerprint or not expires_text.isdigit() or not signature:
        return None
    if not hmac.compare_digest(_sign(settings, f"{fingerprint}.{expires_text}"), signature):
        return None
    if int(expires_text) < (now or time.time()):
        return None
    token = next((t for t in settings.tokens if hmac.compare_digest(token_fingerprint(t), fingerprint)), None)
    return Principal(token.name, token.can_write, "session") if token else None


def set_session(response: Response, request: Request, settings: ApiSettings, token: ApiToken) -> None:
    response.set_cookie(SESSION_COOKIE, session_cookie_value(settings, token), max_age=int(settings.session_hours * 3600),
                        httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/")


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def csrf_token(request: Request, settings: ApiSettings) -> str:
    """The token the dashboard's forms carry: tied to the session cookie (or to the app without auth)."""
    session = request.cookies.get(SESSION_COOKIE, "") if not settings.auth_disabled else "open"
    return _sign(settings, f"csrf.{session}")[:40]


def check_csrf(request: Request, settings: ApiSettings, presented: str) -> None:
    if not presented or not hmac.compare_digest(csrf_token(request, settings), presented):
        raise Forbidden("the form's CSRF token is missing or stale; reload the page and submit again",
                        code="csrf_failed")


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'", code="bad_authorization")
    return value.strip()


def identify(request: Request, settings: ApiSettings) -> Principal | None:
    """The caller, from a bearer token or else the session cookie; None when neither is given.

    A wrong bearer token is a 401 at once (it never falls back to the cookie)."""
    if settings.auth_disabled:
        return Principal("local", True, "open")
    presented = bearer_token(request)
    if presented is not None:
        token = match_token(settings, presented)
        if token is None:
            raise Unauthorized("the bearer token is not valid", code="invalid_token")
        return Principal(token.name, token.can_write, "token")
    cookie = request.cookies.get(SESSION_COOKIE)
    return session_principal(settings, cookie) if cookie else None


def reader(request: Request, settings: ApiSettings = Depends(api_settings)) -> Principal:
    """Dependency of the API's read endpoints: a bearer token, or a dashboard session."""
    principal = identify(request, settings)
    if principal is None:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>' "
                           "(tokens are configured with ITERLOOP_API_TOKENS)", code="missing_token")
    return principal


def writer(request: Request, settings: ApiSettings = Depends(api_settings)) -> Principal:
    """Dependency of the API's endpoints that change runs: a bearer token allowed to write."""
    principal = reader(request, settings)
    if principal.via == "session":
        raise Forbidden("a dashboard session may only read through the API; send the bearer token to change runs "
                        "(or use the dashboard's forms)", code="bearer_required")
    if not principal.can_write:
        raise Forbidden(f"token '{principal.name}' may only read (ITERLOOP_API_READ_TOKENS); starting, answering, "
                        "retrying and cancelling runs needs a token from ITERLOOP_API_TOKENS", code="read_only_token")
    return principal
