"""The value types and checks every profile model shares, and their base model.

Numbers that are never booleans, host names and URLs (DNS, IDNA, IP addresses), CA files that
hold a PEM certificate, fields taking a selector or steps (portal/flows.py) with each step's
selector and ``optional:`` checked, and ``refusal``, which reports each problem a validator finds
at its own path (and so on its own line of the profile).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from cryptography import x509
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from portal.catalogue import shown
from portal.flows import Flow, SelectorOrFlow, Steps
from portal.selectors import selector_problem, valid_selector

MAX_CA_FILE_BYTES = 1024 * 1024


def refusal(title: str, problems: Sequence[tuple[tuple[str | int, ...], str]]) -> ValidationError:
    """Problems a validator found, each at its own path below the value it validates, so that
    every one is reported on its own line of the profile (a ValueError has only the
    validator's location)."""
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError("profile", "{problem}", {"problem": problem}),
                loc=loc,
                input=None,
            )
            for loc, problem in problems
        ],
    )


def _not_a_boolean(value: Any) -> Any:
    # pydantic's lax mode reads true as 1; a number written as true is a mistake.
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "a number, not true or false")
    return value


# A number in a profile: a YAML number (or number text from an environment reference), never a
# boolean. Its range is the field's ge/gt/le, always both ends.
Number = Annotated[float, BeforeValidator(_not_a_boolean)]
Integer = Annotated[int, BeforeValidator(_not_a_boolean)]


# -- hosts and CA files ------------------------------------------------------------------------

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def host_problem(host: str) -> str | None:
    """Why ``host`` is no host name (DNS, IDNA) or IP address (IPv6 without brackets), or None."""
    if not host:
        return "no host name"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not a valid IPv6 address"
        return None
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{host!r} is not a valid IPv4 address"
        return None
    odd = next((c for c in host if c.isspace() or c in "/\\?#@[]<>%\"'`{}|^,;=!$&()*+~"), None)
    if odd is not None:
        return f"host name {host!r} contains {odd!r}, which no host name may contain"
    name = host[:-1] if host.endswith(".") else host
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return f"host name {host!r} is not a valid (IDNA) domain name"
    if len(ascii_name) > 253 or not all(_HOST_LABEL.fullmatch(p) for p in ascii_name.split(".")):
        return (
            f"host name {host!r} is not a valid domain name (labels of 1 to 63 letters, digits, "
            "'-' and '_', not starting or ending with '-')"
        )
    return None


def checked_url(value: str) -> str:
    """An absolute http(s) URL with a valid host and port."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc}): {value!r}") from None
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
    problem = host_problem(parts.hostname or "")
    if problem:
        raise ValueError(f"{problem}, in {value!r}")
    if port == 0:
        raise ValueError(f"port 0 is not a port, in {value!r}")
    return value if value.endswith("/") else value + "/"


def _checked_host(value: str) -> str:
    """A host name or IP address; an IPv6 address without its URL brackets."""
    host = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    problem = host_problem(host)
    if problem:
        raise ValueError(problem)
    return host


Host = Annotated[str, AfterValidator(_checked_host)]


def _pem_problem(path: Path) -> str | None:
    """Why ``path`` holds no usable PEM certificate, or None. Never quotes the file."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return "no such file"
    except PermissionError:
        return "permission denied"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if stat.S_ISDIR(status.st_mode):
        return "it is a directory"
    if not stat.S_ISREG(status.st_mode):
        return "not a regular file"
    if status.st_size > MAX_CA_FILE_BYTES:
        return "larger than 1 MiB"
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CA_FILE_BYTES + 1)
    except PermissionError:
        return "permission denied"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if len(data) > MAX_CA_FILE_BYTES:
        return "larger than 1 MiB"
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return "no PEM certificate in it"
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        return "a certificate in it does not parse"
    return None


def _checked_ca_file(value: str | None, info: ValidationInfo) -> str | None:
    """The CA file's path (a relative one is relative to the profile's directory), once it is
    known to hold at least one PEM certificate that parses."""
    if value is None:
        return None
    path = Path(value)
    base = (info.context or {}).get("profile_dir")
    if not path.is_absolute():
        path = Path(base or ".") / path
    problem = _pem_problem(path)
    if problem:
        raise ValueError(f"{os.path.normpath(path)} is not a readable PEM certificate ({problem})")
    return str(path)


CaFile = Annotated[str, AfterValidator(_checked_ca_file)]


# -- flows: their selectors and their booleans, checked like any other field -----------------


def _strict_optional(value: Any) -> Any:
    """``optional: "yes"`` in a step is a mistake, not true (read before the steps are built)."""
    if isinstance(value, list):
        problems = [
            ((index, "optional"), boolean_problem(step["optional"]))
            for index, step in enumerate(value)
            if isinstance(step, dict)
            and "optional" in step
            and not isinstance(step["optional"], bool)
        ]
        if problems:
            raise refusal("flow", problems)
    return value


def _flow_selectors(value: str | Flow) -> str | Flow:
    """The field's selector, or each step's, must parse (steps at their own line)."""
    if isinstance(value, str):
        return valid_selector(value)
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for index, step in enumerate(value):
        problem = selector_problem(step.selector) if step.selector is not None else None
        if problem:
            problems.append(((index, step.kind), problem))
    if problems:
        raise refusal("flow", problems)
    return value


# A selector or steps (portal/flows.py), and steps only, with their selectors checked.
ClickOrSteps = Annotated[
    SelectorOrFlow, BeforeValidator(_strict_optional), AfterValidator(_flow_selectors)
]
StepList = Annotated[Steps, BeforeValidator(_strict_optional), AfterValidator(_flow_selectors)]


def boolean_problem(value: Any) -> str:
    """What a setting that must be true or false got instead, with a hint for the usual slips."""
    hint = ""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        hint = " (quoted, so text: write it without quotes)"
    elif isinstance(value, str) and value.strip().lower() in ("yes", "no", "on", "off", "y", "n"):
        hint = " (only true and false are booleans in a profile)"
    return f"must be true or false, got {shown(value)}{hint}"


class ProfileModel(BaseModel):
    """A part of a profile, or the whole: unknown settings are refused, and nothing changes
    once it is loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)
