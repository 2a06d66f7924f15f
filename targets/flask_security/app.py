"""The Harbor View Clinic patient portal: Flask-Security's stock sign-in, two-factor, recovery
code, change and reset views and templates, unmodified, plus three patient pages of its own.

Served by gunicorn (``gunicorn_conf.py``) from the target's own virtualenv::

    FLASK_SECURITY_TARGET_STATE=/path/to/state gunicorn 'targets.flask_security.app:create_app()'

The state directory holds ``settings.json`` (the configuration's name and the per-run keys,
written by the provider), the SQLite database (``seed.py`` fills it) and nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, redirect, render_template, session, url_for
from flask_mail import Mail
from flask_security import Security, SQLAlchemyUserDatastore, auth_required, current_user
from flask_wtf.csrf import generate_csrf

from targets.flask_security.config import CAREFUL_HEADERS, PORTAL_NAME, configuration
from targets.flask_security.models import PatientRecord, Role, User, db

STATE_VARIABLE = "FLASK_SECURITY_TARGET_STATE"


def state_dir() -> Path:
    value = os.environ.get(STATE_VARIABLE)
    if not value:
        raise RuntimeError(f"{STATE_VARIABLE} must name the portal's state directory")
    return Path(value)


def load_settings(state: Path) -> dict[str, Any]:
    settings: dict[str, Any] = json.loads((state / "settings.json").read_text(encoding="utf-8"))
    return settings


def create_app() -> Flask:
    state = state_dir()
    settings = load_settings(state)
    name = str(settings["configuration"])
    app = Flask(__name__)
    app.config.update(configuration(name, settings, state))
    db.init_app(app)
    Mail(app)
    # Flask-Security's forms carry Flask-WTF CSRF tokens; the portal's own sign-out form too
    # (checked where SECURITY_LOGOUT_CSRF is on).
    app.jinja_env.globals["csrf_token"] = generate_csrf
    if name == "careful":
        app.before_request(_permanent_session)
        app.after_request(_careful_headers)
    Security(app, SQLAlchemyUserDatastore(db, User, Role))
    _register_pages(app)
    return app


def _permanent_session() -> None:
    # A permanent session's cookie carries PERMANENT_SESSION_LIFETIME and, with
    # SESSION_REFRESH_EACH_REQUEST, is re-signed on every request: Flask refuses it on the
    # server once its signature is older than the lifetime, an idle timeout.
    session.permanent = True


def _careful_headers(response: Response) -> Response:
    for header, value in CAREFUL_HEADERS.items():
        response.headers.setdefault(header, value)
    if response.mimetype == "text/html":
        # Pages may carry patient data: never stored (Flask-Security's own views already say
        # "private, no-store").
        response.headers["Cache-Control"] = "no-store"
    return response


def _register_pages(app: Flask) -> None:
    @app.context_processor
    def portal_name() -> dict[str, str]:
        return {"portal_name": PORTAL_NAME}

    @app.get("/")
    def index() -> Any:
        if current_user.is_authenticated:
            return redirect(url_for("dashboard"))
        return redirect(url_for("security.login"))

    @app.get("/dashboard")
    @auth_required()
    def dashboard() -> str:
        return render_template("dashboard.html", record=_record())

    @app.get("/results")
    @auth_required()
    def results() -> str:
        return render_template("results.html", record=_record())

    @app.get("/messages")
    @auth_required()
    def messages() -> str:
        return render_template("messages.html", record=_record())


def _record() -> PatientRecord | None:
    record: PatientRecord | None = db.session.execute(
        db.select(PatientRecord).filter_by(user_id=current_user.id)
    ).scalar_one_or_none()
    return record


StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def create_redirect_app() -> WsgiApp:
    """What the careful deployment serves on plain HTTP: a permanent redirect to HTTPS."""
    origin = os.environ["FLASK_SECURITY_TARGET_HTTPS_ORIGIN"].rstrip("/")

    def redirect_to_https(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = quote(environ.get("PATH_INFO", "/") or "/")
        query = environ.get("QUERY_STRING", "")
        location = origin + path + (f"?{query}" if query else "")
        start_response(
            "301 Moved Permanently",
            [("Location", location), ("Content-Length", "0"), ("Cache-Control", "no-store")],
        )
        return [b""]

    return redirect_to_https
