"""portal-audit as ``pip install .`` gives it: a wheel built from the files a source distribution
carries, installed into a new virtualenv, away from the checkout.

The venv borrows the dependencies from the development venv (its site-packages after the venv's
own), so nothing is downloaded; pip compiles the installed modules, as for any user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from portal.resources import SUITE_FILES

ROOT = Path(__file__).resolve().parent.parent
# What a source distribution carries (MANIFEST.in and the packages of pyproject.toml).
SOURCE_FILES = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "requirements.txt",
    "requirements-dev.txt",
    "portal",
    "scanners",
    "steps",
    "reference_portal",
    *SUITE_FILES,
)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    workdir: Path

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "portal-audit"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return subprocess.run(
            [str(self.command), *arguments],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _copy_sources(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)


def install_wheel(base: Path) -> Installed:
    """Build the wheel under ``base`` and install it into ``base``/venv."""
    sources, wheels, venv, workdir = (base / n for n in ("src", "dist", "venv", "work"))
    sources.mkdir(parents=True)
    workdir.mkdir()
    _copy_sources(sources)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    # Offline: setuptools comes from the development venv (requirements-dev.txt).
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(sources)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(wheels.glob("portal_audit-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # The dependencies are the development venv's: its site-packages after the venv's own, so
    # the installed portal-audit, not the checkout's editable one, is what imports.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "development-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    return Installed(wheel, venv, workdir)
