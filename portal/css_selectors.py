"""CSS selectors checked as Playwright's CSS parser (isomorphic/cssParser.ts) and the browser
read them: CSS tokens, selector lists, compounds, combinators, attributes, and the standard and
Playwright pseudo-classes with their arguments. A selector either passes or raises
``SelectorSyntax`` saying why it would be refused."""

from __future__ import annotations

import re
from typing import NamedTuple

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


class SelectorSyntax(Exception):
    """Why Playwright would refuse a selector."""


class _Token(NamedTuple):
    kind: str  # ws ident function hash id-digit string number delim match ( ) [ ] , : eof
    value: str
    pos: int


def _name_start(char: str) -> bool:
    return not char.isascii() or char.isalpha() or char == "_"


def name_char(char: str) -> bool:
    """Whether ``char`` may stand in a CSS name (and in an attribute selector's names)."""
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
            if name_char(text[index]):
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
                    raise SelectorSyntax(f"a line break inside the quote at position {start}")
                index += 2 if text[index] == "\\" else 1
            if index >= size:
                raise SelectorSyntax(f"unclosed quote {char} (opened at position {start})")
            index += 1
            tokens.append(_Token("string", text[start + 1 : index - 1], start))
        elif char == "#" and (
            (index + 1 < size and name_char(text[index + 1])) or escape_at(index + 1)
        ):
            kind = "hash" if ident_at(index + 1) else "id-digit"
            index = name_end(index + 1)
            tokens.append(_Token(kind, text[start:index], start))
        elif char in "()[],:":
            index += 1
            tokens.append(_Token(char, char, start))
        elif char in ";{}" or text.startswith(("<!--", "-->"), index):
            raise SelectorSyntax(f"{char!r} at position {start} has no place in a selector")
        elif char == "@" and ident_at(index + 1):
            raise SelectorSyntax(f"an @-rule at position {start} has no place in a selector")
        elif number_at(index):
            match = _CSS_NUMBER.match(text, index)
            index = match.end() if match else index + 1
            if text[index : index + 1] == "%":
                raise SelectorSyntax(f"a percentage at position {start} in a selector")
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
            raise SelectorSyntax(f"a lone backslash at position {start}")
        elif char in "~|^$*" and text[index + 1 : index + 2] == "=":
            index += 2
            tokens.append(_Token("match", text[start:index], start))
        elif char == "|" and text[index + 1 : index + 2] == "|":
            raise SelectorSyntax(f"'||' at position {start} has no place in a selector")
        else:
            index += 1
            tokens.append(_Token("delim", char, start))
    tokens.append(_Token("eof", "", size))
    return tokens


class CssSelector:
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
            raise SelectorSyntax("quoted text or a number where a selector belongs")

    # -- reading ------------------------------------------------------------------------------
    def kind(self) -> str:
        return self.tokens[self.pos].kind

    def value(self) -> str:
        return self.tokens[self.pos].value

    def unexpected(self, hint: str = "") -> SelectorSyntax:
        token = self.tokens[self.pos]
        if token.kind == "eof":
            return SelectorSyntax(f"it ends too early{hint}")
        text = self.text[token.pos : self.tokens[self.pos + 1].pos].strip() or token.value
        return SelectorSyntax(f"unexpected {text!r} at position {token.pos}{hint}")

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
                raise SelectorSyntax(
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
                raise SelectorSyntax(f":{name} needs its argument in parentheses: :{name}(...)")
            raise SelectorSyntax(f"unknown pseudo-class :{name}")
        if kind != "function":
            raise self.unexpected(" (a pseudo-class name follows ':')")
        self.pos += 1
        if name in _PW_PSEUDO and name not in _PW_BARE:
            self.playwright_arguments(name)
        elif name in _CSS_PSEUDO_FUNCTIONS or name.startswith("-"):
            self.browser_arguments(name)
        else:
            raise SelectorSyntax(f"unknown pseudo-class :{name}()")
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
            raise SelectorSyntax(f":{name}() takes {takes}")

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
            raise SelectorSyntax(f"':{name}(' is not closed")
        if not argument.strip():
            raise SelectorSyntax(f":{name}() needs an argument")
        if name.startswith("nth-") and not _NTH.fullmatch(argument):
            raise SelectorSyntax(f":{name}({argument}) is not an+b, odd or even")

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
                    raise SelectorSyntax(f"the '[' at position {opened} is not closed")
                raise self.unexpected(' (an attribute value is a name or "quoted text")')
            self.pos += 1
            self.skip_whitespace()
            if self.kind() == "ident" and self.value().lower() in ("i", "s"):
                self.pos += 1
                self.skip_whitespace()
        if self.kind() == "eof":
            raise SelectorSyntax(f"the '[' at position {opened} is not closed")
        if self.kind() != "]":
            raise self.unexpected(" (expected ']')")
        self.pos += 1
