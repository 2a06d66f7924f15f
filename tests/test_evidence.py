"""Redaction: every spelling of a secret is masked in text, binary files and nested zips."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from urllib.parse import quote_plus

from portal.evidence import MASK, Redactor

SECRET = 'p@ss w0rd/"quoted"&more'


def test_all_spellings_are_masked() -> None:
    redactor = Redactor([SECRET])
    text = "\n".join([SECRET, quote_plus(SECRET), json.dumps({"password": SECRET})])
    redacted = redactor.redact_text(text)
    assert SECRET not in redacted
    assert quote_plus(SECRET) not in redacted
    assert redacted.count(MASK) == 3


def test_short_values_are_not_treated_as_secrets() -> None:
    redactor = Redactor(["abc", ""])
    assert len(redactor) == 0
    assert redactor.redact_text("abc") == "abc"


def test_nested_zip_is_redacted(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("network.trace", f'{{"cookie": "session={SECRET}"}}')
    outer = tmp_path / "trace.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        archive.writestr("trace.trace", f"password={quote_plus(SECRET)}")
        archive.writestr("resources/inner.zip", inner.getvalue())
    redactor = Redactor([SECRET])
    redactor.redact_file(outer)
    with zipfile.ZipFile(outer) as archive:
        assert MASK in archive.read("trace.trace").decode()
        nested = zipfile.ZipFile(io.BytesIO(archive.read("resources/inner.zip")))
        assert SECRET not in nested.read("network.trace").decode()


def test_redact_tree_counts_changed_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"v": SECRET}))
    (tmp_path / "b.txt").write_text("nothing to hide")
    redactor = Redactor([SECRET])
    assert redactor.redact_tree(tmp_path) == 1
    assert not redactor.contains_secret((tmp_path / "a.json").read_bytes())
