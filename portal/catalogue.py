"""The controls catalogue (catalogue/controls.yaml): ID, statement, default thresholds, sources.

Every threshold has ``limits``: its type and the values a profile's ``policy:`` may give it. The
catalogue's own defaults are checked against them when it loads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from portal.resources import suite_root

CATALOGUE_PATH = suite_root() / "catalogue" / "controls.yaml"
_INTEGER_TEXT = re.compile(r"[-+]?[0-9]+")


def number_text(value: float) -> str:
    """A bound as a reader writes it: 86400, not 86400.0."""
    return str(int(value)) if float(value).is_integer() else str(value)


def shown(value: Any) -> str:
    """A profile value in a message, as YAML would write it, never more than a short line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Limit(BaseModel):
    """The values one threshold may take: a ranged integer or number, a boolean, one of some
    names (``choice``) or a non-empty list of them (``subset``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["integer", "number", "boolean", "choice", "subset"]
    min: float | None = None
    max: float | None = None
    values: list[str] = []

    @model_validator(mode="after")
    def _complete(self) -> Limit:
        ranged = self.type in ("integer", "number")
        if ranged != (self.min is not None and self.max is not None):
            raise ValueError(f"a {self.type} limit {'needs' if ranged else 'takes no'} min and max")
        if ranged and self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        listed = self.type in ("choice", "subset")
        if listed != bool(self.values):
            raise ValueError(f"a {self.type} limit {'needs' if listed else 'takes no'} values")
        return self

    def describe(self) -> str:
        """What the threshold may be, for messages and the controls page."""
        if self.type in ("integer", "number"):
            assert self.min is not None and self.max is not None
            kind = "an integer" if self.type == "integer" else "a number"
            return f"{kind} from {number_text(self.min)} to {number_text(self.max)}"
        if self.type == "boolean":
            return "true or false"
        if self.type == "choice":
            return f"one of {', '.join(self.values)}"
        return f"a list of one or more of {', '.join(self.values)}"

    def apply(self, value: Any) -> Any:
        """The value as the checks use it, or ValueError saying what is allowed.

        Numbers may be YAML numbers or number text (an environment reference gives text); a
        boolean must be a YAML boolean, never the text "false".
        """
        given = repr(value) if isinstance(value, list) and len(repr(value)) <= 80 else shown(value)
        refused = ValueError(f"must be {self.describe()}, got {given}")
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise refused
            return value
        if self.type == "choice":
            if not isinstance(value, str) or value not in self.values:
                raise refused
            return value
        if self.type == "subset":
            if (
                not isinstance(value, list)
                or not value
                or any(not isinstance(v, str) or v not in self.values for v in value)
                or len(set(value)) != len(value)
            ):
                raise refused
            return list(value)
        number = _number(value, integer=self.type == "integer")
        assert self.min is not None and self.max is not None
        if number is None or not self.min <= number <= self.max:
            raise refused
        return number


def _number(value: Any, *, integer: bool) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if integer:
            return int(text) if _INTEGER_TEXT.fullmatch(text) else None
        try:
            value = float(text)
        except ValueError:
            return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        if integer:
            return int(value) if value.is_integer() else None
        return value
    return None


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the catalogue with its applied value, typed as its limit says
    (integer: int, number: float, boolean: bool, choice: str, subset: tuple of str).

    tests/test_catalogue.py keeps these fields equal to the catalogue's thresholds.
    """

    idle_timeout_seconds: float
    absolute_timeout_seconds: float
    min_token_bits: int
    same_site: tuple[str, ...]
    max_failures: int
    lockout_seconds: float
    timing_tolerance_ms: float
    samples: int
    min_secret_bits: int
    max_drift_steps: int
    max_wrong_codes: int
    min_recovery_bits: int
    min_length_without_mfa: int
    min_length_with_mfa: int
    max_length_at_least: int
    min_zxcvbn_score: int
    composition_rules_allowed: bool
    max_link_lifetime_seconds: float
    min_reset_token_bits: int
    min_max_age_seconds: int
    recommended_max_age_seconds: int
    mozilla_level: str
    expiry_warning_days: int
    max_lifespan_days: int


