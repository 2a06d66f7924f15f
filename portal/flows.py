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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout
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

if TYPE_CHECKING:
    from portal.evidence import Redactor
    from portal.profile import Profile


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
# A radio button or a check box, or the label of one.
_CHOOSES_ONLY = """element => {
    const input = element.tagName === 'LABEL' ? element.control : element;
    return !!input && input.tagName === 'INPUT' && ['radio', 'checkbox'].includes(input.type);
}"""
MODIFIERS = ("value", "into", "pattern", "optional")
# What a fill step may type. The driver supplies each value; a flow field lists the ones it has.
PLACEHOLDERS = frozenset({"password", "current_password", "new_password", "code"})
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OPTIONAL_WAIT_SECONDS = 2.0

# Reads a form field's value (disabled ones included) and any other element's text.
_VALUE_OR_TEXT = """element => (element instanceof HTMLInputElement
    || element instanceof HTMLTextAreaElement || element instanceof HTMLSelectElement)
    ? element.value : element.innerText"""


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


# -- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowOutcome:
    """What a flow read and did. Outputs are secrets for all the suite knows: kept off reprs."""

    outputs: dict[str, str | list[str]] = field(default_factory=dict, repr=False)
    filled: frozenset[str] = frozenset()  # placeholders actually typed (optional steps may skip)
    skipped: tuple[int, ...] = ()  # numbers of the optional steps that were skipped

    def text(self, name: str) -> str | None:
        value = self.outputs.get(name)
        return value if isinstance(value, str) else None

    def items(self, name: str) -> list[str]:
        value = self.outputs.get(name)
        if isinstance(value, list):
            return value
        return [value] if value else []


