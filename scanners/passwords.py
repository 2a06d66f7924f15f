"""The password-policy evaluations (PWD_BLOCKLIST, PWD_STRENGTH, PWD_LENGTH,
PWD_NOCOMPOSITION, PWD_CHANGE) over what the portal answered to each candidate.

Evaluations take what the portal answered (``Trial``, for a candidate from
``scanners.password_candidates``) and never assert or do I/O. A refusal counts only when backed
by a positive control (a strong password accepted by the same form in the same run) and when its
message is not a throttle or CSRF/WAF page (``scanners.refusals``); otherwise the evaluation is
inconclusive and says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from scanners.password_candidates import Candidate
from scanners.refusals import classify
from scanners.result import Evaluation, Finding, verdict

PortalVerdict = Literal["accepted", "refused"]


@dataclass(frozen=True)
class Trial:
    """One candidate submitted to the portal and what it answered."""

    candidate: Candidate
    verdict: PortalVerdict
    message: str = ""

    @property
    def as_expected(self) -> bool:
        return (self.verdict == "accepted") == (self.candidate.expected == "accept")


def candidate_table(trials: Iterable[Trial]) -> str:
    """The report table: candidate (masked), length, zxcvbn score, expected and actual verdicts."""
    rows = [
        "| candidate (masked) | kind | length | zxcvbn score | expected | portal's verdict |",
        "|---|---|---|---|---|---|",
    ]
    for trial in trials:
        c = trial.candidate
        mark = "" if trial.as_expected else " (!)"
        rows.append(
            f"| {c.masked} | {c.kind}: {c.description} | {c.length} | {c.score} | "
            f"{c.expected} | {trial.verdict}{mark} |"
        )
    return "\n".join(rows)


# -- evaluations ------------------------------------------------------------------------------


def _no_trials(reason: str) -> Evaluation:
    return Evaluation(status="inconclusive", reason=reason, measured="no candidate submitted")


def refusal_cause(verdict_: PortalVerdict, message: str) -> str:
    """Why a refusal is not the password policy's (a throttle or block page's words), or ""."""
    if verdict_ != "refused" or not message:
        return ""
    found = classify(None, message)
    return found.reason if found is not None else ""


def _throttled(trials: Iterable[Trial]) -> Evaluation | None:
    """Inconclusive when a refused trial's message is a throttle or CSRF/WAF page."""
    for trial in trials:
        cause = refusal_cause(trial.verdict, trial.message)
        if cause:
            return Evaluation(
                status="inconclusive",
                reason=f"the {trial.candidate.kind} candidate was refused by {cause}, not by the "
                "password policy",
                measured=f"{trial.candidate.description}: refused ({trial.message[:120]})",
            )
    return None


def evaluate_blocklist(
    trials: Sequence[Trial], control: Trial | None = None, *, require_control: bool = False
) -> Evaluation:
    """PWD_BLOCKLIST: every common, breached or context-derived candidate is refused.

    The positive control is a strong candidate the policy must accept, submitted through the
    same form in the same visit: ``control``, or any trial whose candidate is expected to be
    accepted. When one was submitted and refused, the refusals prove nothing (a broken form,
    CSRF, throttling or a signed-out session refuse everything alike) and the result is
    inconclusive. ``require_control`` makes a missing control inconclusive too.
    """
    controls = [t for t in trials if t.candidate.expected == "accept"]
    controls += [control] if control is not None else []
    trials = [t for t in trials if t.candidate.expected != "accept"]
    if not trials:
        return _no_trials("no blocklist candidate was at least the minimum length")
    if controls and not any(t.verdict == "accepted" for t in controls):
        return Evaluation(
            status="inconclusive",
            reason="the portal refused the strong control password too, so its refusals of "
            "common passwords cannot be told apart from a broken change form, CSRF, "
            "throttling or a signed-out session",
            measured=f"0 of {len(controls)} strong control passwords accepted",
        )
    if require_control and not controls:
        return Evaluation(
            status="inconclusive",
            reason="no strong control password was submitted, so the refusals cannot be "
            "credited to the blocklist",
            measured=f"{len(trials)} candidates submitted without a positive control",
        )
    findings = [
        Finding(
            "password.blocklist_accepted",
            f"accepted a {t.candidate.kind} password ({t.candidate.description}, zxcvbn "
            f"score {t.candidate.score}): {t.candidate.masked}",
        )
        for t in trials
        if t.verdict == "accepted"
    ]
    refused = sum(1 for t in trials if t.verdict == "refused")
    if not findings:
        other = _throttled(trials)
        if other is not None:
            return other
    accepted_controls = sum(t.verdict == "accepted" for t in controls)
    backing = (
        f"; positive control: {accepted_controls} of {len(controls)} strong passwords accepted"
        if controls
        else "; no positive control submitted"
    )
    return verdict(
        findings,
        measured=f"{refused} of {len(trials)} common, breached or context-derived candidates "
        f"refused{backing}",
        threshold="every common, breached or context-derived password refused",
        passed_reason=f"all {len(trials)} common, breached and context-derived candidates were "
        "refused",
        failed_reason=f"the portal accepted {len(findings)} common, breached or context-derived "
        "password(s)",
    )


