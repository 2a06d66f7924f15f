"""The portal's Starlette application and the plain-HTTP redirect application."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from reference_portal.auth import Authenticator
from reference_portal.headers import SecurityHeadersMiddleware
from reference_portal.lockout import SignInGuard
from reference_portal.mail import Mailer
from reference_portal.mfa import MfaPages
from reference_portal.password_pages import PasswordPages
from reference_portal.proxy import ProxyPages
from reference_portal.records import Account, Patient, Records
from reference_portal.session_admin import SignInLog
from reference_portal.sessions import Session, SessionStore, csrf_matches
from reference_portal.settings import PortalSettings
from reference_portal.sso import SsoSignIn

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

DEFAULT_LANDING = "/dashboard"
FORM_EXPIRED_ERROR = "Your sign-in form expired. Please try again."
MAX_JSON_BODY = 16 * 1024

ERROR_PAGES: Mapping[int, tuple[str, str]] = {
    400: ("Bad request", "The portal could not understand that request."),
    403: ("Request refused", "The form you sent has expired. Go back, reload the page and retry."),
    404: ("Page not found", "We could not find the page you asked for."),
    405: ("Not allowed", "That page cannot be used this way."),
    500: ("Something went wrong", "The portal had a problem. Please try again in a moment."),
}

_UNSET = object()


@dataclass(frozen=True)
class SignedIn:
    session: Session
    account: Account
    patient: Patient | None


def safe_next(value: str | None) -> str | None:
    """Accept only a local absolute path, so ``next`` cannot redirect off-site."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def _format_date(value: dt.date) -> str:
    return f"{value.day} {value:%B %Y}"


def _format_datetime(value: dt.datetime) -> str:
    return f"{value:%A} {value.day} {value:%B %Y} at {value:%H:%M}"


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["long_date"] = _format_date
    env.filters["long_datetime"] = _format_datetime
    env.filters["epoch_datetime"] = lambda seconds: _format_datetime(
        dt.datetime.fromtimestamp(seconds)
    )
    return Jinja2Templates(env=env)


