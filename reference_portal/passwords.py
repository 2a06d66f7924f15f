"""The portal's password policy (length, blocklist, zxcvbn strength) and password storage.

NIST SP 800-63B-4 3.1.1.2 is the model: a minimum length, no maximum below 64, every character
allowed, a blocklist of common, breached and context-specific passwords, strength guidance, and
no composition rules. The weakness flags switch single parts of it off (see ``settings``).
"""

from __future__ import annotations

import re
import secrets
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from zxcvbn import zxcvbn

from reference_portal.auth import Authenticator

DATA_DIR = Path(__file__).resolve().parent / "data"
# zxcvbn's cost grows with length; nobody types more than this, and the form says so.
MAX_LENGTH = 256
ZXCVBN_MAX_INPUT = 72  # zxcvbn refuses longer input
# Words that identify this portal; a password built from them is the first thing tried.
SERVICE_TERMS = ("riverside", "riversidehealth", "patientportal")
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_MIN_TERM_LENGTH = 4


@dataclass(frozen=True)
class PolicyVerdict:
    accepted: bool
    problems: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int
    check_blocklist: bool = True
    min_score: int | None = 3
    composition_rules: bool = False
    service_terms: tuple[str, ...] = SERVICE_TERMS
    _blocklist: frozenset[str] = field(default_factory=lambda: _common(), repr=False)

    def guidance(self) -> str:
        text = (
            f"Use at least {self.min_length} characters; a passphrase of several unrelated "
            "words is easy to remember and hard to guess. Spaces, symbols and any language's "
            "letters are welcome. We refuse passwords found in breaches or built from your "
            "name, your username or the portal's name."
        )
        if self.composition_rules:
            text += (
                " It must contain an upper-case letter, a lower-case letter, a digit and a symbol."
            )
        return text

    def check(self, password: str, context: Iterable[str]) -> PolicyVerdict:
        problems: list[str] = []
        suggestions: list[str] = []
        length = len(password)
        if length < self.min_length:
            problems.append(f"Use at least {self.min_length} characters (you used {length}).")
        if length > MAX_LENGTH:
            problems.append(f"Use at most {MAX_LENGTH} characters.")
        if self.check_blocklist:
            reason = self.blocklisted(password, context)
            if reason:
                problems.append(reason)
        if self.min_score is not None and self.min_length <= length <= MAX_LENGTH:
            result = _strength(password[:ZXCVBN_MAX_INPUT])
            if int(result["score"]) < self.min_score:
                feedback = result.get("feedback") or {}
                warning = str(feedback.get("warning") or "")
                problems.append(
                    "This password is too easy to guess." + (f" {warning}" if warning else "")
                )
                suggestions.extend(str(s) for s in feedback.get("suggestions") or ())
                if not suggestions:
                    suggestions.append("Add another word or two. Uncommon words are better.")
        if self.composition_rules:
            missing = [
                name
                for name, chars in (
                    ("an upper-case letter", string.ascii_uppercase),
                    ("a lower-case letter", string.ascii_lowercase),
                    ("a digit", string.digits),
                )
                if not any(c in chars for c in password)
            ]
            if not any(not c.isalnum() and not c.isspace() for c in password):
                missing.append("a symbol")
            if missing:
                problems.append("Your password must contain " + ", ".join(missing) + ".")
        return PolicyVerdict(not problems, tuple(problems), tuple(suggestions))

    def blocklisted(self, password: str, context: Iterable[str]) -> str | None:
        plain = _alnum(password)
        variants = {plain, plain.translate(_LEET), _letters(password.lower().translate(_LEET))}
        if variants & self._blocklist:
            return "This password appears in lists of breached or common passwords."
        letters = _letters(password.lower().translate(_LEET)) + " " + _letters(password.lower())
        for term in {*self.service_terms, *context_terms(context)}:
            if len(term) >= _MIN_TERM_LENGTH and term in letters:
                return (
                    "Do not build your password from your name, your username or the portal's name."
                )
        return None


def context_terms(values: Iterable[str]) -> set[str]:
    """Lower-case letter runs of usernames and names (``patient.lindqvist`` -> both parts)."""
    terms: set[str] = set()
    for value in values:
        for part in re.split(r"[^a-z]+", _fold(value)):
            if len(part) >= _MIN_TERM_LENGTH:
                terms.add(part)
        joined = _letters(_fold(value))
        if len(joined) >= _MIN_TERM_LENGTH:
            terms.add(joined)
    return terms


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _alnum(text: str) -> str:
    return "".join(c for c in _fold(text) if c.isalnum())


def _letters(text: str) -> str:
    return "".join(c for c in _fold(text) if c.isalpha())


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = (DATA_DIR / "common-passwords.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(_alnum(line) for line in lines if line.strip() and not line.startswith("#"))


def _common() -> frozenset[str]:
    return common_passwords()


def _strength(password: str) -> dict[str, Any]:
    result: dict[str, Any] = zxcvbn(password)
    return result


def normalise(password: str) -> str:
    """Unicode passwords are compared in NFC, so the same characters typed differently match."""
    return unicodedata.normalize("NFC", password)


class TruncatingAuthenticator(Authenticator):
    """The ``password_truncated`` weakness: only the first characters count, at every use."""

    def __init__(self, *args: Any, keep: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keep = keep

    def hash_password(self, password: str) -> str:
        return super().hash_password(password[: self._keep])

    def authenticate(self, username: str, password: str, *args: Any, **kwargs: Any) -> Any:
        return super().authenticate(username, password[: self._keep], *args, **kwargs)


def generate_password() -> str:
    """A random test-account password that any policy this portal can enforce accepts
    (length, blocklist, strength and, with the composition weakness, every character class)."""
    # No vowels, and no digits that read as vowels: no name or word can appear by chance.
    lower = "bcdfghjkmnpqrstvwxz"
    upper = lower.upper()
    digits = "2689"
    body = "".join(secrets.choice(lower + upper + digits) for _ in range(20))
    return (
        body
        + secrets.choice(upper)
        + secrets.choice(lower)
        + secrets.choice(digits)
        + secrets.choice("-_.!")
    )
