"""Playwright selectors checked as Playwright parses them, so a typo fails when the profile
loads rather than mid-audit: the profile's ``Selector`` type and the message for a selector
Playwright would refuse. This module reads the selector's ``>>`` chain and each part's engine,
and checks the engines' bodies: quoting, XPath brackets, attribute selectors
(``role=button[name="Sign in"]``); CSS bodies, including Playwright's own pseudo-classes such as
``:has-text()`` and ``:visible``, are checked by ``portal.css_selectors``."""

from __future__ import annotations

import json
import re
from typing import Annotated

from pydantic import AfterValidator

from portal.css_selectors import CssSelector, SelectorSyntax, name_char

# Playwright's selector engines (playwright-core server/selectors.ts); the documented ones first.
DOCUMENTED_ENGINES = (
    "css",
    "text",
    "xpath",
    "id",
    "data-testid",
    "data-test-id",
    "data-test",
    "role",
    "nth",
    "visible",
)
SELECTOR_ENGINES = frozenset(
    {
        *DOCUMENTED_ENGINES,
        *(f"{engine}:light" for engine in DOCUMENTED_ENGINES[:7]),
        "_react",
        "_vue",
        "aria-ref",
        "aria-template",
        "internal:control",
        "internal:has",
        "internal:has-not",
        "internal:has-text",
        "internal:has-not-text",
        "internal:and",
        "internal:or",
        "internal:chain",
        "internal:attr",
        "internal:label",
        "internal:text",
        "internal:role",
        "internal:testid",
        "internal:describe",
    }
)
_NESTED_ENGINES = frozenset(
    {"internal:has", "internal:has-not", "internal:and", "internal:or", "internal:chain"}
)
_TEXT_ENGINES = frozenset(
    {"text", "text:light", "internal:text", "internal:has-text", "internal:has-not-text"}
)
_ATTRIBUTE_ENGINES = frozenset({"role", "internal:role", "internal:attr", "internal:testid"})
_ENGINE_NAME = re.compile(r"[a-zA-Z_0-9\-+:*]+")
_TEXT_BODY_STARTED = re.compile(r"\s*text\s*=(.+)", re.DOTALL)


def selector_problem(selector: str) -> str | None:
    """Why Playwright would refuse ``selector`` (engine, quoting, CSS syntax), or None."""
    try:
        _check_selector(selector)
    except SelectorSyntax as exc:
        text = selector if len(selector) <= 120 else selector[:117] + "..."
        return f"not a valid Playwright selector: {exc}, in {text!r}"
    return None


def valid_selector(value: str) -> str:
    problem = selector_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# A profile field holding one Playwright selector.
Selector = Annotated[str, AfterValidator(valid_selector)]


def _check_selector(selector: str) -> None:
    if not selector.strip():
        raise SelectorSyntax("it is empty")
    parts = _selector_parts(selector)
    captured = False
    for number, raw in enumerate(parts):
        part = raw.strip()
        if not part:
            if number == 0:
                raise SelectorSyntax("nothing before '>>'")
            if number == len(parts) - 1:
                raise SelectorSyntax("nothing after '>>'")
            raise SelectorSyntax("two '>>' in a row")
        engine, body = _engine_and_body(part)
        if engine.startswith("*"):
            if captured:
                raise SelectorSyntax("only one part may capture with '*'")
            captured, engine = True, engine[1:]
        if engine not in SELECTOR_ENGINES:
            raise SelectorSyntax(
                f"unknown selector engine '{engine}=' (engines: {', '.join(DOCUMENTED_ENGINES)}; "
                "a plain selector is CSS)"
            )
        if number == 0 and engine in _NESTED_ENGINES:
            raise SelectorSyntax(f"'{engine}=' cannot come first")
        _check_body(engine, body)


def _selector_parts(selector: str) -> list[str]:
    """The parts between '>>' outside quotes (Playwright's parseSelectorString)."""
    if ">>" not in selector:
        return [selector]
    parts: list[str] = []
    quote: str | None = None
    start = index = 0
    while index < len(selector):
        char = selector[index]
        if char == "\\" and index + 1 < len(selector):
            index += 2
            continue
        if char == quote:
            quote = None
        elif (
            quote is None
            and char in "\"'`"
            and not _TEXT_BODY_STARTED.fullmatch(selector[start:index])
        ):
            quote = char
        elif quote is None and selector.startswith(">>", index):
            parts.append(selector[start:index])
            index += 2
            start = index
            continue
        index += 1
    parts.append(selector[start:])
    return parts


def _engine_and_body(part: str) -> tuple[str, str]:
    """Which engine a selector part names (Playwright's rules: name=body, a quoted text, an
    XPath starting with // or .., else CSS)."""
    equals = part.find("=")
    if equals != -1 and _ENGINE_NAME.fullmatch(part[:equals].strip()):
        return part[:equals].strip(), part[equals + 1 :]
    if len(part) > 1 and part[0] in "\"'" and part[-1] == part[0]:
        return "text", part
    if re.match(r"\(*//", part) or part.startswith(".."):
        return "xpath", part
    return "css", part


