"""The Flask-Security patient portal as a portal-audit target provider: a pytest plugin.

A profile with ``target: flask-security`` (the careful deployment) or
``target: flask-security-permissive`` (Flask-Security's defaults) gets the portal started for
its run: a fresh local CA and server certificate, an SMTP sink filing every e-mail in a Maildir,
the SQLite database seeded with the synthetic patients, and two gunicorn servers from the
target's own virtualenv (``.venv-flask-security``, made by ``targets/flask_security/setup.sh``):
HTTPS, and plain HTTP (a redirect to HTTPS in the careful deployment, the whole portal in the
permissive one). The provider answers portal-audit's ``pytest_portal_audit_target`` hook
(``portal/targets.py``) by duck typing and imports nothing of the audit.

Passwords and TOTP secrets are generated per run unless the environment holds them
(``FLASK_SECURITY_<ROLE>_PASSWORD``, ``FLASK_SECURITY_MFA_TOTP_SECRET``: a test that wants to
know them sets them) and reach the profile as variables, never this process's environment.
``FLASK_SECURITY_STATE_DIR`` keeps the database, mailbox and server logs in that directory
after the run; ``FLASK_SECURITY_VENV`` names another virtualenv for the portal.
"""

from __future__ import annotations

import base64
import json
import mailbox
import os
import queue
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyotp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox as MaildirHandler

from reference_portal.tls import generate_tls_material
from targets.flask_security.records import PATIENTS

# The profile's target name -> the portal's configuration (targets/flask_security/config.py).
CONFIGURATIONS = {"flask-security": "careful", "flask-security-permissive": "permissive"}

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(__file__).resolve().parent
DEFAULT_VENV = ROOT / ".venv-flask-security"
SETUP_HINT = "run `targets/flask_security/setup.sh` (or `make setup-targets`) first"
HOST = "127.0.0.1"
PREFIX = "FLASK_SECURITY_"
START_SECONDS = 120.0
STOP_SECONDS = 10.0
LOG_TAIL_LINES = 40


class TargetStartError(RuntimeError):
    """The portal, its mail sink or its seeding did not start."""


