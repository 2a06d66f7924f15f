"""AUTH_ENUM: does a form answer a known account differently from an unknown one?

Compared per form (sign-in, password reset): the status codes, redirect targets and visible
text of every answer, and the median response times. The timing tolerance (default 100 ms) is
this project's default; no standard fixes it.

"Alike" proves nothing unless the requests reached the portal's logic, so before comparing:
- no answer may be a throttle or a CSRF/WAF/block page (``scanners.refusals``);
- on the sign-in form, the positive control: the right password of a real account, sent by the
  same client through the same form, must get a *different* answer (status, redirect, text or a
  new cookie) from the wrong passwords; otherwise the form answered everything alike;
- the reset form's answers must not be uniform HTTP errors.
Any of these failing makes the result inconclusive with that reason, never passed.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

from scanners.forms import FormAnswer
from scanners.result import Evaluation, Finding, verdict

# A form whose answers failed this often cannot be judged.
MAX_ERROR_SHARE = 0.2
MADE_UP_PREFIX = "portal-audit-"


# A timing gap above this share of the tolerance passes with an advisory (warn).
NEAR_TOLERANCE = 0.8


def unknown_name_like(known: str, random_hex: str) -> str:
    """A login name no account has, in the shape of ``known``: an e-mail address at the same
    domain, digits of the same length, else a plain name.

    A name of another shape can be stopped before the portal's logic (an ``<input
    type=email>`` that the browser will not submit) or answered faster (a framework that skips
    its password hash for a malformed name), so it would prove nothing about unknown accounts.
    """
    local, at, domain = known.rpartition("@")
    if at and local and domain:
        return f"{MADE_UP_PREFIX}{random_hex}@{domain}"
    if known.isdigit():
        digits = str(int(random_hex, 16)).rjust(len(known), "0")[-len(known) :]
        return digits if digits != known else digits[::-1]
    return f"{MADE_UP_PREFIX}{random_hex}"


@dataclass(frozen=True)
class FormComparison:
    """The answers of one form. ``positive`` holds the answers to the right password of a real
    account through the same form (sign-in only); ``needs_positive`` says the form has one."""

    form: str
    known: tuple[FormAnswer, ...]
    unknown: tuple[FormAnswer, ...]
    positive: tuple[FormAnswer, ...] = ()
    needs_positive: bool = False


def _reached_logic(comparison: FormComparison) -> str | None:
    """Why the answers cannot be the portal's own decision, or None when they can."""
    name = comparison.form
    everything = comparison.known + comparison.unknown + comparison.positive
    refused = [a.refusal for a in everything if a.refusal is not None]
    if refused:
        return (
            f"the {name} form: {refused[0].reason} ({len(refused)} of {len(everything)} "
            "answers); a throttled or blocked request says nothing about the accounts"
        )
    answered = [a for a in comparison.known + comparison.unknown if not a.error]
    if answered and all((a.status or 0) >= 500 for a in answered):
        return f"the {name} form answered every request with a server error (HTTP 5xx)"
    if not comparison.needs_positive:
        if answered and all((a.status or 0) >= 400 for a in answered):
            statuses = "/".join(sorted({str(a.status) for a in answered}))
            return (
                f"the {name} form answered every request with HTTP {statuses}: its requests "
                "did not reach the portal's logic"
            )
        return None
    if not comparison.positive:
        return f"the {name} form had no positive control (the right password was not tried)"
    wrong = [a for a in comparison.known if not a.error]
    usual = Counter(a.signature() for a in wrong).most_common(1)
    cookies_on_wrong = {cookie for a in wrong for cookie in a.cookies_set}
    for right in comparison.positive:
        if right.error:
            return f"the {name} form's positive control could not run: {right.error}"
        new_cookie = set(right.cookies_set) - cookies_on_wrong
        if usual and right.signature() == usual[0][0] and not new_cookie:
            return (
                f"the {name} form answered the right password exactly like a wrong one "
                f"(HTTP {right.status}, same text, no new cookie): its requests did not reach "
                "the sign-in logic (CSRF protection, a WAF or a block page?)"
            )
    return None


def _common(values: list[str]) -> str:
    return Counter(values).most_common(1)[0][0] if values else ""


