"""Run the portal: HTTPS and plain-HTTP listeners under uvicorn, one ready line on stdout."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import uvicorn
from starlette.types import ASGIApp

from reference_portal.app import Portal, https_redirect_app
from reference_portal.auth import Authenticator
from reference_portal.db import Database
from reference_portal.mail import Mailer, MailSink
from reference_portal.mfa import seed_factors
from reference_portal.password_pages import seed_emails
from reference_portal.passwords import TruncatingAuthenticator
from reference_portal.proxy import seed_grants
from reference_portal.records import Records
from reference_portal.seed import SEED_ACCOUNTS, seed
from reference_portal.sessions import SessionStore
from reference_portal.settings import (
    DEFAULT_ABSOLUTE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    PortalSettings,
    SsoConfig,
)
from reference_portal.tls import generate_tls_material, server_context

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_SECONDS = 5


@dataclass(frozen=True)
class ServeOptions:
    weaknesses: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    https_port: int = 0
    http_port: int = 0
    state_dir: Path | None = None
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    absolute_timeout: float = DEFAULT_ABSOLUTE_TIMEOUT
    sso: SsoConfig | None = None


class _Listener(uvicorn.Server):
    """A uvicorn server that reports when it listens and leaves signals to :func:`serve`."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Two servers share one process; each capturing signals would re-raise them on exit.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


def bind_listener(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _url(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}/"


def _uvicorn_config(app: ASGIApp, context: ssl.SSLContext | None) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",
        http="h11",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        ssl_context_factory=(lambda _config, _default: context) if context else None,
    )


UNUSED_OCSP_URL = "http://127.0.0.1:9/ocsp"
# Names a file that receives every issued session token, for the suite's redaction test.
ISSUED_TOKEN_LOG_VARIABLE = "REFERENCE_PORTAL_ISSUED_TOKENS"


def serve(
    options: ServeOptions,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
) -> int:
    env = os.environ if env is None else env
    stdout = stdout or sys.stdout
    owns_state_dir = options.state_dir is None
    if options.state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix="reference-portal-")).resolve()
    else:
        state_dir = options.state_dir.resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
    sockets: list[socket.socket] = []
    mail_sink: MailSink | None = None
    try:
        try:
            https_sock = bind_listener(options.host, options.https_port)
            sockets.append(https_sock)
            http_sock = bind_listener(options.host, options.http_port)
            sockets.append(http_sock)
        except OSError as exc:
            print(f"reference_portal: cannot listen on {options.host}: {exc}", file=sys.stderr)
            return 1
        https_port = https_sock.getsockname()[1]
        http_port = http_sock.getsockname()[1]
        settings = PortalSettings(
            weaknesses=options.weaknesses,
            idle_timeout=options.idle_timeout,
            absolute_timeout=options.absolute_timeout,
            host=options.host,
            https_port=https_port,
            sso=options.sso,
        )

        material = generate_tls_material(
            state_dir,
            host=options.host,
            leaf_lifetime=dt.timedelta(days=settings.leaf_lifetime_days),
            # Never contacted: the certificate only has to name a responder.
            ocsp_url=UNUSED_OCSP_URL if settings.certificate_names_ocsp_responder else None,
        )
        db = Database(state_dir / "portal.sqlite3")
        db.migrate()
        records = Records(db)
        kept = settings.password_kept_characters
        authenticator = (
            TruncatingAuthenticator(records, keep=kept) if kept else Authenticator(records)
        )
        seed(db, authenticator.hash_password, env)
        seed_factors(db, settings, env)
        seed_grants(db)
        seed_emails(db, {account.username: account.email for account in SEED_ACCOUNTS})
        mail_sink = MailSink(state_dir / "maildir").start()
        token_log = env.get(ISSUED_TOKEN_LOG_VARIABLE)
        sessions = SessionStore(
            db,
            idle_timeout=settings.effective_idle_timeout,
            absolute_timeout=settings.effective_absolute_timeout,
            token_bytes=settings.session_token_bytes,
            issued_token_log=Path(token_log) if token_log else None,
        )
        sessions.purge_expired()
        mailer = Mailer(mail_sink.host, mail_sink.port)
        portal = Portal(settings, records, sessions, authenticator, mailer=mailer)

        ready: dict[str, Any] = {
            "https_url": _url("https", options.host, https_port),
            "http_url": _url("http", options.host, http_port),
            "host": options.host,
            "https_port": https_port,
            "http_port": http_port,
            "ca_file": str(material.ca_file),
            "state_dir": str(state_dir),
            "weaknesses": list(settings.weaknesses),
            "pid": os.getpid(),
            "maildir": str(mail_sink.maildir),
            "smtp_port": mail_sink.port,
        }
        tls_context = server_context(
            material,
            legacy_protocols=settings.tls_allows_legacy_protocols,
            extra_ciphers=settings.tls_extra_ciphers,
        )
        https_server = _Listener(_uvicorn_config(portal.asgi_app(), tls_context))
        plain_app = (
            https_redirect_app(settings)
            if settings.plain_http_redirects
            else portal.asgi_app(plain_http=True)
        )
        http_server = _Listener(_uvicorn_config(plain_app, None))
        return asyncio.run(
            _run_listeners([(https_server, https_sock), (http_server, http_sock)], ready, stdout)
        )
    finally:
        # A second signal during clean-up must not leave the state dir behind.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        for sock in sockets:
            sock.close()
        if mail_sink is not None:
            mail_sink.stop()
        if owns_state_dir:
            shutil.rmtree(state_dir, ignore_errors=True)


async def _wait_listening(servers: list[_Listener]) -> None:
    for server in servers:
        await server.listening.wait()


async def _run_listeners(
    listeners: list[tuple[_Listener, socket.socket]],
    ready: Mapping[str, Any],
    stdout: TextIO,
) -> int:
    loop = asyncio.get_running_loop()
    servers = [server for server, _ in listeners]

    def request_stop() -> None:
        for server in servers:
            server.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop)

    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]), name=f"listener-{index}")
        for index, (server, sock) in enumerate(listeners)
    ]
    all_listening = asyncio.create_task(_wait_listening(servers))
    await asyncio.wait([all_listening, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if all_listening.done() and not any(server.should_exit for server in servers):
        stdout.write(json.dumps(dict(ready)) + "\n")
        stdout.flush()
        log.info("serving %s and %s", ready["https_url"], ready["http_url"])
    else:
        all_listening.cancel()
        request_stop()

    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    for failure in failures:
        log.error("listener failed: %r", failure)
    return 1 if failures else 0
