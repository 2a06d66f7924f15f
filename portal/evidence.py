"""Evidence: every artifact the suite writes goes through one redactor.

Secrets are the profile's passwords and TOTP secrets, the credentials in its URLs, every value the
run sets (new passwords, codes, recovery codes) and every session cookie value the run sees. Their
raw, URL-encoded, JSON-escaped, HTML-escaped and ``repr`` spellings are replaced with ``[REDACTED]``
in text, in binary files and inside zip archives (Playwright traces), before anything reaches a
report. Credentials in any URL (``https://user:secret@host/``) are masked even when unknown.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import threading
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

from scanners.http import MASK

MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words; no real secret is this short
# The userinfo of a URL that carries a password ("scheme://user:secret@"), wherever it appears:
# RFC 3986 userinfo characters only, after a scheme, so binary data practically never matches.
_USERINFO_CHARS = rb"[A-Za-z0-9\-._~%!$&()*+,;=\[\]]"  # brackets: a part already masked
_URL_USERINFO = re.compile(
    rb"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]{0,30}://)"
    + _USERINFO_CHARS
    + rb"+:"
    + _USERINFO_CHARS
    + rb"*@"
)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def _standalone(digits: bytes) -> re.Pattern[bytes]:
    # One-time codes are all digits: masked where they stand alone, never inside a longer
    # number, which would corrupt the timestamps in traces and result files.
    return re.compile(rb"(?<![0-9])" + re.escape(digits) + rb"(?![0-9])")


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()):
        self._lock = threading.Lock()
        self._needles: set[bytes] = set()
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            return
        spellings = {
            secret,
            quote(secret, safe=""),
            quote_plus(secret, safe=""),
            quote(secret),
            html.escape(secret),
            # Allure step parameters are the repr of the step's arguments.
            repr(secret)[1:-1],
        }
        # Each spelling also as it appears inside a JSON string (result files, traces).
        for spelling in list(spellings):
            spellings.add(json.dumps(spelling)[1:-1])
            spellings.add(json.dumps(spelling, ensure_ascii=False)[1:-1])
        with self._lock:
            self._secrets.add(secret)
            self._needles.update(s.encode("utf-8") for s in spellings if s)

    def secrets(self) -> list[str]:
        """Every secret added, as given (for another process's redactor of the same run)."""
        with self._lock:
            return sorted(self._secrets)

    def add_url_credentials(self, value: object) -> None:
        """Register the credentials of every URL in ``value`` (a URL, a profile, nested data)."""
        for secret in url_credentials(value):
            self.add(secret)

    def __len__(self) -> int:
        return len(self._needles)

    def _ordered(self) -> list[bytes]:
        with self._lock:
            # Longest first, so a secret containing another is masked whole.
            return sorted(self._needles, key=len, reverse=True)

    def redact_bytes(self, data: bytes) -> bytes:
        for needle in self._ordered():
            if needle in data:
                if needle.isdigit():
                    data = _standalone(needle).sub(MASK.encode(), data)
                else:
                    data = data.replace(needle, MASK.encode())
        if b"@" in data:
            data = _URL_USERINFO.sub(rb"\g<scheme>" + MASK.encode() + b"@", data)
        return data

    def redact_text(self, text: str) -> str:
        return self.redact_bytes(text.encode("utf-8")).decode("utf-8")

    def contains_secret(self, data: bytes) -> bool:
        return _URL_USERINFO.search(data) is not None or any(
            _standalone(needle).search(data) if needle.isdigit() else needle in data
            for needle in self._ordered()
        )

    def redact_zip(self, data: bytes) -> bytes:
        source = zipfile.ZipFile(io.BytesIO(data))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
            for info in source.infolist():
                content = source.read(info.filename)
                if content[:4] == b"PK\x03\x04":
                    content = self.redact_zip(content)
                else:
                    content = self.redact_bytes(content)
                target.writestr(info, content)
        return out.getvalue()

    def redact_file(self, path: Path) -> None:
        data = path.read_bytes()
        redacted = self.redact_zip(data) if data[:4] == b"PK\x03\x04" else self.redact_bytes(data)
        if redacted != data:
            path.write_bytes(redacted)

    def redact_tree(self, root: Path) -> int:
        """Redact every file under root; returns how many files changed."""
        changed = 0
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            before = path.stat().st_mtime_ns, path.stat().st_size
            self.redact_file(path)
            if (path.stat().st_mtime_ns, path.stat().st_size) != before:
                changed += 1
        return changed


def url_without_credentials(url: str) -> str:
    """The URL without its userinfo: ``https://user:secret@host/`` becomes ``https://host/``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def url_credentials(value: object) -> list[str]:
    """Every secret spelling of the credentials in the URLs found in ``value``: a string, a
    pydantic model (a profile), or mappings and sequences of them.

    For ``https://user:se%40cret@host/``: the userinfo as written and decoded, the password as
    written and decoded, and the Basic authorization a browser sends. (Too short to register,
    they are still masked in URL form: see ``_URL_USERINFO``.)
    """
    found: list[str] = []
    for url in _urls_in(value):
        netloc = urlsplit(url).netloc
        if "@" not in netloc:
            continue
        userinfo = netloc.rpartition("@")[0]
        user, _, password = userinfo.partition(":")
        decoded = f"{unquote(user)}:{unquote(password)}"
        found += [userinfo, unquote(userinfo), password, unquote(password)]
        found.append(base64.b64encode(decoded.encode("utf-8")).decode("ascii"))
    return [secret for secret in dict.fromkeys(found) if secret]


def _urls_in(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield from _URL_IN_TEXT.findall(value)
    elif isinstance(value, bytes):
        yield from _urls_in(value.decode("utf-8", "replace"))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _urls_in(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _urls_in(item)
    elif hasattr(value, "model_dump"):
        yield from _urls_in(value.model_dump(warnings=False))


class Evidence:
    """Attachments for the current scenario, redacted on the way out."""

    def __init__(self, redactor: Redactor, work_dir: Path):
        self.redactor = redactor
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)

    def text(self, name: str, body: str) -> None:
        import allure

        allure.attach(
            self.redactor.redact_text(body), name=name, attachment_type=allure.attachment_type.TEXT
        )

    def json(self, name: str, body: object) -> None:
        import allure

        text = json.dumps(body, indent=2, sort_keys=True, default=str)
        allure.attach(
            self.redactor.redact_text(text), name=name, attachment_type=allure.attachment_type.JSON
        )

    def file(self, path: Path, name: str, kind: str) -> None:
        """Attach a file (png, zip trace, har) after redacting it in place."""
        import allure

        self.redactor.redact_file(path)
        types = {
            "png": allure.attachment_type.PNG,
            "trace": None,
            "har": allure.attachment_type.JSON,
        }
        attachment_type = types.get(kind)
        if attachment_type is None:
            allure.attach.file(str(path), name=name, extension="zip")
        else:
            allure.attach.file(str(path), name=name, attachment_type=attachment_type)
