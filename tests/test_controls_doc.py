"""docs/controls.md is generated; it must match the catalogue, features and weakness flags."""

from __future__ import annotations

from tools.controls_doc import DOC, render


def test_controls_page_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/controls.md is out of date: run .venv/bin/python -m tools.controls_doc"
    )