def evaluate_strength(trials: Sequence[Trial], min_score: int, guidance: str | None) -> Evaluation:
    """PWD_STRENGTH: nothing under the policy score accepted, strong ones accepted, guidance."""
    if not trials:
        return _no_trials("no strength candidate was submitted")
    strong = [t for t in trials if t.candidate.score >= min_score]
    if not strong:
        return Evaluation(
            status="inconclusive",
            reason="no strong candidate was submitted as a positive control, so refusals "
            "cannot be credited to the strength rule",
            measured=f"{len(trials)} candidates, none scoring >= {min_score}",
        )
    if not any(t.verdict == "accepted" for t in strong):
        return Evaluation(
            status="inconclusive",
            reason="the portal refused even the strong candidates, so its strength rule cannot "
            "be told apart from a broken change form",
            measured=f"0 of {len(strong)} strong candidates accepted",
        )
    if not any(t.verdict == "accepted" and t.candidate.score < min_score for t in trials):
        other = _throttled(t for t in trials if t.candidate.score < min_score)
        if other is not None:
            return other
    findings: list[Finding] = [
        Finding(
            "password.weak_accepted",
            f"accepted a password zxcvbn scores {t.candidate.score} (< {min_score}): "
            f"{t.candidate.description}, {t.candidate.masked}",
        )
        for t in trials
        if t.verdict == "accepted" and t.candidate.score < min_score
    ]
    if not guidance:
        findings.append(
            Finding("password.no_guidance", "no password strength guidance is shown to the user")
        )
    weak = [t for t in trials if t.candidate.score < min_score]
    accepted_scores = sorted(t.candidate.score for t in trials if t.verdict == "accepted")
    return verdict(
        findings,
        measured=(
            f"{sum(t.verdict == 'refused' for t in weak)} of {len(weak)} candidates scoring below "
            f"{min_score} refused; accepted scores {accepted_scores}; guidance "
            f"{'shown' if guidance else 'not shown'}"
        ),
        threshold=f"zxcvbn score >= {min_score} for every accepted password; guidance shown",
        passed_reason=f"no password scoring below {min_score} was accepted, and guidance is shown",
        failed_reason=f"the portal accepts passwords zxcvbn scores below {min_score}, or shows no "
        "guidance",
    )


@dataclass(frozen=True)
class LengthMeasurement:
    """What PWD_LENGTH saw: the trials and the sign-ins that followed them."""

    min_length: int
    long_length: int
    trials: dict[str, Trial]
    truncated_sign_in: bool | None = None
    truncation_length: int | None = None
    full_sign_in: bool | None = None
    unicode_sign_in: bool | None = None
    paste_allowed: bool | None = None


def evaluate_length(m: LengthMeasurement) -> Evaluation:
    findings: list[Finding] = []
    trials = m.trials

    def verdict_of(name: str) -> str | None:
        trial = trials.get(name)
        return trial.verdict if trial else None

    if verdict_of("minimum") != "accepted" and verdict_of("long") != "accepted":
        return Evaluation(
            status="inconclusive",
            reason="the portal refused even a strong password of the minimum length and a long "
            "passphrase, so its length rule cannot be judged",
            measured=f"minimum: {verdict_of('minimum')}; long: {verdict_of('long')}",
        )
    too_short = trials.get("too_short")
    if too_short is not None:
        cause = refusal_cause(too_short.verdict, too_short.message)
        if cause:
            return Evaluation(
                status="inconclusive",
                reason=f"the too-short password was refused by {cause}, not by the length rule",
                measured=f"too_short: refused ({too_short.message[:120]})",
            )
    if verdict_of("too_short") == "accepted":
        findings.append(
            Finding(
                "password.too_short_accepted",
                f"accepted a {m.min_length - 1}-character password (minimum {m.min_length})",
            )
        )
    if verdict_of("minimum") == "refused":
        findings.append(
            Finding(
                "password.minimum_refused",
                f"refused a strong {m.min_length}-character password",
                severity="warn",
            )
        )
    if verdict_of("long") == "refused":
        findings.append(
            Finding("password.long_refused", f"refused a {m.long_length}-character passphrase")
        )
    if verdict_of("very_long") == "refused":
        findings.append(
            Finding(
                "password.very_long_refused",
                f"refused a {trials['very_long'].candidate.length}-character passphrase",
                severity="warn",
            )
        )
    if verdict_of("unicode") == "refused":
        findings.append(Finding("password.unicode_refused", "refused a Unicode passphrase"))
    if m.unicode_sign_in is False:
        findings.append(
            Finding(
                "password.unicode_sign_in",
                "the Unicode password was accepted but signing in with it failed",
            )
        )
    if m.truncated_sign_in:
        findings.append(
            Finding(
                "password.truncated",
                f"signing in with the {m.truncation_length}-character password minus its last "
                "character succeeded: the portal truncates passwords",
            )
        )
    if m.full_sign_in is False:
        findings.append(
            Finding("password.long_sign_in", "signing in with the accepted long password failed")
        )
    if m.paste_allowed is False:
        findings.append(Finding("password.paste_blocked", "the new-password field blocks pasting"))
    parts = [f"{name}: {trial.verdict}" for name, trial in trials.items()]
    if m.truncation_length is not None:
        parts.append(
            f"sign-in with the {m.truncation_length}-character password minus one character: "
            f"{'accepted' if m.truncated_sign_in else 'refused'}"
        )
    if m.paste_allowed is not None:
        parts.append(f"paste {'allowed' if m.paste_allowed else 'blocked'}")
    return verdict(
        findings,
        measured=f"minimum {m.min_length}: " + ", ".join(parts),
        threshold=f"refuse < {m.min_length} characters; accept {m.long_length}+, Unicode and "
        "paste; never truncate",
        passed_reason=f"passwords under {m.min_length} characters are refused; long and Unicode "
        "ones are accepted and never truncated",
        failed_reason="the portal's length handling is noncompliant (short accepted, long or "
        "Unicode refused, or truncation)",
    )


