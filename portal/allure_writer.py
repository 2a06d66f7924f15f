"""Allure results redacted as they are written, not at the end of the session.

allure-pytest-bdd writes each scenario's result (with its step parameters, the ``repr`` of every
step argument) and each attachment through allure_commons' ``AllureFileLogger`` the moment they
are ready. A run stopped before the session ends (SIGTERM, a killed CI job) never reaches the
plugin's final ``redact_tree``, so the file logger is replaced by one that redacts on the way out,
with the redactor as it is then: secrets the run learned so far (passwords it set, codes, cookie
values) are already in it. The final ``redact_tree`` stays as a second pass for secrets learned
after a file was written.

A step's parameters are what its Gherkin text states. allure-pytest-bdd records every argument
of the step function, and the suite's step functions take its own objects as fixtures (the
profile, the driver, the evidence, a signed-in visit): their ``repr`` (five kilobytes for a
profile, in every step) would say nothing to an auditor and widen what redaction must catch, so
the writer leaves out every parameter named by a fixture the run's steps were given.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import allure_commons
import pytest
from allure_commons import hookimpl
from allure_commons.logger import AllureFileLogger
from attr import asdict

from portal.evidence import Redactor
from portal.report_files import MODES, write_private

# Images and videos are kept as they are: masking bytes inside compressed pixels would only
# corrupt them, and screenshots mask password fields when they are taken.
_MEDIA_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"BM",  # BMP
    b"\x1a\x45\xdf\xa3",  # WebM / Matroska
)


def _is_media(data: bytes) -> bool:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    if data[4:8] == b"ftyp":  # MP4
        return True
    return data.startswith(_MEDIA_SIGNATURES)


def redact_attachment(redactor: Redactor, data: bytes) -> bytes:
    """An attachment's bytes with every secret masked: zip archives (Playwright traces, zipped
    HARs) entry by entry, images and videos unchanged, anything else as text."""
    if data[:4] == b"PK\x03\x04":
        try:
            return redactor.redact_zip(data)
        except (zipfile.BadZipFile, OSError, ValueError):
            return redactor.redact_bytes(data)
    if _is_media(data):
        return data
    return redactor.redact_bytes(data)


# The names of the fixtures the run's step functions were given (note_step_fixtures).
STEP_FIXTURES = pytest.StashKey[set[str]]()


def note_step_fixtures(config: pytest.Config, names: Iterable[str]) -> None:
    """Remember that ``names`` were fixtures of a step function, not stated by its step."""
    config.stash.setdefault(STEP_FIXTURES, set()).update(names)


def _without_fixtures(steps: list[dict[str, Any]], fixtures: set[str]) -> None:
    """Each step's (and sub-step's) parameters without those named by a fixture."""
    for step in steps:
        kept = [p for p in step.get("parameters", []) if p.get("name") not in fixtures]
        if kept:
            step["parameters"] = kept
        else:
            step.pop("parameters", None)
        _without_fixtures(step.get("steps", []), fixtures)


def _redacted(redactor: Redactor, value: Any) -> Any:
    """Every string of a result's data redacted, keys included (JSON structure kept intact)."""
    if isinstance(value, str):
        return redactor.redact_text(value)
    if isinstance(value, dict):
        return {_redacted(redactor, k): _redacted(redactor, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(redactor, item) for item in value]
    return value


class RedactingFileLogger:
    """allure_commons' file logger, with every JSON and attachment redacted as it is written."""

    def __init__(self, report_dir: Path, redactor: Redactor, step_fixtures: set[str]) -> None:
        self.report_dir = Path(report_dir).absolute()
        self.redactor = redactor
        self.step_fixtures = step_fixtures  # filled as steps run (note_step_fixtures)
        self.report_dir.mkdir(parents=True, exist_ok=True, mode=MODES["private"].directory)

    def _report_item(self, item: Any) -> None:
        data = asdict(item, filter=lambda _, v: v or v is False)
        _without_fixtures(data.get("steps", []), self.step_fixtures)
        indent = 4 if os.environ.get("ALLURE_INDENT_OUTPUT") else None
        text = json.dumps(_redacted(self.redactor, data), indent=indent, ensure_ascii=False)
        name = item.file_pattern.format(prefix=uuid.uuid4())
        write_private(self.report_dir / name, text.encode("utf-8"))

    @hookimpl
    def report_result(self, result: Any) -> None:
        self._report_item(result)

    @hookimpl
    def report_container(self, container: Any) -> None:
        self._report_item(container)

    @hookimpl
    def report_globals(self, globals_item: Any) -> None:
        self._report_item(globals_item)

    @hookimpl
    def report_attached_file(self, source: str | os.PathLike[str], file_name: str) -> None:
        data = Path(source).read_bytes()
        write_private(self.report_dir / file_name, redact_attachment(self.redactor, data))

    @hookimpl
    def report_attached_data(self, body: str | bytes, file_name: str) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        write_private(self.report_dir / file_name, redact_attachment(self.redactor, data))


def install_redacting_writer(config: pytest.Config, redactor: Redactor) -> None:
    """Replace the Allure file logger(s) registered for this run by redacting ones.

    Call it once the redactor exists and before any scenario runs (the results directory is
    the one ``--alluredir`` named). Without ``--alluredir`` there is no logger and nothing to do;
    a second call changes nothing.
    """
    manager = allure_commons.plugin_manager
    for plugin in list(manager.get_plugins()):
        if isinstance(plugin, RedactingFileLogger):
            return
    for plugin in list(manager.get_plugins()):
        if not isinstance(plugin, AllureFileLogger):
            continue
        fixtures = config.stash.setdefault(STEP_FIXTURES, set())
        writer = RedactingFileLogger(plugin._report_dir, redactor, fixtures)
        manager.unregister(plugin)
        manager.register(writer)
        config.add_cleanup(_restorer(plugin, writer))


def _restorer(original: AllureFileLogger, writer: RedactingFileLogger) -> Any:
    """allure-pytest-bdd unregisters its own logger when the config ends (a cleanup that runs
    after this one): put it back so that finds it, and take the redacting writer away."""

    def restore() -> None:
        manager = allure_commons.plugin_manager
        if manager.is_registered(writer):
            manager.unregister(writer)
        if not manager.is_registered(original):
            manager.register(original)

    return restore
