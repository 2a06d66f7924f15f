"""Password-reset links (RESET_TOKEN): what a reset did, judged without I/O.

The background probe in portal/reset_run.py drives the reset flow and fills a
``ResetMeasurement``; ``evaluate_reset`` turns it into a verdict. Reset links and tokens are
secrets: they are never kept here, only their lengths, estimated bits and whether a Referer
carried them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from scanners.result import Evaluation, Finding, verdict
from scanners.tokens import estimate_bits

LinkUse = Literal["accepted", "refused"]
MIN_TOKEN_CHARACTERS = 8
# A refused second use proves single use only when it came well inside the link's lifetime.
REUSE_WITHIN = 0.75


def token_of(link: str) -> str | None:
    """The part of a reset link that is the token: the longest query value or path segment."""
    parts = urlsplit(link)
    pieces = [value for _, value in parse_qsl(parts.query)]
    pieces += [segment for segment in parts.path.split("/") if segment]
    pieces += [parts.fragment] if parts.fragment else []
    pieces = [p for p in pieces if len(p) >= MIN_TOKEN_CHARACTERS]
    return max(pieces, key=len) if pieces else None


def estimated_bits(tokens: Sequence[str]) -> float:
    """Upper bound on a reset token's randomness from the tokens seen (``scanners.tokens``):
    the smallest alphabet covering them, counting only positions that differ between them."""
    return estimate_bits(tokens).bits


@dataclass(frozen=True)
class RefererObservation:
    """One request from the reset page to another origin and whether its Referer leaked."""

    target_origin: str
    via: str
    referer_sent: str
    leaked: bool


@dataclass(frozen=True)
class ResetMeasurement:
    skipped: str | None = None
    first_use: LinkUse | None = None
    first_use_detail: str = ""
    second_use: LinkUse | None = None
    signed_in_after_reset: bool | None = None
    account_has_mfa: bool = False
    stated_lifetime_seconds: float | None = None
    # Seconds from requesting the link to using it the second time.
    second_use_after_seconds: float | None = None
    # A throttle or block page met where a used or expired link was refused.
    other_refusal: str = ""
    waited_seconds: float | None = None
    after_expiry: LinkUse | None = None
    token_lengths: tuple[int, ...] = ()
    token_bits: tuple[float, ...] = ()
    tokens_distinct: bool | None = None
    referers: tuple[RefererObservation, ...] = ()
    notes: tuple[str, ...] = ()


def evaluate_reset(m: ResetMeasurement, max_lifetime: float, min_bits: float) -> Evaluation:
    if m.skipped:
        return Evaluation(status="skipped", reason=m.skipped)
    if m.first_use != "accepted":
        return Evaluation(
            status="inconclusive",
            reason="a fresh reset link did not let the password be reset"
            + (f": {m.first_use_detail}" if m.first_use_detail else ""),
            measured=f"first use of a fresh link: {m.first_use or 'not tried'}",
        )
    if m.other_refusal and "refused" in (m.second_use, m.after_expiry):
        return Evaluation(
            status="inconclusive",
            reason=f"a reset link was refused by {m.other_refusal}: not the portal's verdict on "
            "the link",
            measured=f"second use {m.second_use}; after expiry {m.after_expiry}",
        )
    lifetime = m.stated_lifetime_seconds or max_lifetime
    late = m.second_use_after_seconds
    if m.second_use == "refused" and late is not None and late > REUSE_WITHIN * lifetime:
        return Evaluation(
            status="inconclusive",
            reason=f"the used link was tried again {late:.0f} s after it was requested, too close "
            f"to its {lifetime:g} s lifetime: the refusal may be expiry, not single use",
            measured=f"second use refused {late:.0f} s after the request (lifetime {lifetime:g} s)",
        )
    findings: list[Finding] = []
    if m.second_use == "accepted":
        findings.append(
            Finding("reset.reusable", "the reset link worked a second time after it was used")
        )
    if m.stated_lifetime_seconds is not None and m.stated_lifetime_seconds > max_lifetime:
        findings.append(
            Finding(
                "reset.lifetime_too_long",
                f"the portal's links live {m.stated_lifetime_seconds:g} s (policy at most "
                f"{max_lifetime:g} s)",
            )
        )
    if m.after_expiry == "accepted":
        findings.append(
            Finding(
                "reset.never_expires",
                f"an unused link still worked {m.waited_seconds:.0f} s after its e-mail arrived",
            )
        )
    elif m.after_expiry is None:
        findings.append(
            Finding(
                "reset.expiry_not_checked",
                "expiry could not be checked (no second link)",
                severity="warn",
            )
        )
    weakest = min(m.token_bits) if m.token_bits else None
    if weakest is not None and weakest < min_bits:
        findings.append(
            Finding(
                "reset.token_short",
                f"the reset token carries at most {weakest:.0f} bits (policy {min_bits:g})",
            )
        )
    if m.tokens_distinct is False:
        findings.append(Finding("reset.token_repeated", "two reset links carried the same token"))
    for seen in m.referers:
        if seen.leaked:
            findings.append(
                Finding(
                    "reset.referer_leak",
                    f"following the reset page's {seen.via} sent the reset token in the Referer "
                    f"to {seen.target_origin}",
                )
            )
    if m.signed_in_after_reset and m.account_has_mfa:
        findings.append(
            Finding(
                "reset.mfa_bypassed",
                "completing the reset signed the user in without the second factor",
            )
        )
    referer_text = (
        "; ".join(
            f"{r.via} -> {r.target_origin}: Referer {r.referer_sent or 'none'}" for r in m.referers
        )
        or "no request to another origin"
    )
    mfa_text = (
        "MFA bypass not evaluated: the reset account has no second factor; "
        if not m.account_has_mfa
        else ""
    )
    measured = (
        f"first use accepted; second use {m.second_use or 'not tried'}"
        + (
            f" {m.second_use_after_seconds:.0f} s after the request"
            if m.second_use_after_seconds is not None
            else ""
        )
        + "; unused link after "
        f"{m.waited_seconds or 0:.0f} s: {m.after_expiry or 'not tried'} (portal states "
        f"{m.stated_lifetime_seconds if m.stated_lifetime_seconds is not None else 'nothing'} "
        f"s); token about {', '.join(f'{b:.0f}' for b in m.token_bits) or '?'} bits (from "
        f"{len(m.token_lengths)} token(s)); "
        f"signed in after reset: {m.signed_in_after_reset}; {mfa_text}Referer: {referer_text}"
        + "".join(f"; {note}" for note in m.notes)
    )
    return verdict(
        findings,
        measured=measured,
        threshold=f"single use; expires within {max_lifetime:g} s; >= {min_bits:g} bits; no "
        "token in Referer",
        passed_reason="reset links are random, single-use and expire, and the token never "
        "leaves in a Referer",
        failed_reason="the reset link can be reused, does not expire, is guessable or leaks "
        "in a Referer",
    )
