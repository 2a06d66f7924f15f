"""Playwright selectors checked as Playwright parses them, so a typo fails when the profile
loads rather than mid-audit: engines, ``>>`` chains, quoting, XPath brackets and CSS syntax
(including Playwright's own pseudo-classes such as ``:has-text()`` and ``:visible``)."""

from __future__ import annotations

import json
import re
from typing import Annotated, NamedTuple

from pydantic import AfterValidator

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
# Playwright's own CSS pseudo-classes (isomorphic/cssParser.ts customCSSNames), by arguments.
_PW_SELECTOR_LISTS = frozenset({"not", "is", "where", "has", "light"})
_PW_ONE_TEXT = frozenset({"text", "text-is", "has-text"})
_PW_LAYOUT = frozenset({"above", "below", "left-of", "right-of", "near"})
_PW_BARE = frozenset({"visible", "scope"})
_PW_PSEUDO = (
    _PW_SELECTOR_LISTS | _PW_ONE_TEXT | _PW_LAYOUT | _PW_BARE | {"text-matches", "nth-match"}
)
# Standard pseudo-classes the browser evaluates itself (Selectors Level 4, HTML).
_CSS_PSEUDO_CLASSES = frozenset(
    {
        "active", "any-link", "autofill", "blank", "buffering", "checked", "closed", "current",
        "default", "defined", "disabled", "empty", "enabled", "first", "first-child",
        "first-of-type", "focus", "focus-visible", "focus-within", "fullscreen", "future", "host",
        "hover", "in-range", "indeterminate", "invalid", "last-child", "last-of-type", "left",
        "link", "local-link", "modal", "muted", "only-child", "only-of-type", "open", "optional",
        "out-of-range", "past", "paused", "picture-in-picture", "placeholder-shown", "playing",
        "popover-open", "read-only", "read-write", "required", "right", "root", "seeking",
        "stalled", "target", "target-within", "user-invalid", "user-valid", "valid", "visited",
        "volume-locked",
    }
)  # fmt: skip
_CSS_PSEUDO_FUNCTIONS = frozenset(
    {
        "current", "dir", "host", "host-context", "lang", "nth-child", "nth-col",
        "nth-last-child", "nth-last-col", "nth-last-of-type", "nth-of-type", "state",
    }
)  # fmt: skip
_CSS_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NTH = re.compile(
    r"\s*(?:odd|even|[+-]?[0-9]*n(?:\s*[+-]\s*[0-9]+)?|[+-]?[0-9]+)(?:\s+of\s+\S.*)?\s*",
    re.IGNORECASE | re.DOTALL,
)
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
_WHITESPACE = " \t\n\r\f"


class _SelectorSyntax(Exception):
    """Why Playwright would refuse a selector."""


def selector_problem(selector: str) -> str | None:
    """Why Playwright would refuse ``selector`` (engine, quoting, CSS syntax), or None."""
    try:
        _check_selector(selector)
    except _SelectorSyntax as exc:
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
        raise _SelectorSyntax("it is empty")
    parts = _selector_parts(selector)
    captured = False
    for number, raw in enumerate(parts):
        part = raw.strip()
        if not part:
            if number == 0:
                raise _SelectorSyntax("nothing before '>>'")
            if number == len(parts) - 1:
                raise _SelectorSyntax("nothing after '>>'")
            raise _SelectorSyntax("two '>>' in a row")
        engine, body = _engine_and_body(part)
        if engine.startswith("*"):
            if captured:
                raise _SelectorSyntax("only one part may capture with '*'")
            captured, engine = True, engine[1:]
        if engine not in SELECTOR_ENGINES:
            raise _SelectorSyntax(
                f"unknown selector engine '{engine}=' (engines: {', '.join(DOCUMENTED_ENGINES)}; "
                "a plain selector is CSS)"
            )
        if number == 0 and engine in _NESTED_ENGINES:
            raise _SelectorSyntax(f"'{engine}=' cannot come first")
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
        _CssSelector(body).check()
    elif engine in _TEXT_ENGINES or engine == "internal:label":
        _check_text(text, engine)
    elif base == "xpath":
        _check_xpath(text)
    elif engine == "nth":
        if not re.fullmatch(r"-?[0-9]+", text):
            raise _SelectorSyntax(f"nth= takes an index such as 0 or -1, got {text!r}")
    elif engine == "visible":
        if text not in ("true", "false"):
            raise _SelectorSyntax(f"visible= takes true or false, got {text!r}")
    elif engine in _ATTRIBUTE_ENGINES:
        _AttributeSelector(body, engine).check()
    elif engine in _NESTED_ENGINES:
        try:
            inner = json.loads(f"[{body}]")
        except ValueError:
            inner = None
        if not isinstance(inner, list) or len(inner) != 1 or not isinstance(inner[0], str):
            raise _SelectorSyntax(f"{engine}= takes a selector in JSON quotes")
        _check_selector(inner[0])
    elif not text:
        raise _SelectorSyntax(f"{engine}= needs a value")
    elif base in ("id", "data-testid", "data-test-id", "data-test"):
        _check_quotes(text)


