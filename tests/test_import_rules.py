"""The import rules of docs/architecture.md, read from the code's own imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The product modules that still know the bundled test target (to be taken out, issue 11).
KNOWS_REFERENCE_PORTAL = {"portal/reference_target.py", "portal/controls_doc.py"}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, wherever the import stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).glob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", modules("scanners"), ids=_name)
def test_scanners_are_pure(path: Path) -> None:
    forbidden = {"portal", "steps", "reference_portal", "playwright", "pytest", "pytest_bdd"}
    assert not imported_packages(path) & forbidden, _name(path)


@pytest.mark.parametrize("path", modules("portal") + modules("steps"), ids=_name)
def test_the_product_does_not_import_its_test_target(path: Path) -> None:
    if _name(path) in KNOWS_REFERENCE_PORTAL:
        return
    assert "reference_portal" not in imported_packages(path), _name(path)
    assert "tests" not in imported_packages(path), _name(path)


@pytest.mark.parametrize("path", modules("portal"), ids=_name)
def test_only_the_plugin_reaches_into_steps(path: Path) -> None:
    if _name(path) == "portal/plugin.py":
        return
    assert "steps" not in imported_packages(path), _name(path)


@pytest.mark.parametrize("path", modules("reference_portal"), ids=_name)
def test_the_reference_portal_stands_alone(path: Path) -> None:
    assert not imported_packages(path) & {"portal", "scanners", "steps", "tests"}, _name(path)


def test_the_rule_reader_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from reference_portal.seed import x\n    import steps.a\n")
    assert imported_packages(module) == {"reference_portal", "steps"}
