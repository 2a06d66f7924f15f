"""The mailbox reader against real local servers: the reference portal's SMTP sink (Maildir) and
a small IMAP server started by the test, plus the RESET_MAIL evaluation on recorded mails."""

from __future__ import annotations

import re
import socketserver
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from reference_portal.mail import Mailer, MailSink
from scanners.mailbox import (
    ImapMailbox,
    MailboxError,
    MailCheck,
    MaildirMailbox,
    MailMessage,
    evaluate_mail_contents,
    matches,
    parse_message,
    wait_for_new,
)

RESET_LINK = "https://127.0.0.1:8443/password/reset/abcDEF123456789xyz"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    running = MailSink(tmp_path / "maildir").start()
    yield running
    running.stop()


def test_maildir_reader_finds_a_message_sent_over_smtp(sink: MailSink) -> None:
    box = MaildirMailbox(sink.maildir)
    known = box.keys()
    mailer = Mailer(sink.host, sink.port)
    assert mailer.send("erik@example.org", "Unrelated", "hello")
    assert mailer.send("erik@example.org", "Reset your password", f"Open {RESET_LINK}.\n")
    found = wait_for_new(
        box, matches(recipient="Erik@example.org", subject="reset"), known=known, timeout=5
    )
    assert found is not None
    assert found.subject == "Reset your password"
    assert found.links() == [RESET_LINK]
    assert "erik@example.org" in found.recipients
    assert abs(found.received_at - time.time()) < 60


def test_waiting_for_a_message_that_never_comes_is_bounded(sink: MailSink) -> None:
    box = MaildirMailbox(sink.maildir)
    started = time.monotonic()
    assert wait_for_new(box, matches(subject="nothing"), known=set(), timeout=0.5) is None
    assert time.monotonic() - started < 3


def test_missing_maildir_is_a_mailbox_error(tmp_path: Path) -> None:
    with pytest.raises(MailboxError, match="not a Maildir"):
        MaildirMailbox(tmp_path / "nowhere").keys()


def test_html_mail_is_read_as_text_with_its_links() -> None:
    message = EmailMessage()
    message["To"] = "a@example.org"
    message["Subject"] = "Reset"
    message.set_content("plain part")
    message.add_alternative(f'<p>Click <a href="{RESET_LINK}">here</a></p>', subtype="html")
    parsed = parse_message(bytes(message), "k", 0.0)
    assert RESET_LINK in parsed.links()
    assert "plain part" in parsed.text and "Click" in parsed.text


# -- IMAP ----------------------------------------------------------------------------------

RAW = (
    b"From: portal@example.org\r\nTo: erik@example.org\r\nSubject: Reset your password\r\n"
    b"\r\nOpen " + RESET_LINK.encode() + b"\r\n"
)


class _Imap(socketserver.StreamRequestHandler):
    """Just enough IMAP4rev1 for imaplib: LOGIN, EXAMINE, UID SEARCH and FETCH, LOGOUT."""

    def send(self, line: bytes) -> None:
        self.wfile.write(line + b"\r\n")

    def handle(self) -> None:
        self.send(b"* OK [CAPABILITY IMAP4rev1] test server ready")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            tag, _, rest = line.strip().partition(b" ")
            command = rest.upper()
            if command.startswith(b"CAPABILITY"):
                self.send(b"* CAPABILITY IMAP4rev1")
                self.send(tag + b" OK done")
            elif command.startswith(b"LOGIN"):
                if b'"right"' in rest or rest.endswith(b" right"):
                    self.send(tag + b" OK logged in")
                else:
                    self.send(tag + b" NO [AUTHENTICATIONFAILED] wrong password")
            elif command.startswith((b"EXAMINE", b"SELECT")):
                self.send(b"* 1 EXISTS")
                self.send(tag + b" OK [READ-ONLY] done")
            elif command.startswith(b"UID SEARCH"):
                self.send(b"* SEARCH 7")
                self.send(tag + b" OK done")
            elif command.startswith(b"UID FETCH"):
                head = b'* 1 FETCH (UID 7 INTERNALDATE "26-Nov-2026 09:00:00 +0000" RFC822 {%d}'
                self.wfile.write(head % len(RAW) + b"\r\n" + RAW + b")\r\n")
                self.send(tag + b" OK done")
            elif command.startswith(b"LOGOUT"):
                self.send(b"* BYE")
                self.send(tag + b" OK bye")
                return
            else:
                self.send(tag + b" BAD unknown")


@pytest.fixture
def imap_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Imap)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_imap_reader_fetches_messages(imap_port: int) -> None:
    box = ImapMailbox("127.0.0.1", imap_port, "audit", "right", tls=False)
    assert box.keys() == {"7"}
    [message] = box.messages()
    assert message.subject == "Reset your password"
    assert message.links() == [RESET_LINK]
    assert box.messages(since=time.time() + 10**9) == []
    found = wait_for_new(box, matches(recipient="erik@example.org"), known=set(), timeout=1)
    assert found is not None and found.key == "7"


def test_imap_login_refused_is_a_mailbox_error_without_the_password(imap_port: int) -> None:
    box = ImapMailbox("127.0.0.1", imap_port, "audit", "wrong-secret", tls=False)
    with pytest.raises(MailboxError) as raised:
        box.keys()
    assert "wrong-secret" not in str(raised.value)


# -- RESET_MAIL evaluation ------------------------------------------------------------------


def _mail(text: str, subject: str = "Your password was changed") -> MailMessage:
    return MailMessage("k", 0.0, "portal", ("erik@example.org",), subject, text)


def test_clean_mails_pass() -> None:
    check = MailCheck((_mail("Your password was changed."),), True, _mail("changed"))
    evaluation = evaluate_mail_contents(check, ["Sekret-Passphrase-42"], ["6702-3318"])
    assert evaluation.status == "passed", evaluation.describe()


def test_password_and_patient_data_in_mail_fail() -> None:
    check = MailCheck((_mail("Your new password is Sekret-Passphrase-42"), _mail("MRN 6702-3318")))
    evaluation = evaluate_mail_contents(check, ["Sekret-Passphrase-42"], ["6702-3318"])
    assert evaluation.status == "failed"
    keys = {f.key for f in evaluation.findings}
    assert keys == {"mail.password", "mail.patient_data"}
    assert "Sekret-Passphrase-42" not in evaluation.describe()


def test_missing_notification_fails_and_no_mail_is_inconclusive() -> None:
    missing = evaluate_mail_contents(MailCheck((_mail("reset"),), True, None), [], [])
    assert missing.status == "failed"
    assert [f.key for f in missing.findings] == ["mail.no_change_notification"]
    assert evaluate_mail_contents(MailCheck(()), [], []).status == "inconclusive"


def test_links_are_trimmed_of_trailing_punctuation() -> None:
    assert _mail(f"Open {RESET_LINK}. Thanks").links() == [RESET_LINK]
    assert re.fullmatch(r"https://\S+", _mail(f"<{RESET_LINK}>").links()[0])
