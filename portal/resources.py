"""Where the suite's own files are, in a checkout or installed, and which version it is.

In a checkout (and the editable install ``make setup`` makes) the scenarios, the catalogue, the
profiles and pytest.ini sit beside the packages, and reports go to the checkout's reports/. A
built wheel (``pip install .``, ``pipx install .``) carries copies of them inside this package,
under ``bundled/`` (setup.py's build step puts them there), and its reports go to ./reports.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT = PACKAGE_DIR.parent
BUNDLED = PACKAGE_DIR / "bundled"
# What the build step copies into BUNDLED (setup.py repeats the list; a test holds them equal).
SUITE_FILES = ("features", "catalogue", "profiles", "pytest.ini")


def is_installed_copy() -> bool:
    """True for a wheel's install, False for a checkout (editable or not installed)."""
    return BUNDLED.is_dir()


def suite_root() -> Path:
    """The directory holding features/, catalogue/, profiles/ and pytest.ini."""
    return BUNDLED if is_installed_copy() else CHECKOUT


def reports_root() -> Path:
    """reports/ of the checkout, or of the current directory for an installed copy."""
    return (Path.cwd() if is_installed_copy() else CHECKOUT) / "reports"


def steps_dir() -> Path:
    """The step definitions' package, whose test_audit.py binds the scenarios."""
    spec = importlib.util.find_spec("steps")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the steps package of portal-audit is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def tool_version() -> str:
    # Imported here: importlib.metadata costs every start of the command otherwise.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("portal-audit")
    except PackageNotFoundError:  # a checkout used without install
        return "unknown (not installed)"
