"""Reading a profile file safely: bounded before it is parsed (a regular file, at most
MAX_PROFILE_BYTES, UTF-8 text), parsed by a YAML loader that refuses duplicate keys, anchors and
aliases and deep nesting, with a map of every field to its line, and the errors that name them."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import yaml

from portal.catalogue import shown

MAX_PROFILE_BYTES = 1024 * 1024
MAX_NESTING = 32
MAX_SHOWN_PROBLEMS = 100


class ProfileError(Exception):
    """A profile that cannot be used, with where and why."""

    def __init__(self, file: str, problem: str, *, field: str = "", line: int | None = None):
        self.file = file
        self.problem = problem
        self.field = field
        self.line = line
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field + ': ' if field else ''}{problem}")


class ProfileErrors(ProfileError):
    """Several problems in one profile, all reported at once (in the order of their lines)."""

    def __init__(self, errors: list[ProfileError]):
        self.errors = sorted(errors, key=lambda e: e.line or 0)
        first = self.errors[0]
        super().__init__(first.file, first.problem, field=first.field, line=first.line)

    def __str__(self) -> str:
        shown_errors = [ProfileError.__str__(e) for e in self.errors[:MAX_SHOWN_PROBLEMS]]
        hidden = len(self.errors) - len(shown_errors)
        if hidden:
            shown_errors.append(f"... and {hidden} more problems")
        return "\n".join(shown_errors)


# What YAML may hold (PyYAML's reader refuses the rest with a worse message).
_NOT_TEXT = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BOOL_TAG = "tag:yaml.org,2002:bool"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that a profile must not use (anchors, aliases, deep nesting)."""


class _ProfileLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors and aliases (a "billion laughs" file or a
    recursive alias never expands), with nesting bounded, and with YAML 1.2's booleans: only
    true and false are booleans; yes, no, on and off are text (which a boolean setting refuses).
    Dates stay text, and 1e9 is a number."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(
                problem="YAML anchors and aliases (&name, *name) are not supported in a "
                "profile: write each value out",
                problem_mark=event.start_mark,
            )
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise _Refused(
                    problem=f"nested more than {MAX_NESTING} levels deep; a profile never is",
                    problem_mark=event.start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_ProfileLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ProfileLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_ProfileLoader.add_implicit_resolver(
    _FLOAT_TAG, re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def _read_text(path: Path) -> str:
    """The profile's text: a regular file of at most MAX_PROFILE_BYTES, UTF-8, no binary."""
    file = str(path)
    try:
        status = path.stat()
    except FileNotFoundError:
        raise ProfileError(file, "no such file (give the path of a profile file)") from None
    except OSError as exc:
        raise ProfileError(file, f"cannot read the profile: {exc.strerror or exc}") from None
    if stat.S_ISDIR(status.st_mode):
        raise ProfileError(file, "is a directory, not a profile file")
    if not stat.S_ISREG(status.st_mode):
        raise ProfileError(file, "is not a regular file (a device, pipe or socket)")
    too_big = f"larger than {MAX_PROFILE_BYTES // 1024 // 1024} MiB; a profile is a few kilobytes"
    if status.st_size > MAX_PROFILE_BYTES:
        raise ProfileError(file, too_big)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise ProfileError(file, f"cannot read the profile: {exc.strerror or exc}") from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(file, too_big)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        problem = f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line})"
        raise ProfileError(file, problem, line=line) from None
    text = text.removeprefix("\ufeff")
    binary = _NOT_TEXT.search(text)
    if binary:
        line = text.count("\n", 0, binary.start()) + 1
        code = ord(binary.group())
        shown_code = f"byte 0x{code:02x}" if code < 0x100 else f"character U+{code:04X}"
        raise ProfileError(file, f"not text ({shown_code} at line {line})", line=line)
    return text


def _line_map(
    node: yaml.Node,
    path: tuple[Any, ...],
    lines: dict[tuple[Any, ...], int],
    duplicates: list[tuple[tuple[Any, ...], int, int]],
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        first_lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            line = key_node.start_mark.line + 1
            if key in first_lines:
                duplicates.append(((*path, key), line, first_lines[key]))
            else:
                first_lines[key] = line
            _line_map(value_node, (*path, key), lines, duplicates)
            lines[(*path, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), lines, duplicates)


def read_raw(path: Path) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """The profile's YAML as data plus a map of field path -> line, before interpolation."""
    file = str(path)
    loader = _ProfileLoader(_read_text(path))
    try:
        node = loader.get_single_node()
        if node is None:
            raise ProfileError(file, "is empty: a profile is a YAML mapping of settings")
        lines: dict[tuple[Any, ...], int] = {}
        duplicates: list[tuple[tuple[Any, ...], int, int]] = []
        _line_map(node, (), lines, duplicates)
        if duplicates:
            raise ProfileErrors(
                [
                    ProfileError(
                        file,
                        f"given twice (first at line {first}); YAML keeps only the last, so "
                        "give each setting once",
                        field=".".join(str(p) for p in key_path),
                        line=line,
                    )
                    for key_path, line, first in duplicates
                ]
            )
        data = loader.construct_document(node)
    except _Refused as exc:
        mark = exc.problem_mark
        raise ProfileError(file, str(exc.problem), line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(
            file, f"not valid YAML: {problem}", line=mark.line + 1 if mark else None
        ) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ProfileError(
            file, f"must be a YAML mapping of settings, not {shown(data)}", line=lines.get(())
        )
    return data, lines
