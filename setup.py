"""The wheel's build step: the suite's own files go inside the portal package.

pyproject.toml holds the project's metadata; this adds one thing setuptools cannot declare:
features/, catalogue/, profiles/ and pytest.ini live beside the packages (the checkout's
layout), and an installed portal-audit needs them, so the build copies them to
portal/bundled/ (portal.resources finds them there). An editable install uses the checkout's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# portal.resources.SUITE_FILES; not imported, as the build may run without the dependencies.
SUITE_FILES = ("features", "catalogue", "profiles", "pytest.ini")


class BuildWithSuiteFiles(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        bundled = Path(self.build_lib) / "portal" / "bundled"
        for name in SUITE_FILES:
            source, target = HERE / name, bundled / name
            if source.is_dir():
                shutil.copytree(
                    source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)


setup(cmdclass={"build_py": BuildWithSuiteFiles})