def evaluate_nocomposition(trial: Trial | None, rules_allowed: bool) -> Evaluation:
    """PWD_NOCOMPOSITION: a long lower-case passphrase is accepted."""
    if rules_allowed:
        return Evaluation(
            status="skipped",
            reason="the profile's policy allows composition rules (composition_rules_allowed)",
        )
    if trial is None:
        return _no_trials("the lower-case passphrase was not submitted")
    findings = []
    if trial.verdict == "refused":
        message = f": {trial.message}" if trial.message else ""
        findings.append(
            Finding(
                "password.composition_rules",
                f"refused a {trial.candidate.length}-character lower-case passphrase (zxcvbn "
                f"score {trial.candidate.score}){message}",
            )
        )
    return verdict(
        findings,
        measured=f"{trial.candidate.length}-character lower-case passphrase, zxcvbn score "
        f"{trial.candidate.score}: {trial.verdict}; periodic expiry is not observable in one run",
        threshold="no character-class rules",
        passed_reason="a long lower-case passphrase is accepted: no character-class rules",
        failed_reason="the portal forces character-class rules on a strong passphrase",
    )


@dataclass(frozen=True)
class ChangeMeasurement:
    """PWD_CHANGE: the form, and whether changes without the right current password took."""

    asks_current: bool
    without_current: PortalVerdict
    wrong_current: PortalVerdict
    with_current: PortalVerdict
    # What the portal said when refusing, so a throttle or CSRF page is not read as a refusal.
    without_message: str = ""
    wrong_message: str = ""


def evaluate_change(m: ChangeMeasurement) -> Evaluation:
    # The positive control is the change with the right current password, submitted last by
    # the same signed-in browser: it proves the form reached the portal's logic.
    if m.with_current != "accepted":
        return Evaluation(
            status="inconclusive",
            reason="even a change with the right current password was refused, so the other "
            "refusals cannot be credited to the current-password check (broken form, CSRF, "
            "throttling or a signed-out session)",
            measured=f"with the right current password: {m.with_current}",
        )
    for what, verdict_, message in (
        ("without the current password", m.without_current, m.without_message),
        ("with a wrong current password", m.wrong_current, m.wrong_message),
    ):
        cause = refusal_cause(verdict_, message)
        if cause:
            return Evaluation(
                status="inconclusive",
                reason=f"the change {what} was refused by {cause}, not by the current-password "
                "check",
                measured=f"{what}: refused ({message[:120]})",
            )
    findings: list[Finding] = []
    if not m.asks_current:
        findings.append(Finding("password.change_no_current_field", "the form does not ask for it"))
    if m.without_current == "accepted":
        findings.append(
            Finding(
                "password.change_without_current",
                "a change without the current password was accepted",
            )
        )
    if m.wrong_current == "accepted":
        findings.append(
            Finding(
                "password.change_wrong_current",
                "a change with a wrong current password was accepted",
            )
        )
    return verdict(
        findings,
        measured=(
            f"current password field {'present' if m.asks_current else 'absent'}; change without "
            f"it: {m.without_current}; with a wrong one: {m.wrong_current}; with the right one: "
            f"{m.with_current}"
        ),
        threshold="the current password is required to change it",
        passed_reason="changing the password requires the current password",
        failed_reason="the password can be changed without the current password",
    )
