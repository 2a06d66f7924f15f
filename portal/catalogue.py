"""The controls catalogue (catalogue/controls.yaml): ID, statement, default thresholds, sources."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

CATALOGUE_PATH = Path(__file__).resolve().parent.parent / "catalogue" / "controls.yaml"


class Control(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    area: str
    statement: str
    threshold: dict[str, Any] = {}
    project_default: list[str] = []
    sources: list[str] = []
    destructive: bool = False
    slow: bool = False
    ends_other_sessions: bool = False
    feature: str = ""
    feature_required: bool = True
    note: str = ""

    def not_offered(self, reason: str) -> tuple[str, str]:
        """The outcome (failed or skipped) and reason when a portal lacks this control's feature."""
        if self.feature_required:
            return "failed", f"required feature not offered ({self.feature}): {reason}"
        return "skipped", f"feature not offered ({self.feature}), not applicable: {reason}"

    @property
    def marker(self) -> str:
        return self.id.lower()


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    controls: list[Control]

    def get(self, control_id: str) -> Control:
        for control in self.controls:
            if control.id == control_id.upper():
                return control
        raise KeyError(control_id)

    def by_marker(self) -> dict[str, Control]:
        return {control.marker: control for control in self.controls}

    def threshold_defaults(self) -> dict[str, Any]:
        """Every policy setting a profile may override, with its catalogue default."""
        defaults: dict[str, Any] = {}
        for control in self.controls:
            defaults.update(control.threshold)
        return defaults

    def areas(self) -> list[str]:
        return sorted({control.area for control in self.controls})


@cache
def load_catalogue(path: Path = CATALOGUE_PATH) -> Catalogue:
    with path.open(encoding="utf-8") as handle:
        return Catalogue.model_validate(yaml.safe_load(handle))
