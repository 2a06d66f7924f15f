"""The evidence pack: the whole run in one zip with a manifest of SHA-256 digests, no secret in
it, and verify-pack telling an unaltered pack from a changed, added or removed file."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from portal.evidence_pack import MANIFEST, PACK_NAME
from tests.audits import issued_secrets, leaked_secrets, run_audit


def verify(pack: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", "verify-pack", str(pack)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def rewritten(pack: Path, target: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of ``pack`` with entries replaced (bytes), removed (None) or added."""
    with zipfile.ZipFile(pack) as source, zipfile.ZipFile(target, "w") as copy:
        for name in source.namelist():
            if name in change:
                if change[name] is not None:
                    copy.writestr(name, change[name] or b"")
                continue
            copy.writestr(name, source.read(name))
        for name, data in change.items():
            if name not in source.namelist() and data is not None:
                copy.writestr(name, data)
    return target


def test_an_evidence_pack_holds_the_run_and_proves_it_unaltered(tmp_path: Path) -> None:
    run = run_audit(
        tmp_path,
        weaken=("hsts_missing",),
        markexpr="hdr_hsts or sess_logout",
        extra_args=("--evidence-pack",),
    )
    assert run.status == 1, run.output[-3000:]
    pack = run.run_dir / PACK_NAME
    with zipfile.ZipFile(pack) as archive:
        manifest_bytes = archive.read(MANIFEST)
        manifest = json.loads(manifest_bytes)
        names = set(archive.namelist())
        for entry in manifest["files"]:
            assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
            on_disk = (run.run_dir / entry["path"]).read_bytes()
            assert hashlib.sha256(on_disk).hexdigest() == entry["sha256"], entry["path"]
    assert {"summary.json", "compliance-matrix.md", "junit.xml", "portal-audit.sarif"} <= names
    assert "exit-status" in names and any(n.startswith("allure-results/") for n in names)
    assert manifest["profile"] == "Bundled reference patient portal"
    assert manifest["catalogue_version"] == 1 and manifest["verdict"] == "noncompliant"
    assert manifest["tool_version"]
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    assert f"manifest SHA-256 {digest}" in run.output
    checked, leaks = leaked_secrets(run.run_dir, run.secrets + issued_secrets(run))
    assert checked > 0 and not leaks, leaks

    intact = verify(pack)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "unaltered" in intact.stdout
    summary = json.loads((run.run_dir / "summary.json").read_text())
    summary["verdict"] = "compliant"
    changed = rewritten(
        pack,
        tmp_path / "changed.zip",
        {
            "summary.json": json.dumps(summary).encode(),
            "junit.xml": None,
            "extra.txt": b"added later",
        },
    )
    altered = verify(changed)
    assert altered.returncode == 1, altered.stdout
    assert "summary.json: changed" in altered.stdout
    assert "junit.xml: missing" in altered.stdout and "extra.txt: added" in altered.stdout
    not_a_pack = tmp_path / "plain.zip"
    with zipfile.ZipFile(not_a_pack, "w") as archive:
        archive.writestr("x.txt", b"x")
    assert verify(not_a_pack).returncode == 3
    assert verify(tmp_path / "missing.zip").returncode == 3
