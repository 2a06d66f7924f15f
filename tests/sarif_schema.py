"""Validation of SARIF logs against the SARIF 2.1.0 JSON schema.

The schema is the pinned copy the npm package @microsoft/jest-sarif ships (package.json,
installed by ``make setup``): SARIF 2.1.0 rtm.5, JSON Schema draft 4.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json"


@cache
def _validator() -> Draft4Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema)


def sarif_errors(log: Any) -> list[str]:
    """Every way ``log`` breaks the schema, as "path: message" lines; empty when valid."""
    return [
        f"{'/'.join(str(part) for part in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(_validator().iter_errors(log), key=lambda e: list(e.absolute_path))
    ]
