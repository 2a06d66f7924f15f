"""Report files: private by default, and an HTML report that makes no network request.

A run's reports name the portal's weaknesses and carry evidence about test accounts: they are
created readable by their owner only (the runner sets umask 077 before anything is written), and
widened to a group or everyone only when asked (``--report-mode``).

The Allure 3 "awesome" report embeds a Google Analytics tag that it switches on unconditionally
(``analyticsEnable: true`` in @allurereport/plugin-awesome; no setting or environment variable turns
it off, unlike the allure2 plugin's ALLURE_NO_ANALYTICS). A report about patient portals must not
tell a third party that it was opened, so the tag is cut out of index.html, a Content Security
Policy that allows no network fetch is added as a second line of defence, and any other external
resource left in the page is an error.

The single-file report also has a load-order race of its own: its application script sits before
the embedded data, and the application reads ``window.allureReportData`` only to decide whether
to wait for that data or to fetch each file next to index.html instead. When the browser runs the
application's first data request before it has parsed the data block (a large page, a busy
machine), the report fetches files that do not exist and shows an empty report. Declaring the
data object in the head, before the application, makes every load wait for the embedded data.
"""

from __future__ import annotations

import os
import re
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

PRIVATE_UMASK = 0o077


@dataclass(frozen=True)
class ReportMode:
    file: int
    directory: int


MODES: dict[str, ReportMode] = {
    "private": ReportMode(file=0o600, directory=0o700),
    "group": ReportMode(file=0o640, directory=0o750),
    "world": ReportMode(file=0o644, directory=0o755),
}
DEFAULT_MODE = "private"


def write_private(path: Path, data: bytes) -> None:
    """Write a report file readable by its owner only, whatever the umask: through a temporary
    file renamed into place, so no reader ever sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=MODES["private"].directory)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODES["private"].file)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def apply_mode(root: Path, mode: str) -> None:
    """Give ``root`` and everything under it the files' and directories' permissions of ``mode``.

    Symbolic links are neither followed nor changed (``reports/latest`` points into the runs)."""
    wanted = MODES[mode]
    if root.is_symlink() or not root.exists():
        return
    if root.is_file():
        os.chmod(root, wanted.file)
        return
    os.chmod(root, wanted.directory)
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories:
            path = Path(directory, name)
            if not path.is_symlink():
                os.chmod(path, wanted.directory)
        for name in files:
            path = Path(directory, name)
            if not path.is_symlink():
                os.chmod(path, wanted.file)


def secure_runs_dir(runs: Path) -> None:
    """Keep the directory of all runs private (0700), except for the search permission a run
    widened with ``--report-mode`` needs to be reachable: listing the runs stays owner-only."""
    runs.mkdir(parents=True, exist_ok=True, mode=0o700)
    reachable = 0
    for child in runs.iterdir():
        if child.is_dir() and not child.is_symlink():
            reachable |= child.stat().st_mode & (stat.S_IXGRP | stat.S_IXOTH)
    os.chmod(runs, 0o700 | reachable)


# -- the HTML report --------------------------------------------------------------------------


class ReportNetworkError(RuntimeError):
    """The HTML report would load something from the network."""


# Everything the page may use is inline or a data:/blob: URL; nothing may be fetched.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    "script-src 'unsafe-inline' 'unsafe-eval' data: blob:; "
    "style-src 'unsafe-inline' data: blob:; "
    "img-src data: blob:; font-src data: blob:; media-src data: blob:; "
    "connect-src data: blob:; frame-src data: blob:; worker-src data: blob:; "
    "manifest-src 'none'; object-src 'none'; form-action 'none'"
)
_CSP_TAG = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
_ANALYTICS_LOADER = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"']?https?://(?:www\.)?googletagmanager\.com/[^>]*>\s*</script>",
    re.IGNORECASE,
)
_ANALYTICS_CONFIG = re.compile(
    r"<script\b[^>]*>(?:(?!</script>).)*?\bgtag\s*\((?:(?!</script>).)*?</script>",
    re.IGNORECASE | re.DOTALL,
)
# Declared before the application script, so the report always waits for its embedded data
# (``allureReportDataReady``, set by the data block at the end of the page) instead of fetching.
_EMBEDDED_DATA_FIRST = (
    "<script>window.allureReportData = window.allureReportData || {}; "
    "window.allureReportDataReady = false;</script>"
)
_EMBEDDED_DATA_BLOCK = "allureReportDataReady = true"
_CHARSET = re.compile(r"<meta\s+charset=[\"']?[\w-]+[\"']?\s*/?>", re.IGNORECASE)
# Where a page names something the browser fetches by itself: src/href/poster/srcset/action
# attributes, CSS url() and @import. Base64 data (the report's own scripts, results and
# attachments) holds no literal "http:" or "//", so it never matches.
_RESOURCE = re.compile(
    r"""(?:\b(?:src|href|poster|srcset|action|data|background)\s*=\s*["']?\s*"""
    r"""|url\(\s*["']?|@import\s+["']?)((?:https?:)?//[^\s"'<>)]+)""",
    re.IGNORECASE,
)
_ANY_URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'<>)]*""")
# XML namespace names are identifiers, never fetched.
_NAMESPACES = ("http://www.w3.org/",)


def external_resources(page: str) -> list[str]:
    """The external URLs an HTML page would load or could name (namespaces excepted)."""
    found = [m.group(1) for m in _RESOURCE.finditer(page)]
    found += [m.group(0) for m in _ANY_URL.finditer(page)]
    return sorted({url for url in found if not url.startswith(_NAMESPACES)})


def _first_in_head(page: str, tag: str) -> str:
    """``page`` with ``tag`` at the start of its head (after the charset declaration)."""
    charset = _CHARSET.search(page)
    at = charset.end() if charset else page.lower().find("<head>") + len("<head>")
    return page[:at] + "\n    " + tag + page[at:]


def make_report_offline(index: Path) -> list[str]:
    """Strip the analytics from a rendered report and lock it to its own content: no network
    request, and its embedded data read whichever part of the page the browser parses first.

    Returns what was removed (for the log). Raises ``ReportNetworkError`` when an external URL
    remains in the page, after removing the unsafe file so nobody opens it by mistake."""
    page = index.read_text(encoding="utf-8")
    removed: list[str] = []
    for pattern in (_ANALYTICS_LOADER, _ANALYTICS_CONFIG):
        for match in pattern.finditer(page):
            removed.append(" ".join(match.group(0).split())[:120])
        page = pattern.sub("", page)
    # Both go first in the head, the policy before any script: inserted in reverse order.
    if _EMBEDDED_DATA_BLOCK in page and _EMBEDDED_DATA_FIRST not in page:
        page = _first_in_head(page, _EMBEDDED_DATA_FIRST)
    if "Content-Security-Policy" not in page:
        page = _first_in_head(page, _CSP_TAG)
    remaining = external_resources(page)
    if remaining:
        index.unlink(missing_ok=True)
        raise ReportNetworkError(
            f"the HTML report would contact {', '.join(remaining[:5])}; it was removed"
        )
    temporary = index.with_name(index.name + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    os.chmod(temporary, stat.S_IMODE(index.stat().st_mode))
    os.replace(temporary, index)
    return removed
