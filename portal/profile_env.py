"""Environment references in a profile: ``${NAME}`` and ``${NAME:-default}`` filled in from the
environment, and secrets (account passwords, TOTP secrets, the IMAP password), which must be
exactly ``${NAME}`` of a variable that is set and not empty, so no secret is written into a
profile file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from portal.profile_report import Reporter

ENV_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
SECRET_FIELDS = {"password", "totp_secret"}
SECRET_EXAMPLE = "${PORTAL_PASSWORD}"


def _is_secret(path: tuple[Any, ...]) -> bool:
    return (len(path) == 3 and path[0] == "accounts" and path[-1] in SECRET_FIELDS) or (
        path == ("mailbox", "imap", "password")
    )


def interpolate(
    value: Any, path: tuple[str | int, ...], env: Mapping[str, str], report: Reporter
) -> Any:
    if isinstance(value, dict):
        return {k: interpolate(v, (*path, k), env, report) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, (*path, i), env, report) for i, v in enumerate(value)]
    if value is not None and _is_secret(path):
        return _secret(value, path, env, report)
    if not isinstance(value, str):
        return value
    return _substitute(value, path, env, report)


def _secret(
    value: Any, path: tuple[str | int, ...], env: Mapping[str, str], report: Reporter
) -> str:
    """A secret is exactly ${NAME}, a variable that is set and not empty."""
    text = value.strip() if isinstance(value, str) else ""
    reference = ENV_REFERENCE.fullmatch(text)
    if reference is None:
        report.fail(path, f"a secret must be an environment reference such as {SECRET_EXAMPLE}")
        return ""
    name = reference.group("name")
    if reference.group("default") is not None:
        report.fail(
            path,
            f"a secret must be exactly ${{{name}}}, without a default: a default would write "
            "the secret into the profile",
        )
        return ""
    if name not in env:
        report.fail(path, f"environment variable {name} is not set")
        return ""
    if env[name] == "":
        report.fail(path, f"environment variable {name} is set but empty")
        return ""
    return env[name]


def _substitute(
    text: str, path: tuple[str | int, ...], env: Mapping[str, str], report: Reporter
) -> str:
    """``${NAME}`` and ``${NAME:-default}`` (the default when NAME is unset or empty)."""
    result: list[str] = []
    index = 0
    while (start := text.find("${", index)) != -1:
        result.append(text[index:start])
        reference = ENV_REFERENCE.match(text, start)
        if reference is None:
            report.fail(
                path,
                "'${' starts no environment reference: write ${NAME} or ${NAME:-default} "
                "(NAME of letters, digits and _)",
            )
            return ""
        name, default = reference.group("name"), reference.group("default")
        if default is not None and "${" in default:
            report.fail(path, "nested ${...} in a default is not supported: give a plain default")
            return ""
        value = env.get(name)
        if value:
            result.append(value)
        elif default is not None:
            result.append(default)
        elif value is None:
            report.fail(path, f"environment variable {name} is not set")
        else:
            report.fail(path, f"environment variable {name} is set but empty")
        index = reference.end()
    result.append(text[index:])
    return "".join(result)
