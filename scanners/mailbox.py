"""Reading the test mailbox a portal's e-mails arrive in: a Maildir or an IMAP account.

Both readers return the same typed ``MailMessage`` (decoded text, links, recipients, delivery
time) and never assert. Waiting for a message is a bounded poll: ``wait_for_new`` returns None
when nothing matching arrived in time, and raises ``MailboxError`` only when the mailbox itself
cannot be read. ``evaluate_mail_contents`` judges mails without any I/O (RESET_MAIL).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import imaplib
import mailbox
import re
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses
from html.parser import HTMLParser
from pathlib import Path
from typing import Protocol

from scanners.result import Evaluation, Finding, verdict

POLL_SECONDS = 0.25
IMAP_POLL_SECONDS = 2.0
_URL = re.compile(r"https?://[^\s<>\"')\]]+")


class MailboxError(Exception):
    """The mailbox could not be read at all (missing Maildir, IMAP login refused...)."""


@dataclass(frozen=True)
class MailMessage:
    """One e-mail as the account holder would read it. The body is kept out of reprs."""

    key: str
    received_at: float
    sender: str
    recipients: tuple[str, ...]
    subject: str
    text: str = field(repr=False)

    def addressed_to(self, address: str | None) -> bool:
        return address is None or address.lower() in self.recipients

    def links(self) -> list[str]:
        found: list[str] = []
        for match in _URL.finditer(self.text):
            link = match.group(0).rstrip(".,;:!?")
            if link not in found:
                found.append(link)
        return found


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "href" and value:
                self.parts.append(f" {value} ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _body_text(message: Message) -> str:
    """Every text part, decoded; HTML reduced to its text and link targets."""
    texts: list[str] = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            decoded = payload.decode(charset, errors="replace")
        except LookupError:
            decoded = payload.decode("utf-8", errors="replace")
        if part.get_content_subtype() == "html":
            parser = _TextOf()
            parser.feed(decoded)
            decoded = "".join(parser.parts)
        texts.append(decoded)
    return "\n".join(texts)


def parse_message(raw: bytes, key: str, received_at: float) -> MailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    recipients = tuple(
        address.lower()
        for _, address in getaddresses(
            [
                str(v)
                for name in ("to", "cc", "delivered-to", "x-rcptto")
                for v in message.get_all(name) or []
            ]
        )
        if address
    )
    return MailMessage(
        key=key,
        received_at=received_at,
        sender=str(message.get("from", "")),
        recipients=tuple(dict.fromkeys(recipients)),
        subject=str(message.get("subject", "")),
        text=_body_text(message),
    )


class Mailbox(Protocol):
    def describe(self) -> str: ...

    def keys(self) -> set[str]: ...

    def messages(self, since: float | None = None) -> list[MailMessage]: ...


class MaildirMailbox:
    """A Maildir on this machine (the reference portal's SMTP sink writes one)."""

    poll_seconds = POLL_SECONDS

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"Maildir {self.path}"

    def _open(self) -> mailbox.Maildir:
        if not (self.path / "new").is_dir() or not (self.path / "cur").is_dir():
            raise MailboxError(f"{self.path} is not a Maildir (no new/ and cur/ folders)")
        return mailbox.Maildir(self.path, factory=None, create=False)

    def keys(self) -> set[str]:
        return set(self._open().keys())

    def messages(self, since: float | None = None) -> list[MailMessage]:
        box = self._open()
        found: list[MailMessage] = []
        for key in box.iterkeys():
            try:
                item = box.get_message(key)
                raw = box.get_bytes(key)
            except (KeyError, FileNotFoundError):
                continue  # moved or deleted by another reader meanwhile
            received = float(item.get_date())
            if since is not None and received < since:
                continue
            found.append(parse_message(raw, key, received))
        return sorted(found, key=lambda m: m.received_at)


class ImapMailbox:
    """An IMAP account (a real portal's test inbox). Keys are UIDs."""

    poll_seconds = IMAP_POLL_SECONDS

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        folder: str = "INBOX",
        tls: bool = True,
        ca_file: str | None = None,
        timeout: float = 20,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.folder = folder
        self.tls = tls
        self.ca_file = ca_file
        self.timeout = timeout

    def describe(self) -> str:
        scheme = "imaps" if self.tls else "imap"
        return f"{scheme}://{self.username}@{self.host}:{self.port}/{self.folder}"

    def _connect(self) -> imaplib.IMAP4:
        try:
            if self.tls:
                context = ssl.create_default_context(cafile=self.ca_file)
                client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=context, timeout=self.timeout
                )
            else:
                client = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
            client.login(self.username, self._password)
            status, _ = client.select(_quote(self.folder), readonly=True)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"cannot read {self.describe()}: {_first_line(exc)}") from None
        if status != "OK":
            client.logout()
            raise MailboxError(f"cannot open folder {self.folder!r} of {self.describe()}")
        return client

    def keys(self) -> set[str]:
        client = self._connect()
        try:
            return set(self._uids(client))
        finally:
            _logout(client)

    def _uids(self, client: imaplib.IMAP4) -> list[str]:
        status, data = client.uid("SEARCH", "ALL")
        if status != "OK":
            raise MailboxError(f"SEARCH failed on {self.describe()}")
        return [uid.decode() for uid in (data[0] or b"").split()]

    def messages(self, since: float | None = None) -> list[MailMessage]:
        client = self._connect()
        try:
            found: list[MailMessage] = []
            for uid in self._uids(client):
                status, data = client.uid("FETCH", uid, "(INTERNALDATE RFC822)")
                if status != "OK":
                    continue
                for item in data:
                    if not isinstance(item, tuple):
                        continue
                    received = _internaldate(item[0])
                    if since is not None and received < since:
                        continue
                    found.append(parse_message(item[1], uid, received))
            return sorted(found, key=lambda m: m.received_at)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"cannot read {self.describe()}: {_first_line(exc)}") from None
        finally:
            _logout(client)


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _internaldate(response: bytes) -> float:
    parsed = imaplib.Internaldate2tuple(response)
    if parsed is None:
        return time.time()
    return time.mktime(parsed)


