"""The profile's test mailbox, opened and read for a check: a mailbox that cannot be read leaves
the check inconclusive (``Inconclusive``), never passed."""

from __future__ import annotations

from collections.abc import Callable

from portal.errors import Inconclusive
from portal.profile_credentials import MailboxSettings
from scanners.mailbox import (
    ImapMailbox,
    Mailbox,
    MailboxError,
    MaildirMailbox,
    MailMessage,
    wait_for_new,
)


def open_mailbox(settings: MailboxSettings | None, timeout: float) -> Mailbox:
    """The test mailbox; each IMAP operation is bounded by ``timeout`` seconds."""
    if settings is None:
        raise Inconclusive("the profile has no 'mailbox': the portal's e-mails cannot be read")
    if settings.maildir is not None:
        return MaildirMailbox(settings.maildir)
    imap = settings.imap
    if imap is None:  # the profile model requires one of the two
        raise Inconclusive("the profile's mailbox names neither a maildir nor an imap account")
    return ImapMailbox(
        imap.host,
        imap.port,
        imap.username,
        imap.password.get_secret_value(),
        folder=imap.folder,
        tls=imap.tls,
        ca_file=imap.ca_file,
        timeout=timeout,
    )


def mailbox_keys(box: Mailbox) -> set[str]:
    try:
        return box.keys()
    except MailboxError as exc:
        raise Inconclusive(str(exc)) from None


def wait_for_mail(
    box: Mailbox, match: Callable[[MailMessage], bool], known: set[str], seconds: float, what: str
) -> MailMessage | None:
    try:
        return wait_for_new(box, match, known=known, timeout=seconds)
    except MailboxError as exc:
        raise Inconclusive(f"{what}: {exc}") from None