def _first_difference(a: str, b: str, width: int = 60) -> str:
    index = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if index is None:
        index = min(len(a), len(b))
    start = max(0, index - 10)
    known, unknown = a[start : start + width], b[start : start + width]
    return f"known: '...{known}...' / unknown: '...{unknown}...'"


def evaluate_enumeration(
    comparisons: list[FormComparison], *, tolerance_ms: float, min_samples: int
) -> Evaluation:
    applied = (
        f"same status, redirect and text; timing medians within {tolerance_ms:g} ms "
        f"(project default), >= {min_samples} samples each"
    )
    if not comparisons:
        return Evaluation("inconclusive", "no form was compared", threshold=applied)
    findings: list[Finding] = []
    measured: list[str] = []
    for comparison in comparisons:
        name = comparison.form
        unreached = _reached_logic(comparison)
        if unreached:
            return Evaluation("inconclusive", unreached, threshold=applied)
        answers = comparison.known + comparison.unknown
        failed = [a for a in answers if a.error]
        if not answers or len(failed) > MAX_ERROR_SHARE * len(answers):
            reason = failed[0].error if failed else "no answers"
            return Evaluation(
                "inconclusive",
                f"the {name} form could not be submitted reliably: {reason}",
                threshold=applied,
            )
        known = [a for a in comparison.known if not a.error]
        unknown = [a for a in comparison.unknown if not a.error]
        if min(len(known), len(unknown)) < min_samples:
            return Evaluation(
                "inconclusive",
                f"the {name} form gave fewer than {min_samples} answers per account",
                threshold=applied,
            )
        known_status = sorted({str(a.status) for a in known})
        unknown_status = sorted({str(a.status) for a in unknown})
        if known_status != unknown_status:
            findings.append(
                Finding(
                    "enum.status_differs",
                    f"known account answered {'/'.join(known_status)}, unknown "
                    f"{'/'.join(unknown_status)}",
                    where=name,
                )
            )
        known_location = _common([a.location or "" for a in known])
        unknown_location = _common([a.location or "" for a in unknown])
        if known_location != unknown_location:
            findings.append(
                Finding(
                    "enum.redirect_differs",
                    f"known account redirected to {known_location or '(none)'}, unknown to "
                    f"{unknown_location or '(none)'}",
                    where=name,
                )
            )
        known_text = _common([a.text for a in known])
        unknown_text = _common([a.text for a in unknown])
        if known_text != unknown_text:
            findings.append(
                Finding(
                    "enum.text_differs",
                    "the answer's text differs: " + _first_difference(known_text, unknown_text),
                    where=name,
                )
            )
        known_ms = statistics.median(a.elapsed for a in known) * 1000
        unknown_ms = statistics.median(a.elapsed for a in unknown) * 1000
        gap = abs(known_ms - unknown_ms)
        if gap > tolerance_ms:
            findings.append(
                Finding(
                    "enum.timing_differs",
                    f"median answer {known_ms:.0f} ms for the known account vs {unknown_ms:.0f} ms "
                    f"for the unknown one (gap {gap:.0f} ms > {tolerance_ms:g} ms)",
                    where=name,
                )
            )
        elif gap > NEAR_TOLERANCE * tolerance_ms:
            findings.append(
                Finding(
                    "enum.timing_near_tolerance",
                    f"the median answers differ by {gap:.0f} ms, more than "
                    f"{NEAR_TOLERANCE:.0%} of the {tolerance_ms:g} ms tolerance",
                    severity="warn",
                    where=name,
                )
            )
        text_same = "same" if known_text == unknown_text else "different"
        measured.append(
            f"{name}: status {'/'.join(known_status)} vs {'/'.join(unknown_status)}, text "
            f"{text_same}, median {known_ms:.0f} ms vs {unknown_ms:.0f} ms (gap {gap:.0f} ms, "
            f"tolerance {tolerance_ms:g} ms, project default), {len(known)}+{len(unknown)} samples"
            + (
                f"; positive control: the right password answered HTTP "
                f"{'/'.join(str(a.status) for a in comparison.positive)}, unlike a wrong one"
                if comparison.positive
                else ""
            )
        )
    return verdict(
        findings,
        measured="; ".join(measured),
        threshold=applied,
        passed_reason="known and unknown accounts get the same answer: "
        + ", ".join(c.form for c in comparisons),
        failed_reason="the portal tells known accounts from unknown ones",
    )