def where(page: Page) -> str:
    """The page's URL without query or fragment (tokens live there)."""
    parts = urlsplit(page.url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def value_or_text(locator: Locator, timeout_ms: float) -> str:
    """An input, textarea or select's value (disabled ones too), else the element's text."""
    value = locator.evaluate(_VALUE_OR_TEXT, timeout=timeout_ms)
    return value if isinstance(value, str) else ""


def run_flow(
    page: Page,
    steps: Sequence[Step],
    *,
    name: str,
    profile: Profile,
    redactor: Redactor,
    values: Mapping[str, str | None] | None = None,
    secret_outputs: bool = True,
) -> FlowOutcome:
    """Run a flow's steps in order on ``page``.

    ``values`` are what the placeholders stand for (a missing or None value makes a step that
    needs it inconclusive). Every value is registered with the redactor before it is typed;
    with ``secret_outputs`` (the default) every text read is registered too.
    """
    return _FlowRun(page, name, profile, redactor, values or {}, secret_outputs).run(steps)


class _FlowRun:
    def __init__(
        self,
        page: Page,
        name: str,
        profile: Profile,
        redactor: Redactor,
        values: Mapping[str, str | None],
        secret_outputs: bool,
    ):
        self.page = page
        self.name = name
        self.profile = profile
        self.redactor = redactor
        self.values = values
        self.secret_outputs = secret_outputs
        self.timeout_ms = profile.timeouts.navigation_seconds * 1000
        self.optional_ms = min(OPTIONAL_WAIT_SECONDS * 1000, self.timeout_ms)
        self.outputs: dict[str, str | list[str]] = {}
        self.filled: set[str] = set()
        self.skipped: list[int] = []

    def run(self, steps: Sequence[Step]) -> FlowOutcome:
        for number, step in enumerate(steps, 1):
            self._step(number, step)
        return FlowOutcome(dict(self.outputs), frozenset(self.filled), tuple(self.skipped))

    # -- one step --------------------------------------------------------------------------
    def _fail(self, number: int, step: Step, problem: str) -> Inconclusive:
        what = f"{step.kind} {step.target!r}"
        return Inconclusive(
            f"flow {self.name}, step {number} ({what}) at {where(self.page)}: {problem}"
        )

    def _step(self, number: int, step: Step) -> None:
        kind = step.kind
        if kind == "open":
            self._open(number, step)
            return
        if kind == "split":
            self._split(number, step)
            return
        locator = self._element(number, step)
        if locator is None:
            self.skipped.append(number)
            return
        try:
            if kind == "click":
                self._click(number, step, locator)
            elif kind == "fill":
                locator.fill(self._value(number, step), timeout=self.timeout_ms)
            elif kind in ("read_text", "read_value"):
                self._read(step, locator)
        except PlaywrightTimeout:
            raise self._fail(
                number, step, f"the element did not respond within {self._seconds()} s"
            ) from None
        except PlaywrightError:
            raise self._fail(number, step, "the browser could not act on the element") from None

    def _seconds(self, ms: float | None = None) -> str:
        return f"{(self.timeout_ms if ms is None else ms) / 1000:g}"

    def _element(self, number: int, step: Step) -> Locator | None:
        """The step's element once visible; None for an optional step whose element is absent."""
        assert step.selector is not None
        locator = self.page.locator(step.selector).first
        bound = self.optional_ms if step.optional else self.timeout_ms
        try:
            locator.wait_for(state="visible", timeout=bound)
        except PlaywrightTimeout:
            if step.optional:
                return None
            raise self._fail(number, step, f"not visible within {self._seconds(bound)} s") from None
        except PlaywrightError:
            raise self._fail(number, step, "not a usable selector") from None
        return locator

    def _open(self, number: int, step: Step) -> None:
        target = self.profile.url(step.target)
        try:
            self.page.goto(target, wait_until="load", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise self._fail(number, step, f"did not load within {self._seconds()} s") from None
        except PlaywrightError:
            raise self._fail(number, step, "the page could not be opened") from None

    def _click(self, number: int, step: Step, locator: Locator) -> None:
        if locator.evaluate(_CHOOSES_ONLY, timeout=self.timeout_ms):
            # Choosing a radio button or ticking a box never loads a page: waiting for one
            # would only spend the navigation timeout.
            locator.click(timeout=self.timeout_ms)
            return
        clicked = False
        try:
            with self.page.expect_navigation(wait_until="load", timeout=self.timeout_ms):
                locator.click(timeout=self.timeout_ms)
                clicked = True
        except PlaywrightTimeout:
            if not clicked:
                raise
            # Single-page apps answer without navigating; later steps wait for their elements.
        except PlaywrightError:
            if not clicked:
                raise
            # A navigation superseded by another (a redirect chain) still leaves a page.

    def _value(self, number: int, step: Step) -> str:
        assert step.value is not None
        missing: list[str] = []

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            value = self.values.get(name)
            if value is None:
                missing.append(name)
                return ""
            self.redactor.add(value)
            self.filled.add(name)
            return value

        text = PLACEHOLDER.sub(substitute, step.value)
        if missing:
            raise self._fail(
                number, step, f"no value for {{{missing[0]}}} here (the flow cannot fill it)"
            )
        return text

    def _read(self, step: Step, locator: Locator) -> None:
        assert step.into is not None
        if step.kind == "read_value":
            text = locator.input_value(timeout=self.timeout_ms)
        else:
            text = locator.inner_text(timeout=self.timeout_ms)
        text = text.strip()
        if self.secret_outputs:
            self.redactor.add(text)
        self.outputs[step.into] = text

    def _split(self, number: int, step: Step) -> None:
        assert step.into is not None and step.pattern is not None
        source = self.outputs.get(step.target)
        if source is None:
            if step.optional:
                self.skipped.append(number)
                return
            raise self._fail(number, step, f"no text {step.target!r} was read before")
        text = source if isinstance(source, str) else "\n".join(source)
        items = [item.strip() for item in split_items(text, step.pattern) if item.strip()]
        if self.secret_outputs:
            for item in items:
                self.redactor.add(item)
        self.outputs[step.into] = items


def split_items(text: str, pattern: str) -> list[str]:
    """Every match of ``pattern`` in ``text``: the whole match, or its first group if it has one."""
    compiled = re.compile(pattern)
    return [
        match.group(1) if compiled.groups else match.group(0) for match in compiled.finditer(text)
    ]


class FlowSteps:
    """Running the profile's flows from a driver (mixed into ``SelectorDriver``'s parts)."""

    profile: Profile
    redactor: Redactor

    def run_steps(
        self,
        page: Page,
        steps: Sequence[Step],
        *,
        name: str,
        values: Mapping[str, str | None] | None = None,
        secret_outputs: bool = True,
    ) -> FlowOutcome:
        return run_flow(
            page,
            steps,
            name=name,
            profile=self.profile,
            redactor=self.redactor,
            values=values,
            secret_outputs=secret_outputs,
        )

    @staticmethod
    def page_marker(value: str | Flow) -> str:
        """The selector a page is recognised by: a selector field's own, or its flow's first."""
        return first_selector(value)
