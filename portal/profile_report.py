"""Reporting a profile's problems: each at its field and line (``Reporter``), and pydantic's
validation errors in the profile's terms, with the ranges numeric fields allow."""

from __future__ import annotations

import typing
from typing import Annotated, Any

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from portal.catalogue import number_text, shown
from portal.profile_fields import boolean_problem
from portal.profile_file import ProfileError, ProfileErrors


class Reporter:
    """Collects every problem of one profile file, each with its field and line."""

    def __init__(self, file: str, lines: dict[tuple[Any, ...], int]):
        self.file = file
        self.lines = lines
        self.errors: list[ProfileError] = []
        self.failed: list[tuple[Any, ...]] = []

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def fail(self, path: tuple[Any, ...], problem: str) -> None:
        field = ".".join(str(p) for p in path)
        self.errors.append(ProfileError(self.file, problem, field=field, line=self.line_of(path)))
        self.failed.append(path)

    def failed_already(self, path: tuple[Any, ...]) -> bool:
        """Whether a problem was reported at or above ``path`` (its value stood in as "")."""
        return any(path[: len(done)] == done for done in self.failed)


_NUMBER_ERRORS = frozenset(
    {
        "float_parsing",
        "float_type",
        "int_parsing",
        "int_type",
        "int_from_float",
        "finite_number",
        "number_type",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
    }
)


def validation_errors(
    exc: ValidationError, reporter: Reporter, model: type[BaseModel]
) -> ProfileErrors:
    """Every problem pydantic found in ``model``'s data, each at its field and line, besides
    those ``reporter`` already holds (a field reported once is not reported again)."""
    for error in exc.errors():
        loc = tuple(error["loc"])
        if not reporter.failed_already(loc):
            reporter.fail(loc, message_for(error, model))
    return ProfileErrors(reporter.errors)


def message_for(error: Any, model: type[BaseModel]) -> str:
    """A pydantic error in the profile's terms: what the setting must be, and what it got
    (``model`` is the model validated, whose fields the error's location names)."""
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        return "unknown setting (check the spelling against profiles/template.yaml)"
    if kind == "missing":
        return "required setting is missing"
    if kind in ("bool_type", "bool_parsing"):
        return boolean_problem(value)
    if kind in _NUMBER_ERRORS:
        return f"must be {_range_of(model, tuple(error['loc']))}, got {shown(value)}"
    if kind == "string_type":
        return f"must be text, got {shown(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of settings, got {shown(value)}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, got {shown(value)}"
    if kind == "too_short":
        least, actual = error["ctx"]["min_length"], error["ctx"]["actual_length"]
        return f"must list at least {least} item{'s' * (least != 1)}, got {actual}"
    if kind == "literal_error":
        return f"must be {error['ctx']['expected']}, got {shown(value)}"
    return str(error["msg"]).removeprefix("Value error, ")


def _range_of(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """'an integer from 1 to 65535' for the numeric field at ``loc``, from its constraints."""
    field = _field_at(model, loc)
    if field is None:
        return "a number"
    kind = "an integer" if int in _flat_types(field.annotation) else "a number"
    low = high = ""
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            low = f"from {number_text(typing.cast(float, bound.ge))}"
        elif isinstance(bound, annotated_types.Gt):
            low = f"above {number_text(typing.cast(float, bound.gt))}"
        elif isinstance(bound, annotated_types.Le):
            high = f"to {number_text(typing.cast(float, bound.le))}"
        elif isinstance(bound, annotated_types.Lt):
            high = f"below {number_text(typing.cast(float, bound.lt))}"
    if low.startswith("above") and high.startswith("to"):
        high = "and at most" + high.removeprefix("to")
    return " ".join(part for part in (kind, low, high) if part)


def _flat_types(annotation: Any) -> set[Any]:
    """The plain types inside an annotation (through Optional, Annotated, list, dict...)."""
    found: set[Any] = set()
    arguments = typing.get_args(annotation)
    if typing.get_origin(annotation) is Annotated:
        arguments = arguments[:1]
    if not arguments:
        return {annotation}
    for argument in arguments:
        found |= _flat_types(argument)
    return found


def _field_at(root: type[BaseModel], loc: tuple[Any, ...]) -> FieldInfo | None:
    """The model field a pydantic error location ends in (list indexes and dict keys skipped)."""
    model: type[BaseModel] | None = root
    found: FieldInfo | None = None
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        found = model.model_fields.get(part)
        if found is None:
            return None
        models = [
            t
            for t in _flat_types(found.annotation)
            if isinstance(t, type) and issubclass(t, BaseModel)
        ]
        model = models[0] if models else None
    return found