def _logout(client: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error):
        client.logout()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def matches(
    *, recipient: str | None = None, subject: str | None = None
) -> Callable[[MailMessage], bool]:
    """A message filter: addressed to ``recipient`` and with ``subject`` in its subject."""

    def match(message: MailMessage) -> bool:
        if not message.addressed_to(recipient):
            return False
        return subject is None or subject.lower() in message.subject.lower()

    return match


def wait_for_new(
    box: Mailbox,
    match: Callable[[MailMessage], bool],
    *,
    known: set[str],
    timeout: float,
    poll: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], object] = time.sleep,
) -> MailMessage | None:
    """The newest matching message whose key is not in ``known``, waiting up to ``timeout``."""
    interval = poll if poll is not None else float(getattr(box, "poll_seconds", POLL_SECONDS))
    deadline = clock() + timeout
    while True:
        fresh = [m for m in box.messages() if m.key not in known and match(m)]
        if fresh:
            return fresh[-1]
        remaining = deadline - clock()
        if remaining <= 0:
            return None
        pause(min(interval, remaining))


# -- evaluation (RESET_MAIL) -----------------------------------------------------------------


@dataclass(frozen=True)
class MailCheck:
    """What RESET_MAIL looked at: the mails, and the notification it expected (if any)."""

    messages: tuple[MailMessage, ...]
    notification_expected: bool = False
    notification: MailMessage | None = None
    notification_note: str = ""


def evaluate_mail_contents(
    check: MailCheck,
    passwords: Iterable[str],
    markers: Sequence[str],
) -> Evaluation:
    """No mail may carry a password or a patient-data marker; a change must be notified."""
    secrets = [p for p in dict.fromkeys(passwords) if p]
    findings: list[Finding] = []
    for message in check.messages:
        where = f"'{message.subject}' to {', '.join(message.recipients) or 'unknown'}"
        haystack = f"{message.subject}\n{message.text}"
        if any(secret in haystack for secret in secrets):
            findings.append(Finding("mail.password", "the e-mail contains a password", where=where))
        folded = haystack.casefold()
        for marker in markers:
            if marker and marker.casefold() in folded:
                findings.append(
                    Finding(
                        "mail.patient_data",
                        f"the e-mail contains patient data ({marker!r})",
                        where=where,
                    )
                )
    if check.notification_expected and check.notification is None:
        findings.append(
            Finding(
                "mail.no_change_notification",
                "no e-mail told the account holder that their password was changed"
                + (f" ({check.notification_note})" if check.notification_note else ""),
            )
        )
    if not check.messages:
        return Evaluation(
            status="inconclusive",
            reason="no e-mail from the portal arrived in the test mailbox, so none could be read",
            measured="0 e-mails read",
        )
    notified = (
        "; password-change notification received"
        if check.notification is not None
        else ("; no password-change notification" if check.notification_expected else "")
    )
    return verdict(
        findings,
        measured=(
            f"{len(check.messages)} e-mail(s) read, checked for {len(secrets)} password(s) and "
            f"{len(markers)} patient-data marker(s){notified}"
        ),
        threshold="no password or patient data in any e-mail; password changes are notified",
        passed_reason="the portal's e-mails carry no password or patient data, and a password "
        "change is notified"
        if check.notification_expected
        else "the portal's e-mails carry no password or patient data",
        failed_reason="the portal's e-mails leak a password or patient data, or a password "
        "change went unnotified",
    )
