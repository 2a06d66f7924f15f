"""Running whole audits as a user would (``python -m portal.audit``), for the project's tests."""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import yaml

from reference_portal.passwords import generate_password
from reference_portal.seed import password_variables, secret_variables

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_PROFILE = ROOT / "profiles" / "reference.yaml"
AUDIT_TIMEOUT = 600


@dataclass
class AuditResult:
    status: int
    run_dir: Path
    output: str
    summary: dict[str, Any] | None
    secrets: list[str] = field(default_factory=list, repr=False)

    def control(self, control_id: str) -> dict[str, Any]:
        assert self.summary is not None, self.output
        return self.summary["controls"][control_id]

    def statuses(self) -> dict[str, str]:
        assert self.summary is not None, self.output
        return {cid: c["status"] for cid, c in self.summary["controls"].items()}


def audit_env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFERENCE_")}
    env["REFERENCE_PATIENT_PASSWORD"] = "Pw-" + secrets.token_urlsafe(16)
    env["REFERENCE_PATIENT2_PASSWORD"] = "Pw-" + secrets.token_urlsafe(16)
    # Every seeded account's password and TOTP secret, also for profiles that do not start the
    # reference portal (whose run generates none), and so the artifact scan knows them all.
    for variable in password_variables():
        env.setdefault(variable, generate_password())
    for variable in secret_variables():
        env[variable] = pyotp.random_base32(32)
    env["REFERENCE_PORTAL_ISSUED_TOKENS"] = str(tmp_path / "issued-tokens.txt")
    env.update(extra or {})
    return env


def run_audit(
    tmp_path: Path,
    *,
    weaken: tuple[str, ...] = (),
    markexpr: str = "",
    profile: Path = REFERENCE_PROFILE,
    env: dict[str, str] | None = None,
    html: bool = False,
    deny_destructive: bool = False,
    workers: int | None = None,
    extra_args: tuple[str, ...] = (),
) -> AuditResult:
    run_dir = tmp_path / "run"
    env = env if env is not None else audit_env(tmp_path)
    command = [
        sys.executable,
        "-m",
        "portal.audit",
        "--profile",
        str(profile),
        "--run-dir",
        str(run_dir),
        "--no-latest",
    ]
    if not html:
        command.append("--no-html")
    if weaken:
        command += ["--weaken", ",".join(weaken)]
    if markexpr:
        command += ["-m", markexpr]
    if deny_destructive:
        command.append("--deny-destructive")
    if workers is not None:
        command += ["--workers", str(workers)]
    command += extra_args
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=AUDIT_TIMEOUT
    )
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else None
    secret_values = [v for k, v in env.items() if k.endswith(("PASSWORD", "TOTP_SECRET"))]
    return AuditResult(
        completed.returncode, run_dir, completed.stdout + completed.stderr, summary, secret_values
    )


def derived_profile(
    tmp_path: Path, changes: dict[str, Any], base: Path = REFERENCE_PROFILE
) -> Path:
    """A copy of a profile with some settings replaced (for negative tests).

    Keys are top-level settings, or dotted paths (``accounts.patient.password``) for one
    nested setting.
    """
    data = yaml.safe_load(base.read_text(encoding="utf-8"))
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        target = data
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    path = tmp_path / "derived-profile.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def weaknesses() -> list[dict[str, str]]:
    listed = subprocess.run(
        [sys.executable, "-m", "reference_portal", "--list-weaknesses"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: list[dict[str, str]] = json.loads(listed.stdout)
    return result


def implemented_controls() -> set[str]:
    """Control IDs that have a scenario in features/."""
    from portal.catalogue import load_catalogue

    markers = load_catalogue().by_marker()
    found: set[str] = set()
    for feature in (ROOT / "features").rglob("*.feature"):
        for token in feature.read_text(encoding="utf-8").split():
            if token.startswith("@") and token[1:] in markers:
                found.add(markers[token[1:]].id)
    return found


def file_contents(path: Path) -> Iterator[tuple[str, bytes]]:
    """A file's bytes, and those of every entry of a zip inside it (traces, HARs), by name."""
    data = path.read_bytes()
    yield str(path), data
    if data[:4] == b"PK\x03\x04":
        yield from _zip_contents(str(path), data)


def _zip_contents(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for entry in archive.namelist():
            content = archive.read(entry)
            yield f"{name}!{entry}", content
            if content[:4] == b"PK\x03\x04":
                yield from _zip_contents(f"{name}!{entry}", content)


def issued_secrets(run: AuditResult) -> list[str]:
    """Session tokens the reference portal issued and passwords the checks set in this run."""
    log = run.run_dir.parent / "issued-tokens.txt"
    assert log.is_file(), "the reference portal records issued session tokens for this test"
    # One per line: a password set by a check may be a passphrase with spaces.
    return [line for line in log.read_text(encoding="utf-8").splitlines() if line]


def leaked_secrets(run_dir: Path, secrets: list[str]) -> tuple[int, list[str]]:
    """(files and entries checked, names of those holding any of ``secrets``)."""
    needles = [s.encode() for s in secrets]
    checked, leaks = 0, []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        for name, content in file_contents(path):
            checked += 1
            if any(n in content for n in needles):
                leaks.append(name)
    return checked, leaks
