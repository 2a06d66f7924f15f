"""Outgoing mail over real SMTP to a local sink that files every message in a Maildir.

The portal sends with ``smtplib`` exactly as it would to a hospital's relay; the sink is an
aiosmtpd server on 127.0.0.1 whose Maildir the audit reads as a test mailbox (RESET_TOKEN,
RESET_MAIL). Nothing leaves the machine.
"""

from __future__ import annotations

import logging
import mailbox
import smtplib
import socket
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox as MaildirHandler

log = logging.getLogger(__name__)
# aiosmtpd logs every connection at INFO; the portal's own log line per message is enough.
logging.getLogger("mail.log").setLevel(logging.WARNING)

SENDER = "Riverside Health patient portal <no-reply@riverside-health.example>"
START_ATTEMPTS = 5
SMTP_TIMEOUT = 10


class MailSinkError(RuntimeError):
    """The SMTP sink could not start."""


def _free_port(host: str) -> int:
    # aiosmtpd cannot bind port 0 (it connects to the port it was given to check readiness),
    # so a free port is picked first; start() retries if another process takes it meanwhile.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class MailSink:
    """An SMTP server on 127.0.0.1 delivering into ``maildir``."""

    def __init__(self, maildir: Path, host: str = "127.0.0.1") -> None:
        self.maildir = maildir
        self.host = host
        self.port = 0
        self._controller: Controller | None = None

    def start(self) -> MailSink:
        self.maildir.parent.mkdir(parents=True, exist_ok=True)
        # Creates new/, cur/ and tmp/ (only when the directory does not exist yet).
        mailbox.Maildir(self.maildir, create=True)
        for sub in ("new", "cur", "tmp"):
            (self.maildir / sub).mkdir(exist_ok=True)
        last: Exception | None = None
        for _ in range(START_ATTEMPTS):
            port = _free_port(self.host)
            controller = Controller(
                MaildirHandler(self.maildir), hostname=self.host, port=port, ready_timeout=10
            )
            try:
                controller.start()
            except (OSError, RuntimeError, TimeoutError) as exc:
                last = exc
                continue
            self._controller = controller
            self.port = port
            log.info("mail sink listening on %s:%s, filing into %s", self.host, port, self.maildir)
            return self
        raise MailSinkError(f"the SMTP sink could not listen on {self.host}: {last}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass(frozen=True)
class Mailer:
    """Sends the portal's e-mails through an SMTP server."""

    host: str
    port: int

    def send(self, to: str, subject: str, body: str) -> bool:
        """Send one plain-text message; a mail failure never breaks the page that sent it."""
        if not to:
            return False
        message = EmailMessage()
        message["From"] = SENDER
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain="riverside-health.example")
        message.set_content(body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT) as smtp:
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("could not send %r: %s", subject, exc)
            return False
        return True