def account_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Every seeded account's password and TOTP secret: the environment's, else fresh ones.

    Fresh passwords are 24 random URL-safe characters: valid under the careful policy
    (15 characters, zxcvbn score 3), so the password checks can always put them back.
    """
    values: dict[str, str] = {}
    for patient in PATIENTS:
        variable = f"{PREFIX}{patient.key}_PASSWORD"
        values[variable] = environ.get(variable) or secrets.token_urlsafe(18)
        if patient.enrolled_in_totp:
            variable = f"{PREFIX}{patient.key}_TOTP_SECRET"
            values[variable] = environ.get(variable) or pyotp.random_base32(32)
    return values


# -- the mail sink ------------------------------------------------------------------------------


def _free_port() -> int:
    # aiosmtpd cannot bind port 0 (it connects to its port to check readiness).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class MailSink:
    """An SMTP server on 127.0.0.1 filing every message in ``maildir``."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.port = 0
        self._controller: Controller | None = None

    def start(self, attempts: int = 5) -> MailSink:
        mailbox.Maildir(self.maildir, create=True)
        last: Exception | None = None
        for _ in range(attempts):
            port = _free_port()
            controller = Controller(
                MaildirHandler(self.maildir), hostname=HOST, port=port, ready_timeout=10
            )
            try:
                controller.start()
            except (OSError, RuntimeError, TimeoutError) as exc:
                last = exc  # the port was taken meanwhile: try another
                continue
            self._controller, self.port = controller, port
            return self
        raise TargetStartError(f"the SMTP sink could not listen on {HOST}: {last}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# -- gunicorn -------------------------------------------------------------------------------------


@dataclass
class Server:
    """One gunicorn master started by the provider, and its output."""

    name: str
    process: subprocess.Popen[str]
    log_file: Path
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _reader: threading.Thread | None = None

    def __post_init__(self) -> None:
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._lines.put(line)
        except (OSError, ValueError):
            pass
        finally:
            self._lines.put(None)

    def wait_ready(self, deadline: float) -> int:
        """The port gunicorn announced, waiting at most until ``deadline`` (monotonic)."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TargetStartError(f"{self.name} was not ready within {START_SECONDS:.0f} s")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.process.wait(STOP_SECONDS)
                raise TargetStartError(f"{self.name} exited with status {self.process.returncode}")
            try:
                announced = json.loads(line)
            except ValueError:
                continue
            if isinstance(announced, dict) and announced.get("ready"):
                return int(announced["port"])

    def log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"

    def stop(self) -> None:
        """SIGTERM to the master (it stops its workers), SIGKILL to its group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                # The master was started in a session of its own: its group is its workers.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_SECONDS)
        if self._reader is not None:
            self._reader.join(STOP_SECONDS)
        if self.process.stdout is not None:
            self.process.stdout.close()


def venv_python() -> Path:
    venv = Path(os.environ.get(f"{PREFIX}VENV") or DEFAULT_VENV)
    python = venv / "bin" / "python"
    if not python.is_file() or not (venv / "bin" / "gunicorn").is_file():
        raise pytest.UsageError(
            f"the Flask-Security target's virtualenv {venv} is missing or incomplete: {SETUP_HINT}"
        )
    return python


def _child_environment(state: Path, extra: Mapping[str, str]) -> dict[str, str]:
    # Nothing of this provider's own variables (the accounts' secrets) reaches the portal.
    child = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    child.pop("PYTHONHOME", None)
    child["PYTHONPATH"] = str(ROOT)
    child["PYTHONUNBUFFERED"] = "1"
    child["FLASK_SECURITY_TARGET_STATE"] = str(state)
    child.update(extra)
    return child


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


# -- the running target ---------------------------------------------------------------------------


@dataclass
class FlaskSecurityTarget:
    """The running portal, as portal-audit's ``Target`` protocol describes it."""

    variables: dict[str, str]
    secrets: list[str]
    facts: dict[str, Any]
    state_dir: Path
    keep_state: bool
    servers: list[Server] = field(default_factory=list)
    sink: MailSink | None = None

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()
        if self.sink is not None:
            self.sink.stop()
            self.sink = None
        if not self.keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)


@pytest.hookimpl
def pytest_portal_audit_target(
    config: pytest.Config, name: str | None
) -> FlaskSecurityTarget | None:
    if name not in CONFIGURATIONS:
        return None
    python = venv_python()
    try:
        return start(CONFIGURATIONS[name], python, os.environ)
    except TargetStartError as exc:
        raise pytest.UsageError(f"the Flask-Security portal ({name}) did not start: {exc}") from exc


def start(configuration: str, python: Path, environ: Mapping[str, str]) -> FlaskSecurityTarget:
    """Start the portal in ``configuration`` (careful or permissive) on free 127.0.0.1 ports."""
    kept = environ.get(f"{PREFIX}STATE_DIR")
    if kept:
        state = Path(kept)
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
    else:
        state = Path(tempfile.mkdtemp(prefix="portal-audit-flask-security-"))
    accounts = account_values(environ)
    keys = {
        "secret_key": secrets.token_hex(32),
        "password_salt": secrets.token_hex(16),
        "totp_key": secrets.token_urlsafe(32),
        "recovery_codes_key": base64.urlsafe_b64encode(os.urandom(32)).decode("ascii"),
    }
    target = FlaskSecurityTarget(
        variables={},
        secrets=[*accounts.values(), *keys.values()],
        facts={"configuration": configuration},
        state_dir=state,
        keep_state=bool(kept),
    )
    try:
        _start(target, configuration, python, accounts, keys)
    except BaseException:
        target.stop()
        raise
    return target