def _check_body(engine: str, body: str) -> None:
    base = engine.removesuffix(":light")
    text = body.strip()
    if base == "css":
        CssSelector(body).check()
    elif engine in _TEXT_ENGINES or engine == "internal:label":
        _check_text(text, engine)
    elif base == "xpath":
        _check_xpath(text)
    elif engine == "nth":
        if not re.fullmatch(r"-?[0-9]+", text):
            raise SelectorSyntax(f"nth= takes an index such as 0 or -1, got {text!r}")
    elif engine == "visible":
        if text not in ("true", "false"):
            raise SelectorSyntax(f"visible= takes true or false, got {text!r}")
    elif engine in _ATTRIBUTE_ENGINES:
        _AttributeSelector(body, engine).check()
    elif engine in _NESTED_ENGINES:
        try:
            inner = json.loads(f"[{body}]")
        except ValueError:
            inner = None
        if not isinstance(inner, list) or len(inner) != 1 or not isinstance(inner[0], str):
            raise SelectorSyntax(f"{engine}= takes a selector in JSON quotes")
        _check_selector(inner[0])
    elif not text:
        raise SelectorSyntax(f"{engine}= needs a value")
    elif base in ("id", "data-testid", "data-test-id", "data-test"):
        _check_quotes(text)


def _check_quotes(text: str) -> None:
    quote = text[0]
    if quote in "\"'" and not (
        len(text) > 1 and (text[-1] == quote or (text[-2] == quote and text[-1] in "is"))
    ):
        raise SelectorSyntax(f"unclosed quote {quote}")


def _check_text(text: str, engine: str) -> None:
    if not text:
        raise SelectorSyntax(f"{engine}= needs the text to look for")
    _check_quotes(text)


def _check_xpath(text: str) -> None:
    if not text:
        raise SelectorSyntax("xpath= needs an expression")
    opened: list[tuple[str, int]] = []
    quote: str | None = None
    for index, char in enumerate(text):
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
            opened.append((char, index))
        elif char in "([":
            opened.append((char, index))
        elif char in ")]":
            if not opened or opened[-1][0] != {")": "(", "]": "["}[char]:
                raise SelectorSyntax(f"unexpected {char!r} at position {index}")
            opened.pop()
        if quote is None and opened and opened[-1][0] in "\"'":
            opened.pop()
    if quote is not None:
        raise SelectorSyntax(f"unclosed quote {quote}")
    if opened:
        raise SelectorSyntax(f"{opened[-1][0]!r} at position {opened[-1][1]} is not closed")


class _AttributeSelector:
    """role=button[name="Sign in"] and the like (Playwright's parseAttributeSelector)."""

    OPERATORS = ("=", "*=", "^=", "$=", "|=", "~=")

    def __init__(self, text: str, engine: str):
        self.text, self.engine, self.pos = text, engine, 0

    def check(self) -> None:
        self.skip_whitespace()
        name = self.identifier()
        self.skip_whitespace()
        attributes = 0
        while self.peek() == "[":
            self.attribute()
            attributes += 1
            self.skip_whitespace()
        if self.pos < len(self.text):
            raise self.unexpected()
        if not name and (self.engine.endswith("role") or not attributes):
            raise SelectorSyntax(
                f'{self.engine}= needs a name first, e.g. role=button[name="Sign in"]'
            )

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def unexpected(self) -> SelectorSyntax:
        if self.pos >= len(self.text):
            return SelectorSyntax("it ends too early")
        return SelectorSyntax(f"unexpected {self.peek()!r} at position {self.pos}")

    def skip_whitespace(self) -> None:
        while self.peek() != "" and self.peek().isspace():
            self.pos += 1

    def identifier(self) -> str:
        start = self.pos
        while self.peek() != "" and name_char(self.peek()):
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> None:
        quote, start = self.peek(), self.pos
        self.pos += 1
        while self.peek() not in ("", quote):
            self.pos += 2 if self.peek() == "\\" else 1
        if self.peek() != quote:
            raise SelectorSyntax(f"unclosed quote {quote} (opened at position {start})")
        self.pos += 1

    def attribute(self) -> None:
        opened = self.pos
        self.pos += 1
        while True:
            self.skip_whitespace()
            if self.peek() in ("'", '"'):
                self.quoted()
            elif not self.identifier():
                raise SelectorSyntax(f"an attribute name follows the '[' at position {opened}")
            self.skip_whitespace()
            if self.peek() != ".":
                break
            self.pos += 1
        if self.peek() == "]":
            self.pos += 1
            return
        operator = self.text[self.pos : self.pos + (1 if self.peek() == "=" else 2)]
        if operator not in self.OPERATORS:
            raise self.unexpected()
        self.pos += len(operator)
        self.skip_whitespace()
        if self.peek() == "/":
            self.regular_expression()
        elif self.peek() in ("'", '"'):
            self.quoted()
            self.skip_whitespace()
            if self.peek() in ("i", "I", "s", "S"):
                self.pos += 1
        else:
            while self.peek() != "" and (name_char(self.peek()) or self.peek() in "+."):
                self.pos += 1
        self.skip_whitespace()
        if self.peek() == "":
            raise SelectorSyntax(f"the '[' at position {opened} is not closed")
        if self.peek() != "]":
            raise self.unexpected()
        self.pos += 1

    def regular_expression(self) -> None:
        start, in_class = self.pos, False
        self.pos += 1
        while self.peek() != "" and (in_class or self.peek() != "/"):
            if self.peek() == "\\":
                self.pos += 1
            elif self.peek() == "[":
                in_class = True
            elif self.peek() == "]":
                in_class = False
            self.pos += 1
        if self.peek() != "/":
            raise SelectorSyntax(f"the regular expression at position {start} is not closed")
        self.pos += 1
        while self.peek() != "" and self.peek().isalpha():
            self.pos += 1
