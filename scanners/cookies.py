"""Session-cookie attributes (SESS_COOKIE) as the browser reports them.

Works on the dicts Playwright's ``context.cookies()`` returns. Cookie values are secrets: a
``CookieRecord`` keeps only the value's length, and identifying the session cookies compares
values inside one call without keeping them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from scanners.result import Evaluation, Finding, verdict

HOST_PREFIX = "__Host-"
ACCEPTED_SAMESITE = ("Lax", "Strict")
_SAMESITE_SPELLING = {"strict": "Strict", "lax": "Lax", "none": "None"}


@dataclass(frozen=True)
class CookieRecord:
    """A cookie's attributes without its value.

    ``expires`` is seconds since the epoch, -1 for a cookie that lives as long as the browser
    session. ``same_site`` is "Strict", "Lax", "None", or None when the browser reported none.
    """

    name: str
    domain: str
    path: str
    expires: float
    http_only: bool
    secure: bool
    same_site: str | None
    value_length: int

    @classmethod
    def from_playwright(cls, cookie: Mapping[str, Any]) -> CookieRecord:
        same_site = cookie.get("sameSite")
        expires = cookie.get("expires")
        return cls(
            name=str(cookie.get("name", "")),
            domain=str(cookie.get("domain", "")),
            path=str(cookie.get("path", "/")),
            expires=float(expires) if isinstance(expires, int | float) else -1.0,
            http_only=bool(cookie.get("httpOnly", False)),
            secure=bool(cookie.get("secure", False)),
            same_site=_SAMESITE_SPELLING.get(str(same_site).lower()) if same_site else None,
            value_length=len(str(cookie.get("value", ""))),
        )

    @property
    def where(self) -> str:
        return f"{self.name} ({self.domain}{self.path})"

    def describe(self) -> str:
        """The attributes an auditor checks, e.g. ``Secure, HttpOnly, SameSite=Lax``."""
        flags = [
            "Secure" if self.secure else "not Secure",
            "HttpOnly" if self.http_only else "not HttpOnly",
            f"SameSite={self.same_site}" if self.same_site else "no SameSite",
        ]
        return ", ".join(flags)


def declared_same_site(set_cookie_headers: Sequence[str]) -> dict[str, str | None]:
    """The SameSite attribute each cookie name was last *sent* with (None when left out).

    Browsers report a cookie without SameSite as Lax ("Lax by default"), which hides a server
    that never declared it; the raw Set-Cookie headers show what the portal actually asked for.
    """
    declared: dict[str, str | None] = {}
    for header in set_cookie_headers:
        pair, _, attributes = header.partition(";")
        name = pair.partition("=")[0].strip()
        value: str | None = None
        for attribute in attributes.split(";"):
            key, _, setting = attribute.partition("=")
            if key.strip().lower() == "samesite":
                value = _SAMESITE_SPELLING.get(setting.strip().lower(), setting.strip() or None)
        if name:
            declared[name] = value
    return declared


def with_declared_same_site(
    cookies: Sequence[CookieRecord], set_cookie_headers: Sequence[str]
) -> list[CookieRecord]:
    """Records whose SameSite is what the server declared, where its header was seen."""
    declared = declared_same_site(set_cookie_headers)
    return [replace(c, same_site=declared[c.name]) if c.name in declared else c for c in cookies]


def _identity(cookie: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(cookie.get("name", "")), str(cookie.get("domain", "")), str(cookie.get("path", "")))


def _digest(cookie: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(str(cookie.get("value", "")).encode("utf-8")).digest()


def session_cookie_names(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Names of cookies that sign-in added or whose value it changed, in ``after`` order.

    A cookie is the same cookie when name, domain and path match. Only digests of the
    earlier values are held for the comparison, so no second copy of a session value exists.
    """
    earlier = {_identity(c): _digest(c) for c in before}
    names: list[str] = []
    for cookie in after:
        previous = earlier.get(_identity(cookie))
        if previous is not None and previous == _digest(cookie):
            continue
        name = str(cookie.get("name", ""))
        if name not in names:
            names.append(name)
    return names