def _start(
    target: FlaskSecurityTarget,
    configuration: str,
    python: Path,
    accounts: dict[str, str],
    keys: dict[str, str],
) -> None:
    state = target.state_dir
    tls = generate_tls_material(state, host=HOST)
    target.sink = MailSink(state / "maildir").start()
    settings = {"configuration": configuration, "smtp_port": target.sink.port, **keys}
    _write_private(state / "settings.json", json.dumps(settings))
    _write_private(state / "accounts.json", json.dumps(_accounts_file(accounts)))
    target.facts["versions"] = _seed(python, state)

    tls_env = {"FLASK_SECURITY_TARGET_TLS": configuration}
    https = _gunicorn(
        "the HTTPS server",
        python,
        state,
        "targets.flask_security.app:create_app()",
        ["--certfile", str(tls.chain_file), "--keyfile", str(tls.key_file)],
        tls_env,
        "https",
    )
    target.servers.append(https)
    deadline = time.monotonic() + START_SECONDS
    https_url = f"https://{HOST}:{_ready(https, deadline)}"

    plain_app = (
        "targets.flask_security.app:create_redirect_app()"
        if configuration == "careful"
        else "targets.flask_security.app:create_app()"
    )
    plain = _gunicorn(
        "the plain HTTP server",
        python,
        state,
        plain_app,
        [],
        {"FLASK_SECURITY_TARGET_HTTPS_ORIGIN": https_url},
        "http",
    )
    target.servers.append(plain)
    http_url = f"http://{HOST}:{_ready(plain, deadline)}"
    _check_answers(https, f"{https_url}/login", tls.ca_file, deadline)

    target.variables.update(accounts)
    target.variables.update(
        {
            f"{PREFIX}URL": https_url,
            f"{PREFIX}HTTP_URL": http_url,
            f"{PREFIX}CA": str(tls.ca_file),
            f"{PREFIX}MAILDIR": str(target.sink.maildir),
        }
    )
    target.facts["plain_http"] = "redirect to HTTPS" if configuration == "careful" else "portal"


def _accounts_file(accounts: Mapping[str, str]) -> dict[str, dict[str, str]]:
    entries: dict[str, dict[str, str]] = {}
    for patient in PATIENTS:
        entry = {"password": accounts[f"{PREFIX}{patient.key}_PASSWORD"]}
        if patient.enrolled_in_totp:
            entry["totp_secret"] = accounts[f"{PREFIX}{patient.key}_TOTP_SECRET"]
        entries[patient.key] = entry
    return entries


def _seed(python: Path, state: Path) -> dict[str, str]:
    """Create the database; returns the versions the portal runs on (for summary.json)."""
    try:
        done = subprocess.run(
            [str(python), "-m", "targets.flask_security.seed"],
            cwd=ROOT,
            env=_child_environment(state, {}),
            capture_output=True,
            text=True,
            timeout=START_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TargetStartError(f"seeding the database took over {START_SECONDS:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-LOG_TAIL_LINES:])
        raise TargetStartError(f"seeding the database failed ({done.returncode}):\n{tail}")
    for line in reversed(done.stdout.splitlines()):
        try:
            versions = json.loads(line)
        except ValueError:
            continue
        if isinstance(versions, dict):
            return {str(k): str(v) for k, v in versions.items()}
    return {}


def _gunicorn(
    name: str,
    python: Path,
    state: Path,
    app: str,
    tls_args: list[str],
    extra_env: dict[str, str],
    log_name: str,
) -> Server:
    log_file = state / f"gunicorn-{log_name}.log"
    command = [
        str(python),
        "-m",
        "gunicorn",
        "--config",
        str(PACKAGE / "gunicorn_conf.py"),
        "--bind",
        f"{HOST}:0",
        *tls_args,
        app,
    ]
    with open(log_file, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=_child_environment(state, extra_env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
    return Server(name, process, log_file)


def _ready(server: Server, deadline: float) -> int:
    try:
        return server.wait_ready(deadline)
    except TargetStartError as exc:
        raise TargetStartError(f"{exc}; its log:\n{server.log_tail()}") from exc


def _check_answers(server: Server, url: str, ca_file: Path, deadline: float) -> None:
    """One real request through TLS, trusting only the run's CA."""
    context = ssl.create_default_context(cafile=str(ca_file))
    timeout = max(1.0, deadline - time.monotonic())
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as response:
            status = int(response.status)
    except (urllib.error.URLError, OSError) as exc:
        raise TargetStartError(f"{url} did not answer: {exc}; log:\n{server.log_tail()}") from exc
    if status != 200:
        raise TargetStartError(f"{url} answered HTTP {status}; log:\n{server.log_tail()}")


__all__ = ["CONFIGURATIONS", "FlaskSecurityTarget", "account_values", "start"]
