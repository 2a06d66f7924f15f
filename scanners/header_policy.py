"""The versioned header policy (``policies/headers-v1.json``) the security-header checks apply.

``load_header_policy`` reads and checks the file; the dataclasses here are what
``scanners.headers`` evaluates probes against. A malformed file is a packaging or configuration
error and raises, naming the file and the entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

POLICY_PATH = Path(__file__).parent / "policies" / "headers-v1.json"


@dataclass(frozen=True)
class CspRequirement:
    """A CSP directive the policy requires, and the source lists that satisfy it.

    ``fallback`` is the directive a browser consults when this one is absent (fetch directives
    such as object-src fall back to default-src; base-uri and frame-ancestors fall back to
    nothing).
    """

    directive: str
    accepted: frozenset[str]
    fallback: str | None = None

    @property
    def key(self) -> str:
        return "csp." + self.directive.replace("-", "_")

    def describe(self) -> str:
        return f"{self.directive} {' or '.join(sorted(self.accepted))}"


@dataclass(frozen=True)
class HeaderPolicy:
    version: str
    hsts_min_max_age: int
    hsts_recommended_max_age: int
    csp_required: tuple[CspRequirement, ...]
    content_type_options: str
    referrer_policies: frozenset[str]
    cache_required: tuple[str, ...]
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)
    refs: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)


def load_header_policy(path: Path | None = None) -> HeaderPolicy:
    """Read the header policy (default: the bundled ``headers-v1.json``).

    A malformed file raises ValueError naming the file and the entry: that is a packaging or
    configuration error, not a property of the portal.
    """
    source = path or POLICY_PATH
    data = json.loads(source.read_text(encoding="utf-8"))

    def need(mapping: Any, key: str, kind: type | tuple[type, ...]) -> Any:
        if not isinstance(mapping, dict) or not isinstance(mapping.get(key), kind):
            raise ValueError(f"{source}: missing or malformed entry {key!r}")
        return mapping[key]

    hsts = need(data, "hsts", dict)
    csp = need(data, "csp", dict)
    xcto = need(data, "x_content_type_options", dict)
    referrer = need(data, "referrer_policy", dict)
    cache = need(data, "cache_control", dict)
    requirements = tuple(
        CspRequirement(
            directive=need(entry, "directive", str).lower(),
            accepted=frozenset(v.lower() for v in need(entry, "accepted", list)),
            fallback=(entry.get("fallback") or None),
        )
        for entry in need(csp, "required", list)
    )
    sections = {
        "hsts": hsts,
        "csp": csp,
        "x_content_type_options": xcto,
        "referrer_policy": referrer,
        "cache_control": cache,
    }
    return HeaderPolicy(
        version=need(data, "version", str),
        hsts_min_max_age=need(hsts, "min_max_age", int),
        hsts_recommended_max_age=need(hsts, "recommended_max_age", int),
        csp_required=requirements,
        content_type_options=need(xcto, "required", str).lower(),
        referrer_policies=frozenset(v.lower() for v in need(referrer, "accepted", list)),
        cache_required=tuple(v.lower() for v in need(cache, "required_directives", list)),
        sources=MappingProxyType(dict(need(data, "sources", dict))),
        refs=MappingProxyType({k: tuple(v.get("refs", ())) for k, v in sections.items()}),
    )