def _check_quotes(text: str) -> None:
    quote = text[0]
    if quote in "\"'" and not (
        len(text) > 1 and (text[-1] == quote or (text[-2] == quote and text[-1] in "is"))
    ):
        raise _SelectorSyntax(f"unclosed quote {quote}")


def _check_text(text: str, engine: str) -> None:
    if not text:
        raise _SelectorSyntax(f"{engine}= needs the text to look for")
    _check_quotes(text)


def _check_xpath(text: str) -> None:
    if not text:
        raise _SelectorSyntax("xpath= needs an expression")
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
                raise _SelectorSyntax(f"unexpected {char!r} at position {index}")
            opened.pop()
        if quote is None and opened and opened[-1][0] in "\"'":
            opened.pop()
    if quote is not None:
        raise _SelectorSyntax(f"unclosed quote {quote}")
    if opened:
        raise _SelectorSyntax(f"{opened[-1][0]!r} at position {opened[-1][1]} is not closed")


class _Token(NamedTuple):
    kind: str  # ws ident function hash id-digit string number delim match ( ) [ ] , : eof
    value: str
    pos: int


def _name_start(char: str) -> bool:
    return not char.isascii() or char.isalpha() or char == "_"


def _name_char(char: str) -> bool:
    return _name_start(char) or char in _DIGITS or char == "-"


def _css_tokens(text: str) -> list[_Token]:
    """CSS Syntax Level 3 tokens, enough to tell a selector from a malformed one."""
    size = len(text)

    def escape_at(index: int) -> bool:
        return text[index : index + 1] == "\\" and index + 1 < size and text[index + 1] != "\n"

    def ident_at(index: int) -> bool:
        if index >= size:
            return False
        if text[index] == "-":
            following = text[index + 1 : index + 2]
            return (
                following == "-"
                or (following != "" and _name_start(following))
                or escape_at(index + 1)
            )
        return _name_start(text[index]) or escape_at(index)

    def number_at(index: int) -> bool:
        char, after = text[index], text[index + 1 : index + 3]
        if char in _DIGITS:
            return True
        if char in "+-":
            return after[:1] in _DIGITS or (after[:1] == "." and after[1:2] in _DIGITS)
        return char == "." and after[:1] in _DIGITS

    def name_end(index: int) -> int:
        while index < size:
            if _name_char(text[index]):
                index += 1
            elif escape_at(index):
                index += 1
                if text[index] in _HEX:
                    digits = 0
                    while index < size and text[index] in _HEX and digits < 6:
                        index, digits = index + 1, digits + 1
                    if index < size and text[index] in _WHITESPACE:
                        index += 1
                else:
                    index += 1
            else:
                break
        return index

    tokens: list[_Token] = []
    index = 0
    while index < size:
        char, start = text[index], index
        if char in _WHITESPACE:
            while index < size and text[index] in _WHITESPACE:
                index += 1
            tokens.append(_Token("ws", " ", start))
        elif char in "\"'":
            index += 1
            while index < size and text[index] != char:
                if text[index] == "\n":
                    raise _SelectorSyntax(f"a line break inside the quote at position {start}")
                index += 2 if text[index] == "\\" else 1
            if index >= size:
                raise _SelectorSyntax(f"unclosed quote {char} (opened at position {start})")
            index += 1
            tokens.append(_Token("string", text[start + 1 : index - 1], start))
        elif char == "#" and (
            (index + 1 < size and _name_char(text[index + 1])) or escape_at(index + 1)
        ):
            kind = "hash" if ident_at(index + 1) else "id-digit"
            index = name_end(index + 1)
            tokens.append(_Token(kind, text[start:index], start))
        elif char in "()[],:":
            index += 1
            tokens.append(_Token(char, char, start))
        elif char in ";{}" or text.startswith(("<!--", "-->"), index):
            raise _SelectorSyntax(f"{char!r} at position {start} has no place in a selector")
        elif char == "@" and ident_at(index + 1):
            raise _SelectorSyntax(f"an @-rule at position {start} has no place in a selector")
        elif number_at(index):
            match = _CSS_NUMBER.match(text, index)
            index = match.end() if match else index + 1
            if text[index : index + 1] == "%":
                raise _SelectorSyntax(f"a percentage at position {start} in a selector")
            if ident_at(index):
                index = name_end(index)
            tokens.append(_Token("number", text[start:index], start))
        elif ident_at(index):
            index = name_end(index)
            if text[index : index + 1] == "(":
                index += 1
                tokens.append(_Token("function", text[start : index - 1].lower(), start))
            else:
                tokens.append(_Token("ident", text[start:index], start))
        elif char == "\\":
            raise _SelectorSyntax(f"a lone backslash at position {start}")
        elif char in "~|^$*" and text[index + 1 : index + 2] == "=":
            index += 2
            tokens.append(_Token("match", text[start:index], start))
        elif char == "|" and text[index + 1 : index + 2] == "|":
            raise _SelectorSyntax(f"'||' at position {start} has no place in a selector")
        else:
            index += 1
            tokens.append(_Token("delim", char, start))
    tokens.append(_Token("eof", "", size))
    return tokens


