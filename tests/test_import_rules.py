"""The import rules of docs/architecture.md, read from the code's own imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("portal", "scanners", "steps")


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


@pytest.mark.parametrize("path", [m for p in PRODUCT for m in modules(p)], ids=_name)
def test_the_product_does_not_import_its_test_target(path: Path) -> None:
    assert not imported_packages(path) & {"reference_portal", "targets", "tests", "tools"}, _name(
        path
    )


@pytest.mark.parametrize("path", [m for p in PRODUCT for m in modules(p)], ids=_name)
def test_the_product_knows_no_variable_of_the_reference_portal(path: Path) -> None:
    """The reference portal's address and accounts reach its profile from its target provider,
    not through variables the product would set or read."""
    assert "REFERENCE_" not in path.read_text(encoding="utf-8"), _name(path)


@pytest.mark.parametrize("path", modules("portal"), ids=_name)
def test_only_the_plugin_reaches_into_steps(path: Path) -> None:
    if _name(path) == "portal/plugin.py":
        return
    assert "steps" not in imported_packages(path), _name(path)


@pytest.mark.parametrize("path", modules("reference_portal"), ids=_name)
def test_the_reference_portal_stands_alone(path: Path) -> None:
    """Also its target provider, which answers the audit's hook by duck typing."""
    assert not imported_packages(path) & {"portal", "scanners", "steps", "tests", "tools"}, _name(
        path
    )


def test_the_rule_reader_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from reference_portal.seed import x\n    import steps.a\n")
    assert imported_packages(module) == {"reference_portal", "steps"}
