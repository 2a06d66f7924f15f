"""Running a profile's flows (``portal.flows``) on a page: each step in order, every wait
bounded, and a step that cannot run raised as ``Inconclusive`` naming the flow, the step and the
page."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from portal.errors import Inconclusive
from portal.flows import PLACEHOLDER, Flow, Step, first_selector

if TYPE_CHECKING:
    from portal.evidence import Redactor
    from portal.profile import Profile

# A radio button or a check box, or the label of one.
_CHOOSES_ONLY = """element => {
    const input = element.tagName === 'LABEL' ? element.control : element;
    return !!input && input.tagName === 'INPUT' && ['radio', 'checkbox'].includes(input.type);
}"""
OPTIONAL_WAIT_SECONDS = 2.0
# Reads a form field's value (disabled ones included) and any other element's text.
_VALUE_OR_TEXT = """element => (element instanceof HTMLInputElement
    || element instanceof HTMLTextAreaElement || element instanceof HTMLSelectElement)
    ? element.value : element.innerText"""


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