class _CssSelector:
    """Playwright's CSS grammar (isomorphic/cssParser.ts) plus what the browser would refuse:
    lists, compounds, combinators, attributes, standard and Playwright pseudo-classes."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = _css_tokens(text)
        self.pos = 0

    def check(self) -> None:
        kinds = self.arguments()
        if self.kind() != "eof":
            raise self.unexpected()
        if any(kind != "selector" for kind in kinds):
            raise _SelectorSyntax("quoted text or a number where a selector belongs")

    # -- reading ------------------------------------------------------------------------------
    def kind(self) -> str:
        return self.tokens[self.pos].kind

    def value(self) -> str:
        return self.tokens[self.pos].value

    def unexpected(self, hint: str = "") -> _SelectorSyntax:
        token = self.tokens[self.pos]
        if token.kind == "eof":
            return _SelectorSyntax(f"it ends too early{hint}")
        text = self.text[token.pos : self.tokens[self.pos + 1].pos].strip() or token.value
        return _SelectorSyntax(f"unexpected {text!r} at position {token.pos}{hint}")

    def skip_whitespace(self) -> None:
        while self.kind() == "ws":
            self.pos += 1

    def at_combinator(self) -> bool:
        return self.kind() == "delim" and self.value() in (">", "+", "~")

    def at_clause_end(self) -> bool:
        return self.kind() in ("ws", ",", ")", "eof") or self.at_combinator()

    # -- grammar ------------------------------------------------------------------------------
    def arguments(self) -> list[str]:
        kinds = [self.argument()]
        while True:
            self.skip_whitespace()
            if self.kind() != ",":
                return kinds
            self.pos += 1
            kinds.append(self.argument())

    def argument(self) -> str:
        self.skip_whitespace()
        kind = self.kind()
        if kind in ("number", "string"):
            self.pos += 1
            return kind
        self.complex()
        return "selector"

    def complex(self) -> None:
        self.skip_whitespace()
        if not self.at_combinator():  # a leading combinator is relative (:has(> li))
            self.compound()
        while True:
            self.skip_whitespace()
            if self.at_combinator():
                self.pos += 1
                self.skip_whitespace()
            elif self.at_clause_end():
                return
            self.compound()

    def compound(self) -> None:
        seen = False
        while not self.at_clause_end():
            kind = self.kind()
            if kind == "ident" or (kind == "delim" and self.value() == "*"):
                if seen:
                    raise self.unexpected(" (an element name comes first)")
                self.pos += 1
            elif kind == "hash":
                self.pos += 1
            elif kind == "id-digit":
                raise _SelectorSyntax(
                    f"{self.value()!r} at position {self.tokens[self.pos].pos}: an #id cannot "
                    'start with a digit (write [id="..."])'
                )
            elif kind == "delim" and self.value() == ".":
                self.pos += 1
                if self.kind() != "ident":
                    raise self.unexpected(" (a class name follows '.')")
                self.pos += 1
            elif kind == ":":
                self.pseudo_class()
            elif kind == "[":
                self.attribute()
            else:
                raise self.unexpected()
            seen = True
        if not seen:
            raise self.unexpected()

    def pseudo_class(self) -> None:
        self.pos += 1
        kind, name = self.kind(), self.value().lower()
        if kind == ":":
            raise self.unexpected(" (pseudo-elements such as ::before select nothing)")
        if kind == "ident":
            self.pos += 1
            if name in _PW_BARE or name in _CSS_PSEUDO_CLASSES or name.startswith("-"):
                return
            if name in _PW_PSEUDO or name in _CSS_PSEUDO_FUNCTIONS:
                raise _SelectorSyntax(f":{name} needs its argument in parentheses: :{name}(...)")
            raise _SelectorSyntax(f"unknown pseudo-class :{name}")
        if kind != "function":
            raise self.unexpected(" (a pseudo-class name follows ':')")
        self.pos += 1
        if name in _PW_PSEUDO and name not in _PW_BARE:
            self.playwright_arguments(name)
        elif name in _CSS_PSEUDO_FUNCTIONS or name.startswith("-"):
            self.browser_arguments(name)
        else:
            raise _SelectorSyntax(f"unknown pseudo-class :{name}()")
        self.skip_whitespace()
        if self.kind() != ")":
            raise self.unexpected(f" (':{name}(' is not closed)")
        self.pos += 1

    def playwright_arguments(self, name: str) -> None:
        kinds = self.arguments()
        if name in _PW_SELECTOR_LISTS:
            fits, takes = set(kinds) == {"selector"}, "selectors"
        elif name in _PW_ONE_TEXT:
            fits, takes = kinds == ["string"], 'one quoted text, e.g. ("Sign in")'
        elif name == "text-matches":
            fits = kinds in (["string"], ["string", "string"])
            takes = 'a quoted regular expression and optional flags, e.g. ("^sign", "i")'
        elif name == "nth-match":
            fits = len(kinds) >= 2 and kinds[-1] == "number" and set(kinds[:-1]) == {"selector"}
            takes = "a selector and a number, e.g. (button, 2)"
        else:
            fits = kinds in (["selector"], ["selector", "number"])
            takes = "a selector and an optional distance"
        if not fits:
            raise _SelectorSyntax(f":{name}() takes {takes}")

    def browser_arguments(self, name: str) -> None:
        start, depth = self.tokens[self.pos].pos, 1
        while self.kind() != "eof":
            if self.kind() in ("(", "function"):
                depth += 1
            elif self.kind() == ")":
                depth -= 1
                if depth == 0:
                    break
            self.pos += 1
        argument = self.text[start : self.tokens[self.pos].pos]
        if self.kind() == "eof":
            raise _SelectorSyntax(f"':{name}(' is not closed")
        if not argument.strip():
            raise _SelectorSyntax(f":{name}() needs an argument")
        if name.startswith("nth-") and not _NTH.fullmatch(argument):
            raise _SelectorSyntax(f":{name}({argument}) is not an+b, odd or even")

    def attribute(self) -> None:
        opened = self.tokens[self.pos].pos
        self.pos += 1
        self.skip_whitespace()
        if self.kind() != "ident":
            raise self.unexpected(" (an attribute name follows '[')")
        self.pos += 1
        self.skip_whitespace()
        if self.kind() == "match" or (self.kind() == "delim" and self.value() == "="):
            self.pos += 1
            self.skip_whitespace()
            if self.kind() not in ("ident", "string"):
                if self.kind() == "eof":
                    raise _SelectorSyntax(f"the '[' at position {opened} is not closed")
                raise self.unexpected(' (an attribute value is a name or "quoted text")')
            self.pos += 1
            self.skip_whitespace()
            if self.kind() == "ident" and self.value().lower() in ("i", "s"):
                self.pos += 1
                self.skip_whitespace()
        if self.kind() == "eof":
            raise _SelectorSyntax(f"the '[' at position {opened} is not closed")
        if self.kind() != "]":
            raise self.unexpected(" (expected ']')")
        self.pos += 1


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
            raise _SelectorSyntax(
                f'{self.engine}= needs a name first, e.g. role=button[name="Sign in"]'
            )

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def unexpected(self) -> _SelectorSyntax:
        if self.pos >= len(self.text):
            return _SelectorSyntax("it ends too early")
        return _SelectorSyntax(f"unexpected {self.peek()!r} at position {self.pos}")

    def skip_whitespace(self) -> None:
        while self.peek() != "" and self.peek().isspace():
            self.pos += 1

    def identifier(self) -> str:
        start = self.pos
        while self.peek() != "" and _name_char(self.peek()):
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> None:
        quote, start = self.peek(), self.pos
        self.pos += 1
        while self.peek() not in ("", quote):
            self.pos += 2 if self.peek() == "\\" else 1
        if self.peek() != quote:
            raise _SelectorSyntax(f"unclosed quote {quote} (opened at position {start})")
        self.pos += 1

    def attribute(self) -> None:
        opened = self.pos
        self.pos += 1
        while True:
            self.skip_whitespace()
            if self.peek() in ("'", '"'):
                self.quoted()
            elif not self.identifier():
                raise _SelectorSyntax(f"an attribute name follows the '[' at position {opened}")
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
            while self.peek() != "" and (_name_char(self.peek()) or self.peek() in "+."):
                self.pos += 1
        self.skip_whitespace()
        if self.peek() == "":
            raise _SelectorSyntax(f"the '[' at position {opened} is not closed")
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
            raise _SelectorSyntax(f"the regular expression at position {start} is not closed")
        self.pos += 1
        while self.peek() != "" and self.peek().isalpha():
            self.pos += 1