class Portal:
    """Routes and request handling; sync handlers run in Starlette's thread pool."""

    def __init__(
        self,
        settings: PortalSettings,
        records: Records,
        sessions: SessionStore,
        authenticator: Authenticator,
        *,
        now: Callable[[], dt.datetime] = dt.datetime.now,
        mailer: Mailer | None = None,
    ) -> None:
        self.settings = settings
        self.records = records
        self.sessions = sessions
        self.authenticator = authenticator
        self.templates = _templates()
        self._now = now
        self.sign_in_log = SignInLog(sessions.database)
        self.mailer = mailer
        self.guard = SignInGuard(sessions.database, records, authenticator, settings)
        self.mfa = MfaPages(self)
        self.proxy = ProxyPages(self)
        # SSO mode: the provider signs patients in; the password and MFA pages are its business.
        self.sso = SsoSignIn(self, settings.sso) if settings.sso is not None else None

    def asgi_app(self, *, plain_http: bool = False) -> ASGIApp:
        sign_in_routes: list[BaseRoute]
        if self.sso is None:
            sign_in_routes = [
                Route("/login", self.login_submit, methods=["POST"]),
                Route("/app/login", self.spa_login_page, methods=["GET"]),
                Route("/api/login", self.api_login, methods=["POST"]),
                *PasswordPages(self, self.mailer).routes(),
                *self.mfa.routes(),
            ]
        else:
            sign_in_routes = [*self.sso.routes()]
        routes = [
            Route("/", self.home, methods=["GET"]),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/dashboard", self.dashboard, methods=["GET"]),
            Route("/results", self.results, methods=["GET"]),
            Route("/messages", self.messages, methods=["GET"]),
            Route("/appointments", self.appointments, methods=["GET"]),
            Route("/api/me", self.api_me, methods=["GET"]),
            Route("/account/sessions", self.account_sessions, methods=["GET"]),
            Route("/account/sessions/end-others", self.end_other_sessions, methods=["POST"]),
            *sign_in_routes,
            *self.proxy.routes(),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        ]
        app = Starlette(
            routes=routes,
            exception_handlers={HTTPException: self.http_error, Exception: self.server_error},
        )
        return SecurityHeadersMiddleware(
            app,
            # HSTS must never be sent over plain HTTP (RFC 6797 7.2).
            hsts=None if plain_http else self.settings.hsts_header,
            csp=self.settings.content_security_policy,
            nosniff=self.settings.sends_nosniff,
        )

    # -- sessions and cookies ------------------------------------------------------------

    def current_session(self, request: Request) -> Session | None:
        cached = getattr(request.state, "portal_session", _UNSET)
        if cached is not _UNSET:
            return cached  # type: ignore[return-value]
        session = self.sessions.load(request.cookies.get(self.settings.session_cookie_name))
        request.state.portal_session = session
        return session

    def signed_in(self, request: Request) -> SignedIn | None:
        session = self.current_session(request)
        if session is None or session.account_id is None:
            return None
        account = self.records.account_by_id(session.account_id)
        if account is None:
            return None
        patient = self.records.patient(account.patient_id) if account.patient_id else None
        return SignedIn(session=session, account=account, patient=patient)

    def _cookie_attributes(self) -> dict[str, Any]:
        if self.settings.session_cookie_hardened:
            return {"path": "/", "secure": True, "httponly": True, "samesite": "lax"}
        return {"path": "/", "secure": False, "httponly": False, "samesite": None}

    def set_session_cookie(self, response: Response, token: str) -> None:
        response.set_cookie(self.settings.session_cookie_name, token, **self._cookie_attributes())

    def expire_session_cookie(self, response: Response) -> None:
        response.set_cookie(
            self.settings.session_cookie_name,
            "",
            max_age=0,
            expires=0,
            **self._cookie_attributes(),
        )

    def pre_sign_in_session(self, request: Request) -> tuple[Session, str | None]:
        """Reuse the visitor's anonymous session or start one; returns a token to set, if new."""
        session = self.current_session(request)
        if session is not None and not session.authenticated:
            return session, None
        token, session = self.sessions.create(None)
        return session, token

    def complete_sign_in(self, request: Request, pre_session: Session, account: Account) -> str:
        user_agent = request.headers.get("user-agent", "")
        address = request.client.host if request.client else ""
        self.sign_in_log.record(account.id, time.time(), user_agent, address)
        log.info("sign-in succeeded for account id %s", account.id)
        presented = request.cookies.get(self.settings.session_cookie_name)
        if not self.settings.rotates_session_at_sign_in and presented:
            self.sessions.promote(pre_session, account.id)
            return presented
        # Session fixation defence: the pre-sign-in ID is discarded, never promoted.
        self.sessions.delete(pre_session)
        token, _ = self.sessions.create(account.id, user_agent)
        return token

    def landing_after_sign_in(self, target: str, token: str) -> str:
        if self.settings.token_in_url:
            return f"{target}{'&' if '?' in target else '?'}sid={token}"
        return target

    # -- rendering -----------------------------------------------------------------------

    def render(
        self, request: Request, template: str, context: dict[str, Any], status_code: int = 200
    ) -> Response:
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)

    def render_signed_in(
        self, request: Request, template: str, who: SignedIn, active: str, **context: Any
    ) -> Response:
        base = {
            "account": who.account,
            "patient": who.patient,
            "csrf_token": who.session.csrf_token,
            "active": active,
        }
        return self.render(request, template, base | context)

    def render_login(
        self,
        request: Request,
        session: Session,
        *,
        next_path: str | None = None,
        error_id: str | None = None,
        error_text: str | None = None,
        status_code: int = 200,
    ) -> Response:
        return self.render(
            request,
            "login.html",
            {
                "csrf_token": session.csrf_token,
                "next_path": next_path,
                "signed_out": request.query_params.get("signed_out") == "1",
                "error_id": error_id,
                "error_text": error_text,
            },
            status_code=status_code,
        )

    @staticmethod
    def to_sign_in(request: Request) -> Response:
        return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}", status_code=303)

    # -- pages ---------------------------------------------------------------------------

    def home(self, request: Request) -> Response:
        target = DEFAULT_LANDING if self.signed_in(request) else "/login"
        return RedirectResponse(target, status_code=303)

    def login_page(self, request: Request) -> Response:
        next_path = safe_next(request.query_params.get("next"))
        if self.signed_in(request):
            return RedirectResponse(next_path or DEFAULT_LANDING, status_code=303)
        if self.sso is not None:
            return self.sso.start(request, next_path or DEFAULT_LANDING)
        second_factor = self.mfa.pending_redirect(request)
        if second_factor is not None:
            return second_factor
        session, new_token = self.pre_sign_in_session(request)
        response = self.render_login(request, session, next_path=next_path)
        if new_token:
            self.set_session_cookie(response, new_token)
        return response

    async def login_submit(self, request: Request) -> Response:
        async with request.form() as form:
            fields = {
                name: value if isinstance(value := form.get(name), str) else ""
                for name in ("username", "password", "csrf_token", "next")
            }
        return await run_in_threadpool(self._login_submit, request, fields)

    def _login_submit(self, request: Request, fields: Mapping[str, str]) -> Response:
        next_path = safe_next(fields["next"])
        session = self.current_session(request)
        if session is None or not csrf_matches(session, fields["csrf_token"]):
            token, fresh = self.sessions.create(None)
            response = self.render_login(
                request,
                fresh,
                next_path=next_path,
                error_id="sign-in-expired",
                error_text=FORM_EXPIRED_ERROR,
                status_code=403,
            )
            self.set_session_cookie(response, token)
            return response
        attempt = self.guard.attempt(fields["username"], fields["password"])
        account = attempt.account
        if account is None:
            return self.render_login(
                request,
                session,
                next_path=next_path,
                error_id="sign-in-error",
                error_text=attempt.error_text,
                status_code=401,
            )
        if self.mfa.required_for(account):
            token = self.mfa.start_challenge(request, session, account)
            second = "/login/mfa" + (f"?next={quote(next_path, safe='/')}" if next_path else "")
            response = RedirectResponse(second, status_code=303)
            self.set_session_cookie(response, token)
            return response
        token = self.complete_sign_in(request, session, account)
        target = self.landing_after_sign_in(next_path or DEFAULT_LANDING, token)
        response = RedirectResponse(target, status_code=303)
        self.set_session_cookie(response, token)
        return response

    async def logout(self, request: Request) -> Response:
        async with request.form() as form:
            submitted = form.get("csrf_token")
            csrf = submitted if isinstance(submitted, str) else ""
        return await run_in_threadpool(self._logout, request, csrf)

    def _logout(self, request: Request, csrf: str) -> Response:
        session = self.current_session(request)
        target = "/login?signed_out=1"
        if session is not None:
            if not csrf_matches(session, csrf):
                return self.error_page(request, 403)
            if self.sso is not None:
                # RP-initiated logout: the provider ends its session too, then sends the
                # browser back here. Read before the session (and its ID token) is deleted.
                target = self.sso.logout_target(session)
            if self.settings.logout_ends_server_session:
                self.sessions.delete(session)
        response = RedirectResponse(target, status_code=303)
        self.expire_session_cookie(response)
        return response

    def dashboard(self, request: Request) -> Response:
        who = self.signed_in(request)
        if who is None:
            return self.to_sign_in(request)
        upcoming = []
        unread = 0
        if who.patient:
            upcoming = self.records.upcoming_appointments(who.patient.id, self._now())
            unread = sum(1 for message in self.records.messages(who.patient.id) if message.unread)
        return self.render_signed_in(
            request,
            "dashboard.html",
            who,
            "/dashboard",
            next_appointment=upcoming[0] if upcoming else None,
            unread_count=unread,
        )

    def results(self, request: Request) -> Response:
        who = self.signed_in(request)
        if who is None:
            return self.to_sign_in(request)
        results = self.records.lab_results(who.patient.id) if who.patient else []
        return self.render_signed_in(request, "results.html", who, "/results", results=results)

    def messages(self, request: Request) -> Response:
        who = self.signed_in(request)
        if who is None:
            return self.to_sign_in(request)
        messages = self.records.messages(who.patient.id) if who.patient else []
        return self.render_signed_in(request, "messages.html", who, "/messages", messages=messages)

    def appointments(self, request: Request) -> Response:
        who = self.signed_in(request)
        if who is None:
            return self.to_sign_in(request)
        upcoming = (
            self.records.upcoming_appointments(who.patient.id, self._now()) if who.patient else []
        )
        return self.render_signed_in(
            request, "appointments.html", who, "/appointments", appointments=upcoming
        )

    def spa_login_page(self, request: Request) -> Response:
        if self.signed_in(request):
            return RedirectResponse(DEFAULT_LANDING, status_code=303)
        session, new_token = self.pre_sign_in_session(request)
        response = self.render(request, "spa_login.html", {"csrf_token": session.csrf_token})
        if new_token:
            self.set_session_cookie(response, new_token)
        return response

    # -- active sessions and recent sign-ins (SESS_REVOKE) ---------------------------------

    def account_sessions(self, request: Request) -> Response:
        who = self.signed_in(request)
        if who is None:
            return self.to_sign_in(request)
        assert who.account.id is not None
        return self.render_signed_in(
            request,
            "sessions.html",
            who,
            "/account/sessions",
            sessions=self.sessions.active_for(who.account.id),
            current_hash=who.session.token_hash,
            sign_ins=self.sign_in_log.recent(who.account.id),
            ended=request.query_params.get("ended"),
        )

    async def end_other_sessions(self, request: Request) -> Response:
        async with request.form() as form:
            submitted = form.get("csrf_token")
            csrf = submitted if isinstance(submitted, str) else ""
        return await run_in_threadpool(self._end_other_sessions, request, csrf)

    def _end_other_sessions(self, request: Request, csrf: str) -> Response:
        who = self.signed_in(request)
        if who is None:
            return self.to_sign_in(request)
        if not csrf_matches(who.session, csrf):
            return self.error_page(request, 403)
        ended = len(self.sessions.active_for(who.account.id)) - 1
        if self.settings.ends_other_sessions:
            ended = self.sessions.end_others(who.session)
        return RedirectResponse(f"/account/sessions?ended={max(ended, 0)}", status_code=303)

    # -- JSON API ------------------------------------------------------------------------

    def api_me(self, request: Request) -> Response:
        who = self.signed_in(request)
        if who is None:
            return JSONResponse(
                {"error": "not_signed_in", "message": "Sign in to continue."}, status_code=401
            )
        patient = who.patient
        return JSONResponse(
            {
                "username": who.account.username,
                "display_name": who.account.display_name,
                "patient": {
                    "full_name": patient.full_name,
                    "date_of_birth": patient.date_of_birth.isoformat(),
                    "mrn": patient.mrn,
                }
                if patient
                else None,
            },
            headers={"Cache-Control": self.settings.patient_data_cache_control},
        )

    async def api_login(self, request: Request) -> Response:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return JSONResponse(
                {"error": "unsupported_media_type", "message": "Send JSON."}, status_code=415
            )
        body = await request.body()
        if len(body) > MAX_JSON_BODY:
            return JSONResponse(
                {"error": "too_large", "message": "Request too large."}, status_code=413
            )
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        if not isinstance(payload, dict) or not all(
            isinstance(payload.get(key), str) for key in ("username", "password")
        ):
            return JSONResponse(
                {"error": "bad_request", "message": "Send a username and a password."},
                status_code=400,
            )
        csrf = request.headers.get("x-csrf-token", "")
        return await run_in_threadpool(
            self._api_login, request, payload["username"], payload["password"], csrf
        )

    def _api_login(self, request: Request, username: str, password: str, csrf: str) -> Response:
        session = self.current_session(request)
        if session is None or not csrf_matches(session, csrf):
            return JSONResponse(
                {"error": "csrf_failed", "message": FORM_EXPIRED_ERROR + " Reload the page."},
                status_code=403,
            )
        attempt = self.guard.attempt(username, password)
        account = attempt.account
        if account is None:
            return JSONResponse(
                {"error": "invalid_credentials", "message": attempt.error_text},
                status_code=401,
            )
        if self.mfa.required_for(account):
            token = self.mfa.start_challenge(request, session, account)
            response = JSONResponse({"signed_in": False, "redirect": "/login/mfa"})
            self.set_session_cookie(response, token)
            return response
        token = self.complete_sign_in(request, session, account)
        target = self.landing_after_sign_in(DEFAULT_LANDING, token)
        response = JSONResponse({"signed_in": True, "redirect": target})
        self.set_session_cookie(response, token)
        return response

    # -- errors --------------------------------------------------------------------------

    def error_page(
        self, request: Request, status_code: int, headers: Mapping[str, str] | None = None
    ) -> Response:
        title, detail = ERROR_PAGES.get(status_code, (f"Error {status_code}", ""))
        if request.url.path.startswith("/api/"):
            slug = title.lower().replace(" ", "_")
            response: Response = JSONResponse(
                {"error": slug, "message": detail}, status_code=status_code
            )
        else:
            response = self.render(
                request,
                "error.html",
                {"title": title, "detail": detail, "status_code": status_code},
                status_code=status_code,
            )
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return self.error_page(request, exc.status_code, exc.headers)

    async def server_error(self, request: Request, exc: Exception) -> Response:
        return self.error_page(request, 500)


def https_redirect_app(settings: PortalSettings) -> ASGIApp:
    """Plain-HTTP application: 301 every request to the same path on the HTTPS listener."""
    allowed_hosts = {"localhost", "127.0.0.1", settings.host}

    async def redirect(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        host_header = ""
        for name, value in scope.get("headers", []):
            if name == b"host":
                host_header = value.decode("latin-1")
                break
        hostname = urlsplit(f"//{host_header}").hostname or ""
        # Only names this portal answers to, so the redirect cannot be pointed elsewhere.
        host = hostname if hostname in allowed_hosts else settings.host
        if ":" in host:
            host = f"[{host}]"
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        path = raw_path.decode("latin-1")
        if not path.startswith("/") or path.startswith("//"):
            path = "/"
        query = scope.get("query_string", b"").decode("latin-1")
        location = f"https://{host}:{settings.https_port}{path}" + (f"?{query}" if query else "")
        response = RedirectResponse(location, status_code=301)
        await response(scope, receive, send)

    return SecurityHeadersMiddleware(redirect, hsts=None)