def evaluate_session_cookies(
    cookies: Sequence[CookieRecord],
    names: Sequence[str],
    accepted_same_site: Sequence[str] = ACCEPTED_SAMESITE,
) -> Evaluation:
    """SESS_COOKIE: every cookie named in ``names`` is Secure, HttpOnly and has one of the
    ``accepted_same_site`` values (policy same_site; Lax or Strict by default).

    Without any identified session cookie there is nothing to judge, so the result is
    inconclusive rather than passed.
    """
    same_site = " or ".join(sorted(accepted_same_site))
    threshold = f"session cookies Secure, HttpOnly, SameSite {same_site} (advisory: __Host- prefix)"
    wanted = set(names)
    session = [c for c in cookies if c.name in wanted]
    if not session:
        listed = ", ".join(names) if names else "none"
        return Evaluation(
            status="inconclusive",
            reason=f"no session cookie was identified after sign-in (names looked for: {listed})",
            threshold=threshold,
        )

    findings: list[Finding] = []
    for cookie in session:
        where = cookie.where
        if not cookie.secure:
            findings.append(
                Finding(
                    "cookie.not_secure",
                    f"session cookie {cookie.name} lacks Secure and may be sent over plain http",
                    where=where,
                )
            )
        if not cookie.http_only:
            findings.append(
                Finding(
                    "cookie.not_httponly",
                    f"session cookie {cookie.name} lacks HttpOnly and is readable by scripts",
                    where=where,
                )
            )
        if cookie.same_site not in accepted_same_site:
            shown = f"SameSite={cookie.same_site}" if cookie.same_site else "no SameSite"
            findings.append(
                Finding(
                    "cookie.samesite_weak",
                    f"session cookie {cookie.name} has {shown}; {same_site} is required",
                    where=where,
                )
            )
        if not cookie.name.startswith(HOST_PREFIX):
            findings.append(
                Finding(
                    "cookie.no_host_prefix",
                    f"session cookie {cookie.name} does not use the {HOST_PREFIX} prefix, so a "
                    "sibling subdomain could overwrite it",
                    severity="warn",
                    where=where,
                )
            )

    return verdict(
        findings,
        measured="; ".join(f"{c.where}: {c.describe()}" for c in session),
        threshold=threshold,
        passed_reason=f"every session cookie is Secure, HttpOnly and SameSite {same_site}",
        failed_reason="some session cookies lack Secure, HttpOnly or a strict enough SameSite",
    )


def _held_values(cookies: Sequence[Mapping[str, Any]]) -> set[tuple[str, bytes]]:
    return {(str(c.get("name", "")), _digest(c)) for c in cookies}


def evaluate_cookies_dropped(
    captured: Sequence[Mapping[str, Any]], held: Sequence[Mapping[str, Any]]
) -> Evaluation:
    """SESS_LOGOUT: after sign-out the browser no longer holds the captured session cookies.

    ``captured`` are the session cookies taken from the browser while signed in, ``held`` the
    browser's cookie jar after sign-out; a cookie is still held when a cookie of the same name
    carries the same value (compared by digest). Finding key, one per cookie still held:
    ``session.logout_cookie_still_held``. Nothing captured is inconclusive.
    """
    applied = "the browser holds none of the captured session cookies after sign-out (SESS_LOGOUT)"
    if not captured:
        return Evaluation(
            "inconclusive",
            "no session cookie was captured before sign-out, so none can be looked for after it",
            threshold=applied,
        )
    jar = _held_values(held)
    kept = sorted(str(c.get("name", "")) for c in captured if _held_values([c]) <= jar)
    return verdict(
        [
            Finding(
                "session.logout_cookie_still_held",
                f"the browser still holds session cookie {name} after sign-out",
                where=name,
            )
            for name in kept
        ],
        measured=f"session cookies left in the browser after sign-out: {len(kept)}",
        threshold=applied,
        passed_reason="sign-out removed the captured session cookies from the browser",
        failed_reason=f"sign-out left these session cookies in the browser: {', '.join(kept)}",
    )


def evaluate_session_id_renewed(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    session_cookies: Sequence[str],
) -> Evaluation:
    """SESS_FIXATION: sign-in issues a new session cookie and keeps no pre-sign-in session value.

    ``before`` and ``after`` are the browser's cookies just before and just after a successful
    sign-in; ``session_cookies`` the session cookie names the profile declares (may be empty).
    Finding keys: ``session.fixation_no_new_cookie`` (sign-in set or changed no cookie at all)
    and ``session.fixation_id_kept`` (a declared session cookie kept its pre-sign-in value).
    """
    changed = session_cookie_names(before, after)
    earlier = _held_values(before)
    declared = set(session_cookies)
    kept = [
        str(c.get("name", ""))
        for c in after
        if c.get("name") in declared and _held_values([c]) <= earlier
    ]
    findings: list[Finding] = []
    if not changed:
        findings.append(
            Finding(
                "session.fixation_no_new_cookie",
                "sign-in issued no new session cookie: the pre-sign-in session ID was kept",
            )
        )
    if kept:
        findings.append(
            Finding(
                "session.fixation_id_kept",
                f"sign-in kept the pre-sign-in value of {', '.join(kept)}",
                where=", ".join(kept),
            )
        )
    return verdict(
        findings,
        measured=f"cookies issued or changed at sign-in: {', '.join(changed) or 'none'}",
        threshold="sign-in issues a new session ID (SESS_FIXATION)",
        passed_reason="sign-in issued a new session cookie and kept no pre-sign-in session value",
        failed_reason="sign-in did not renew the session ID",
    )
