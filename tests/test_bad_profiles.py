"""The bad-profile corpus: each profile stops the real audit command with status 3, naming the
file, the line, the field and the problem, before any browser starts and without a traceback.

Each ``tests/bad_profiles/*.yaml`` says what is wrong with it in its first line and what the
output must say in its ``# expect:`` lines (``{dir}`` stands for the corpus directory). Files
that cannot live in the repository (too big, not UTF-8, a device, a directory, missing, empty)
are made at test time.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from portal.profile_file import MAX_PROFILE_BYTES

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "bad_profiles"
TIME_LIMIT_SECONDS = 30
# Problems of the file as a whole or of its YAML: there is a line but no setting to name.
NO_FIELD = {
    "yaml-invalid",
    "yaml-not-a-mapping",
    "yaml-billion-laughs",
    "yaml-recursive-alias",
    "yaml-too-deep",
}


def expectations(profile: Path) -> list[str]:
    lines = profile.read_text(encoding="utf-8").splitlines()
    found = [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]
    return [text.replace("{dir}", str(CORPUS)) for text in found]


def audit(profile: Path, tmp_path: Path) -> tuple[int, str, float]:
    """Run the real command on ``profile``; the exit status, its output and its duration."""
    marker = tmp_path / "browser-started"
    chromium = tmp_path / "chromium"
    chromium.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n", encoding="utf-8")
    chromium.chmod(chromium.stat().st_mode | stat.S_IXUSR)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PORTAL_PATIENT_PASSWORD": "correct horse battery staple",
        "EMPTY_PASSWORD": "",
        "PORTAL_AUDIT_CHROMIUM": str(chromium),
        "REFERENCE_PORTAL_STATE_DIR": str(tmp_path / "reference-portal"),
    }
    command = [sys.executable, "-m", "portal.audit", "--profile", str(profile)]
    command += ["--run-dir", str(tmp_path / "run"), "--no-html", "--no-latest"]
    started = time.monotonic()
    completed = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT_SECONDS,
    )
    seconds = time.monotonic() - started
    output = completed.stdout + completed.stderr
    assert not marker.exists(), "a browser was started for a bad profile"
    assert not (tmp_path / "reference-portal").exists(), "the bundled portal was started"
    assert not (tmp_path / "run" / "summary.json").exists(), output
    return completed.returncode, output, seconds


def assert_refused(status: int, output: str, seconds: float) -> None:
    assert status == 3, output
    assert "Traceback" not in output, output
    assert seconds < TIME_LIMIT_SECONDS


CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))


def test_the_corpus_covers_at_least_forty_bad_profiles() -> None:
    assert len(CORPUS_FILES) >= 40
    for profile in CORPUS_FILES:
        found = expectations(profile)
        assert found, f"{profile.name} has no '# expect:' line"
        for text in found:
            assert re.match(r":\d+: ", text), f"{profile.name}: every expectation names a line"
            if profile.stem not in NO_FIELD:
                assert re.match(r":\d+: [\w.]+: \S", text), f"{profile.name}: and a field"


@pytest.mark.parametrize("profile", CORPUS_FILES, ids=[p.stem for p in CORPUS_FILES])
def test_a_bad_profile_stops_the_audit_naming_file_line_and_field(
    profile: Path, tmp_path: Path
) -> None:
    status, output, seconds = audit(profile, tmp_path)
    assert_refused(status, output, seconds)
    for expected in expectations(profile):
        assert f"{profile}{expected}" in output, output
    if profile.stem.startswith("ca-file-"):
        # A file named as a CA is never quoted, whatever it holds.
        ca_file = re.search(r"ca_file: (\S+)", profile.read_text(encoding="utf-8"))
        assert ca_file is not None
        target = (CORPUS / ca_file.group(1)).resolve()
        if target.is_file() and os.access(target, os.R_OK):
            for line in target.read_text(encoding="utf-8", errors="replace").splitlines()[:5]:
                if len(line.strip()) > 8:
                    assert line.strip() not in output


def _too_big(tmp_path: Path) -> Path:
    path = tmp_path / "huge.yaml"
    line = b"# " + b"x" * 1021 + b"\n"
    with path.open("wb") as handle:
        for _ in range(MAX_PROFILE_BYTES // len(line) + 2):
            handle.write(line)
    return path


def _not_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(
        b"name: Test portal\nbase_url: https://portal.test.invalid/\nnote: Gr\xfc\xdfe\n"
    )
    return path


def _binary(tmp_path: Path) -> Path:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"name: Test portal\n\x00\x01\x02\x03 not text\n")
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.yaml"
    path.write_text("# only a comment\n", encoding="utf-8")
    return path


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.d"
    path.mkdir()
    return path


GENERATED: dict[str, tuple[Callable[[Path], Path], str]] = {
    "larger-than-1-MiB": (_too_big, ": larger than 1 MiB; a profile is a few kilobytes"),
    "dev-zero": (lambda _: Path("/dev/zero"), ": is not a regular file (a device, pipe or socket)"),
    "not-utf-8": (_not_utf8, ":3: not UTF-8 text (byte 0xfc at line 3)"),
    "binary": (_binary, ":2: not text (byte 0x00 at line 2)"),
    "empty": (_empty, ": is empty: a profile is a YAML mapping of settings"),
    "directory": (_directory, ": is a directory, not a profile file"),
    "missing": (lambda tmp: tmp / "no-such-profile.yaml", ": no such file"),
}


@pytest.mark.parametrize("case", sorted(GENERATED))
def test_a_file_that_is_no_profile_is_refused_before_it_is_parsed(
    case: str, tmp_path: Path
) -> None:
    make, expected = GENERATED[case]
    profile = make(tmp_path)
    status, output, seconds = audit(profile, tmp_path)
    assert_refused(status, output, seconds)
    assert f"{profile}{expected}" in output, output
