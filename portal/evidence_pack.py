"""The evidence pack an auditor signs off: one zip of a run, with a manifest of digests.

``--evidence-pack`` writes ``evidence-pack.zip`` into the run folder when the run's reports are
complete (summary.json, the matrix, junit.xml, the SARIF log, the HTML report, every
attachment, all already redacted). Its ``manifest.json`` gives the tool and catalogue versions,
the profile's name (never its settings or secrets), the verdict, and each file's size and
SHA-256. ``portal-audit verify-pack ZIP`` later recomputes every digest: a file changed, added
or removed since is named, so a signed-off audit can be shown unaltered (record the manifest's
SHA-256, printed when the pack is written, with the sign-off).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from portal.report_files import write_private
from portal.resources import tool_version

PACK_NAME = "evidence-pack.zip"
MANIFEST = "manifest.json"
FORMAT = 1


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_pack(run_dir: Path) -> tuple[Path, str]:
    """The run's evidence pack; returns its path and the SHA-256 of its manifest."""
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    pack = run_dir / PACK_NAME
    files = sorted(
        path
        for path in run_dir.rglob("*")
        if path.is_file() and not path.is_symlink() and path != pack
    )
    contents = {path.relative_to(run_dir).as_posix(): path.read_bytes() for path in files}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "tool": "portal-audit",
        "tool_version": tool_version(),
        "catalogue_version": summary.get("catalogue_version"),
        "profile": summary.get("profile"),
        "target": summary.get("target"),
        "verdict": summary.get("verdict"),
        "started": summary.get("started"),
        "packed": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "files": [
            {"path": name, "bytes": len(data), "sha256": _digest(data)}
            for name, data in contents.items()
        ],
    }
    manifest_bytes = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    temporary = run_dir / f".{PACK_NAME}.tmp"
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, manifest_bytes)
        for name, data in contents.items():
            archive.writestr(name, data)
    write_private(pack, temporary.read_bytes())
    temporary.unlink()
    return pack, _digest(manifest_bytes)


def verify_pack(pack: Path) -> tuple[dict[str, Any], list[str]]:
    """The pack's manifest and every way the pack differs from it (empty: unaltered)."""
    with zipfile.ZipFile(pack) as archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            raise ValueError(f"{pack}: no {MANIFEST}: not a portal-audit evidence pack")
        manifest = json.loads(archive.read(MANIFEST))
        listed = {entry["path"]: entry for entry in manifest.get("files", [])}
        problems = []
        for name, entry in listed.items():
            if name not in names:
                problems.append(f"{name}: missing")
                continue
            data = archive.read(name)
            if _digest(data) != entry["sha256"] or len(data) != entry["bytes"]:
                problems.append(f"{name}: changed (SHA-256 differs from the manifest)")
        problems += [f"{name}: added" for name in sorted(names - set(listed) - {MANIFEST})]
    return manifest, problems
