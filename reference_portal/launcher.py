"""Start the reference portal as a subprocess and wait until it is ready.

Typical use::

    with launcher.start(["hsts_short"], env={"REFERENCE_PATIENT_PASSWORD": secret}) as portal:
        ...  # portal.https_url, portal.ca_file, portal.ssl_context()
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from reference_portal.settings import (
    SSO_CLIENT_ID_VARIABLE,
    SSO_CLIENT_SECRET_VARIABLE,
    SsoConfig,
)

PACKAGE_PARENT = Path(__file__).resolve().parent.parent
STDERR_TAIL_LINES = 200
_EOF = None


class PortalStartError(RuntimeError):
    """The portal process exited or did not report ready in time."""


class _StreamReader:
    """Drains a child's pipe on a thread so the child never blocks on a full pipe."""

    def __init__(self, stream: IO[str], *, keep_lines: int | None = None) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.tail: collections.deque[str] = collections.deque(maxlen=keep_lines)
        self._keep = keep_lines is not None
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                if self._keep:
                    self.tail.append(line.rstrip("\n"))
                else:
                    self.lines.put(line)
        except (OSError, ValueError):
            pass
        finally:
            self.lines.put(_EOF)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


@dataclass(frozen=True)
class RunningPortal:
    https_url: str
    http_url: str
    host: str
    https_port: int
    http_port: int
    ca_file: Path
    state_dir: Path
    weaknesses: tuple[str, ...]
    process: subprocess.Popen[str] = field(repr=False, compare=False)
    _stderr: _StreamReader = field(repr=False, compare=False)
    _stdout: _StreamReader = field(repr=False, compare=False)
    # Where the portal's SMTP sink files every e-mail it sends (the audit's test mailbox).
    maildir: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only this portal's CA (hostname checks stay on)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        return context

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr.tail)

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; returns the exit status. Idempotent."""
        return stop_process(self.process, (self._stderr, self._stdout), timeout)

    def __enter__(self) -> RunningPortal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def stop_process(
    process: subprocess.Popen[str], readers: Sequence[_StreamReader], timeout: float = 10
) -> int:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; drain its pipes; the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    for reader in readers:
        reader.join(timeout)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    return process.returncode


def _command(
    weaken: Sequence[str],
    idle_timeout: float | None,
    absolute_timeout: float | None,
    state_dir: Path | None,
    sso: SsoConfig | None = None,
) -> list[str]:
    command = [sys.executable, "-m", "reference_portal", "serve", "--host", "127.0.0.1"]
    command += ["--https-port", "0", "--http-port", "0"]
    if weaken:
        command += ["--weaken", ",".join(weaken)]
    if idle_timeout is not None:
        command += ["--idle-timeout", repr(float(idle_timeout))]
    if absolute_timeout is not None:
        command += ["--absolute-timeout", repr(float(absolute_timeout))]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir)]
    if sso is not None:
        command += ["--sso-issuer", sso.issuer, "--sso-ca", str(sso.ca_file)]
    return command


def _child_environment(extra: Mapping[str, str] | None) -> dict[str, str]:
    child = dict(os.environ)
    child.update(extra or {})
    # The child must import this package whatever the caller's working directory is.
    paths = [str(PACKAGE_PARENT)] + [p for p in child.get("PYTHONPATH", "").split(os.pathsep) if p]
    child["PYTHONPATH"] = os.pathsep.join(paths)
    child["PYTHONUNBUFFERED"] = "1"
    return child


def _parse_ready(line: str) -> dict[str, Any]:
    ready = json.loads(line)
    required = {"https_url", "http_url", "host", "https_port", "http_port", "ca_file"}
    if not isinstance(ready, dict) or not required <= ready.keys():
        raise ValueError(f"not a ready line: {line.strip()!r}")
    return ready


def start(
    weaken: Sequence[str] = (),
    *,
    idle_timeout: float | None = None,
    absolute_timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 15,
    state_dir: Path | None = None,
    sso: SsoConfig | None = None,
) -> RunningPortal:
    """Start ``python -m reference_portal serve`` on free 127.0.0.1 ports.

    ``weaken`` is a sequence of flags; a single string is read as a comma-separated list.
    ``env`` is added to this process's environment for the child (use it for the
    ``REFERENCE_PATIENT_PASSWORD`` variables). Raises :class:`PortalStartError` with the tail
    of the child's stderr if it exits or is not ready within ``ready_timeout`` seconds.
    ``sso`` starts it in SSO mode (``reference_portal.sso``); its client credentials reach the
    child through the environment, never its command line.
    """
    flags = (weaken,) if isinstance(weaken, str) else tuple(weaken)
    if sso is not None:
        env = {
            **(env or {}),
            SSO_CLIENT_ID_VARIABLE: sso.client_id,
            SSO_CLIENT_SECRET_VARIABLE: sso.client_secret,
        }
    process = subprocess.Popen(
        _command(flags, idle_timeout, absolute_timeout, state_dir, sso),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=_child_environment(env),
        cwd=PACKAGE_PARENT,
    )
    assert process.stdout is not None and process.stderr is not None
    stdout = _StreamReader(process.stdout)
    stderr = _StreamReader(process.stderr, keep_lines=STDERR_TAIL_LINES)

    def fail(reason: str) -> PortalStartError:
        if process.poll() is None:
            process.kill()
        process.wait(5)
        stderr.join(5)
        stdout.join(5)
        tail = "\n".join(stderr.tail) or "(no stderr output)"
        return PortalStartError(
            f"reference portal {reason} (exit status {process.returncode}); stderr tail:\n{tail}"
        )

    deadline = time.monotonic() + ready_timeout
    try:
        line = stdout.lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        raise fail(f"did not report ready within {ready_timeout:g} s") from None
    if line is _EOF:
        raise fail("exited before it was ready")
    try:
        ready = _parse_ready(line)
    except ValueError as exc:
        raise fail(f"printed an unexpected first line: {exc}") from None

    return RunningPortal(
        https_url=ready["https_url"],
        http_url=ready["http_url"],
        host=ready["host"],
        https_port=int(ready["https_port"]),
        http_port=int(ready["http_port"]),
        ca_file=Path(ready["ca_file"]),
        state_dir=Path(ready["state_dir"]),
        weaknesses=tuple(ready.get("weaknesses", ())),
        maildir=Path(ready["maildir"]) if ready.get("maildir") else None,
        process=process,
        _stderr=stderr,
        _stdout=stdout,
    )
