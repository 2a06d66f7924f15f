"""Flows: short, validated step lists for portal pages one selector cannot describe.

A profile field that names a control to click (``sign_out.control``, ``sessions_page.end_others``,
``mfa.recovery_link``, ``mfa.enrolment.start``, ``mfa.enrolment.remove``, the password forms'
``submit`` buttons) may instead hold a list of steps; a few fields hold only steps
(``mfa.enrolment.reauthenticate``, ``passwords.change.before_form``); ``mfa.enrolment.shown_key``
and ``recovery_codes`` take steps that read what they need into named outputs. Each step is a
mapping with exactly one kind::

    - open: /account/security            # a path (joined to base_url) or a URL
    - click: "text=Remove"               # click, then wait for the page the portal answers with
    - fill: "#password"                  # type a value: a {placeholder} the driver fills in
      value: "{password}"                #   (never a secret written into the profile)
    - expect: "#confirm-removal"         # wait until the selector is visible
    - read_text: "pre.codes"             # the element's text into a named output
      into: block
    - read_value: "input#key"            # an input's value (also when the input is disabled)
      into: key
    - split: block                       # the items of a read text that match the pattern
      pattern: "[a-z0-9]{4}-[a-z0-9]{4}"
      into: recovery_codes

``optional: true`` skips a selector step whose element is not there within a short bound
(``OPTIONAL_WAIT_SECONDS``), and a split whose text was not read. Every other wait is bounded by
the profile's navigation timeout; a step that cannot run raises ``Inconclusive`` naming the
flow, the step's number and kind, its selector and the page (without query or fragment: reset
links carry tokens). Values filled in are registered with the redactor before they are typed.

This module is the steps' model, what a profile may write; ``portal.flow_runner`` runs them in a
browser (so reading a profile loads no browser library).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from portal.errors import Inconclusive


def _valid_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


# A profile string that must compile as a regular expression.
RegexPattern = Annotated[str, AfterValidator(_valid_regex)]

StepKind = Literal["open", "click", "fill", "expect", "read_text", "read_value", "split"]
STEP_KINDS: tuple[StepKind, ...] = (
    "open",
    "click",
    "fill",
    "expect",
    "read_text",
    "read_value",
    "split",
)
SELECTOR_KINDS = frozenset({"click", "fill", "expect", "read_text", "read_value"})
MODIFIERS = ("value", "into", "pattern", "optional")
# What a fill step may type. The driver supplies each value; a flow field lists the ones it has.
PLACEHOLDERS = frozenset({"password", "current_password", "new_password", "code"})
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Step(BaseModel):
    """One step of a flow: exactly one kind, plus the modifiers that kind takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    open: str | None = Field(default=None, description="Path or URL to open")
    click: str | None = Field(default=None, description="Selector to click")
    fill: str | None = Field(default=None, description="Selector of a field to type into")
    expect: str | None = Field(default=None, description="Selector that must become visible")
    read_text: str | None = Field(default=None, description="Selector whose text is read")
    read_value: str | None = Field(
        default=None, description="Selector of a field whose value is read"
    )
    split: str | None = Field(default=None, description="Output (a text) to split into items")
    value: str | None = Field(
        default=None, description="What a fill step types: text or a {placeholder}"
    )
    into: str | None = Field(default=None, description="Output name of a read or split step")
    pattern: RegexPattern | None = Field(
        default=None, description="Regular expression matching each item of a split step"
    )
    optional: bool = Field(
        default=False, description="Skip the step when its element is not there (short wait)"
    )

    @model_validator(mode="before")
    @classmethod
    def _a_mapping_with_a_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(
                'a step is a mapping with one kind, such as {click: "#remove"} '
                f"(kinds: {', '.join(STEP_KINDS)})"
            )
        if not any(kind in data for kind in STEP_KINDS):
            unknown = sorted(str(k) for k in data if k not in MODIFIERS)
            named = f"unknown step kind {unknown[0]!r}; " if unknown else "no step kind; "
            raise ValueError(named + f"a step is one of: {', '.join(STEP_KINDS)}")
        return data

    @field_validator("value")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        if value is not None:
            for name in PLACEHOLDER.findall(value):
                if name not in PLACEHOLDERS:
                    known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
                    raise ValueError(f"unknown placeholder {{{name}}} (known: {known})")
        return value

    @field_validator("into", "split")
    @classmethod
    def _output_name(cls, value: str | None) -> str | None:
        if value is not None and not OUTPUT_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not an output name (letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _one_kind_and_its_modifiers(self) -> Step:
        kinds = [kind for kind in STEP_KINDS if getattr(self, kind) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a step has exactly one kind; this one has {' and '.join(kinds)}")
        kind = kinds[0]
        if (kind == "fill") != (self.value is not None):
            raise ValueError(
                "a fill step needs 'value'" if kind == "fill" else "'value' belongs to fill steps"
            )
        reads = kind in ("read_text", "read_value", "split")
        if reads != (self.into is not None):
            raise ValueError(
                f"a {kind} step needs 'into' (the output's name)"
                if reads
                else "'into' belongs to read_text, read_value and split steps"
            )
        if (kind == "split") != (self.pattern is not None):
            raise ValueError(
                "a split step needs 'pattern' (a regular expression matching each item)"
                if kind == "split"
                else "'pattern' belongs to split steps"
            )
        if kind == "open" and self.optional:
            raise ValueError("an open step cannot be optional: it has no element to wait for")
        return self

    # -- reading ---------------------------------------------------------------------------
    @property
    def kind(self) -> StepKind:
        return next(kind for kind in STEP_KINDS if getattr(self, kind) is not None)

    @property
    def target(self) -> str:
        """The step's selector, path or source output."""
        value = getattr(self, self.kind)
        assert isinstance(value, str)
        return value

    @property
    def selector(self) -> str | None:
        return self.target if self.kind in SELECTOR_KINDS else None


Flow = tuple[Step, ...]


def _flow_problems(steps: Sequence[Step]) -> list[str]:
    """Problems only the whole list shows: a split of a text no earlier step read."""
    problems: list[str] = []
    written: set[str] = set()
    for number, step in enumerate(steps, 1):
        if step.kind == "split" and step.target not in written:
            problems.append(f"step {number} splits {step.target!r}, which no earlier step reads")
        if step.into:
            written.add(step.into)
    return problems


def _steps_schema(*, selector_allowed: bool) -> Callable[..., core_schema.CoreSchema]:
    """The schema of a flow field; ``selector_allowed`` also takes a plain selector string.

    A plain ``str | tuple[Step, ...]`` union would report a bad step under a union-member label
    ("tuple[Step, ...]") that hides its line in the profile; this keeps the step's own path.
    """
    expected = "a selector, or a list of steps" if selector_allowed else "a list of steps"

    def schema(source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        steps = handler.generate_schema(tuple[Step, ...])

        def validate(value: Any, validate_steps: core_schema.ValidatorFunctionWrapHandler) -> Any:
            if selector_allowed and isinstance(value, str):
                return value
            if not isinstance(value, list | tuple):
                raise ValueError(f"give {expected} (see profiles/template.yaml)")
            if not value:
                raise ValueError("a flow needs at least one step")
            flow = validate_steps(value)
            problems = _flow_problems(flow)
            if problems:
                raise ValueError("; ".join(problems))
            return flow

        return core_schema.no_info_wrap_validator_function(validate, steps)

    return schema


# A profile field that takes a selector (its usual meaning) or a flow.
SelectorOrFlow = Annotated[str | Flow, GetPydanticSchema(_steps_schema(selector_allowed=True))]
# A profile field that takes only a flow.
Steps = Annotated[Flow, GetPydanticSchema(_steps_schema(selector_allowed=False))]


# -- checks the profile's sections make of their flows ----------------------------------------


def placeholders_in(steps: Sequence[Step]) -> set[str]:
    return {name for step in steps if step.value for name in PLACEHOLDER.findall(step.value)}


def check_flow(
    value: str | Flow | None,
    *,
    placeholders: frozenset[str] | set[str] = frozenset(),
    outputs: Sequence[str] = (),
    list_output: str | None = None,
    starts_with_selector: bool = False,
) -> None:
    """Raise ValueError when a flow uses what its field does not offer or lacks what it needs."""
    if value is None or isinstance(value, str):
        return
    unavailable = sorted(placeholders_in(value) - set(placeholders))
    if unavailable:
        offered = ", ".join("{" + p + "}" for p in sorted(placeholders)) or "none"
        raise ValueError(
            f"this flow cannot fill {', '.join('{' + p + '}' for p in unavailable)} "
            f"(placeholders here: {offered})"
        )
    written = {step.into for step in value if step.into}
    for name in outputs:
        if name not in written:
            raise ValueError(f"this flow must read its result into {name!r} (into: {name})")
    if list_output is not None and not any(
        step.kind == "split" and step.into == list_output for step in value
    ):
        raise ValueError(f"this flow must end with a split step into {list_output!r}")
    if starts_with_selector and (value[0].selector is None or value[0].optional):
        raise ValueError(
            "the flow's first step must be a required click, fill or expect whose element shows "
            "the page is the right one (its selector is what the driver waits for)"
        )


def first_selector(value: str | Flow) -> str:
    """The selector a page is recognised by: the field's own, or its flow's first step's."""
    if isinstance(value, str):
        return value
    selector = value[0].selector
    if selector is None:
        raise Inconclusive("the flow does not start with a selector step")
    return selector