PYTHON_TYPES: dict[str, type] = {
    "integer": int,
    "number": float,
    "boolean": bool,
    "choice": str,
    "subset": tuple,
}


# What a control's checks do to an account they use (portal/roles.py); only "signs in" leaves
# it as it was.
Effect = Literal["signs in", "wrong passwords", "locks", "changes MFA", "changes the password"]
# Where a control finds the account it uses: a key under the profile's ``accounts``, or the
# profile field that names one.
ACCOUNT_REFERENCES = frozenset(
    {"passwords.account", "passwords.reset_account", "auth_enum.known_username"}
)


class Control(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    area: str
    criticality: Literal["blocker", "critical", "normal", "minor", "trivial"]
    statement: str
    threshold: dict[str, Any] = {}
    limits: dict[str, Limit] = {}
    project_default: list[str] = []
    sources: list[str] = []
    destructive: bool = False
    slow: bool = False
    ends_other_sessions: bool = False
    uses: dict[str, Effect] = {}
    feature: str = ""
    feature_required: bool = True
    note: str = ""

    @model_validator(mode="after")
    def _defaults_within_limits(self) -> Control:
        if set(self.limits) != set(self.threshold):
            raise ValueError(
                f"{self.id}: limits must name exactly the thresholds "
                f"(thresholds {sorted(self.threshold)}, limits {sorted(self.limits)})"
            )
        for name, default in self.threshold.items():
            try:
                self.limits[name].apply(default)
            except ValueError as exc:
                raise ValueError(f"{self.id}: default {name}: {exc}") from None
        return self

    def not_offered(self, reason: str) -> tuple[str, str]:
        """The outcome (failed or skipped) and reason when a portal lacks this control's feature."""
        if self.feature_required:
            return "failed", f"required feature not offered ({self.feature}): {reason}"
        return "skipped", f"feature not offered ({self.feature}), not applicable: {reason}"

    @property
    def marker(self) -> str:
        return self.id.lower()


class Standard(BaseModel):
    """A standard the controls cite: its name and where to read it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    controls: list[Control]
    standards: dict[str, Standard]

    @model_validator(mode="after")
    def _sources_cite_known_standards(self) -> Catalogue:
        for control in self.controls:
            for source in control.sources:
                if source.split()[0] not in self.standards:
                    known = ", ".join(self.standards)
                    raise ValueError(f"{control.id}: source {source!r} cites none of {known}")
        return self

    def standard_of(self, source: str) -> Standard:
        """The standard a source such as ``A4 V3.3.2`` cites."""
        return self.standards[source.split()[0]]

    @model_validator(mode="after")
    def _shared_thresholds_agree(self) -> Catalogue:
        seen: dict[str, Control] = {}
        for control in self.controls:
            for name in control.threshold:
                first = seen.setdefault(name, control)
                if first is not control and (
                    first.threshold[name] != control.threshold[name]
                    or first.limits[name] != control.limits[name]
                ):
                    raise ValueError(
                        f"{name}: {first.id} and {control.id} give it different defaults or limits"
                    )
        return self

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

    def thresholds(self, overrides: dict[str, Any]) -> Thresholds:
        """The applied thresholds: a profile's checked ``policy:`` values over the defaults."""
        limits = self.limits()
        values: dict[str, Any] = {}
        for name, default in self.threshold_defaults().items():
            value = limits[name].apply(overrides.get(name, default))
            values[name] = PYTHON_TYPES[limits[name].type](value)
        return Thresholds(**values)

    def limits(self) -> dict[str, Limit]:
        """Every policy setting a profile may override, with the values it may take."""
        found: dict[str, Limit] = {}
        for control in self.controls:
            found.update(control.limits)
        return found

    def areas(self) -> list[str]:
        return sorted({control.area for control in self.controls})


@cache
def load_catalogue(path: Path = CATALOGUE_PATH) -> Catalogue:
    # libyaml's loader where PyYAML has it: the catalogue is read at every start.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as handle:
        return Catalogue.model_validate(yaml.load(handle, Loader=loader))
