"""Password candidates built per run, scored with zxcvbn, and the policy evaluations.

Candidates come from the profile's context (the account's username and name, the portal's and
hospital's names), a small versioned list of common and breached passwords, generated weak
patterns, strong random passwords and passphrases, short and very long ones and Unicode. Each is
scored with zxcvbn (with the context as user inputs) and carries the verdict a compliant portal
gives. The value of a candidate is a secret: it is kept out of reprs and shown only masked.

Evaluations take what the portal answered (``Trial``) and never assert or do I/O. A refusal
counts only when backed by a positive control (a strong password accepted by the same form in
the same run) and when its message is not a throttle or CSRF/WAF page (``scanners.refusals``);
otherwise the evaluation is inconclusive and says why.
"""

from __future__ import annotations

import random
import re
import secrets
import string
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from zxcvbn import zxcvbn

from scanners.refusals import classify
from scanners.result import Evaluation, Finding, verdict

POLICY_DIR = Path(__file__).resolve().parent / "policies"
BREACHED_FILE = POLICY_DIR / "common-passwords-v1.txt"
ZXCVBN_MAX_INPUT = 72  # zxcvbn refuses longer input
Expected = Literal["accept", "refuse"]
PortalVerdict = Literal["accepted", "refused"]

# Neutral words for generated passphrases: no names, no brand, nothing medical.
WORDS = (
    "amber",
    "anvil",
    "banjo",
    "basalt",
    "beacon",
    "bramble",
    "cactus",
    "candle",
    "cobalt",
    "copper",
    "cricket",
    "dune",
    "ember",
    "fjord",
    "gable",
    "garnet",
    "glacier",
    "granite",
    "harbor",
    "hazel",
    "heron",
    "indigo",
    "jasper",
    "juniper",
    "kettle",
    "lantern",
    "larch",
    "lichen",
    "magnet",
    "mango",
    "marble",
    "meadow",
    "nickel",
    "nutmeg",
    "oboe",
    "orbit",
    "orchard",
    "otter",
    "paddle",
    "pebble",
    "pepper",
    "quartz",
    "quiver",
    "raven",
    "ribbon",
    "saddle",
    "sapphire",
    "scarlet",
    "sequoia",
    "shingle",
    "sorrel",
    "spindle",
    "stencil",
    "tundra",
    "tulip",
    "umber",
    "velvet",
    "walnut",
    "willow",
    "wombat",
    "yonder",
    "zephyr",
)
SYMBOLS = "-_.!#%+="
# Letters that spell nothing: random passwords made of them can never contain a name or word.
_CONSONANTS = "bcdfghjkmnpqrstvwxz"
_QUIET_DIGITS = "2689"


@dataclass(frozen=True)
class Candidate:
    value: str = field(repr=False)
    kind: str
    description: str
    score: int
    expected: Expected
    why: str

    @property
    def length(self) -> int:
        return len(self.value)

    @property
    def masked(self) -> str:
        """First character and length only: enough to tell candidates apart in a report."""
        return f"{self.value[:1]}{'*' * min(self.length - 1, 11)} ({self.length} chars)"


@dataclass(frozen=True)
class Trial:
    """One candidate submitted to the portal and what it answered."""

    candidate: Candidate
    verdict: PortalVerdict
    message: str = ""

    @property
    def as_expected(self) -> bool:
        return (self.verdict == "accepted") == (self.candidate.expected == "accept")


@dataclass(frozen=True)
class CandidateContext:
    """What weak passwords are built from, and the policy the candidates are judged by."""

    username: str
    display_name: str
    context_words: tuple[str, ...]
    min_length: int
    min_score: int
    year: int

    def user_inputs(self) -> list[str]:
        """Words zxcvbn should treat as guessable for this account and portal."""
        words: list[str] = []
        for value in (self.username, self.display_name, *self.context_words):
            words.append(value.lower())
            words.extend(w for w in re.split(r"[^a-z0-9]+", _fold(value)) if len(w) >= 3)
            words.append("".join(re.split(r"[^a-z0-9]+", _fold(value))))
        return [w for w in dict.fromkeys(words) if w]

    def terms(self) -> list[str]:
        """Lower-case name parts a generated strong candidate must not contain."""
        return [w for w in self.user_inputs() if len(w) >= 4 and w.isalnum()]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def score(password: str, user_inputs: Sequence[str] = ()) -> int:
    result = zxcvbn(password[:ZXCVBN_MAX_INPUT], user_inputs=list(user_inputs))
    return int(result["score"])


def load_common_passwords(path: Path = BREACHED_FILE) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _candidate(
    ctx: CandidateContext, value: str, kind: str, description: str, expected: Expected, why: str
) -> Candidate:
    return Candidate(value, kind, description, score(value, ctx.user_inputs()), expected, why)


def _clean(ctx: CandidateContext, value: str) -> bool:
    folded = _fold(value)
    letters = "".join(c for c in folded if c.isalpha())
    return not any(term in folded or term in letters for term in ctx.terms())


# -- strong passwords the policy must accept --------------------------------------------------


def strong_random(ctx: CandidateContext, length: int, rng: random.Random) -> str:
    """Random characters of every class (so composition rules cannot refuse it), scoring high."""
    if length < 4:
        raise ValueError("a strong random password needs at least 4 characters")
    while True:
        required = [
            rng.choice(_CONSONANTS.upper()),
            rng.choice(_CONSONANTS),
            rng.choice(_QUIET_DIGITS),
            rng.choice(SYMBOLS),
        ]
        pool = _CONSONANTS + _CONSONANTS.upper() + _QUIET_DIGITS + SYMBOLS
        rest = [rng.choice(pool) for _ in range(length - len(required))]
        chars = rest + required
        rng.shuffle(chars)
        value = "".join(chars)
        if _clean(ctx, value) and score(value, ctx.user_inputs()) >= max(ctx.min_score, 3):
            return value


def strong_passphrase(ctx: CandidateContext, min_length: int, rng: random.Random) -> str:
    """Capitalised words, a symbol and a number: every character class, easy to type."""
    while True:
        words: list[str] = []
        while len("-".join(words)) + 4 < min_length or len(words) < 3:
            words.append(rng.choice(WORDS).capitalize())
        value = f"{rng.choice(SYMBOLS).join(words)}{rng.choice(SYMBOLS)}{rng.randint(10, 99)}"
        if _clean(ctx, value) and score(value, ctx.user_inputs()) >= max(ctx.min_score, 3):
            return value


def exact_length(value: str, length: int, rng: random.Random) -> str:
    """``value`` cut or padded with random characters to exactly ``length`` characters."""
    pool = _CONSONANTS + _CONSONANTS.upper() + _QUIET_DIGITS + SYMBOLS
    body = (value + "".join(rng.choice(pool) for _ in range(length)))[: length - 4]
    # Every character class at the end, so composition rules cannot be why it is refused.
    return (
        body
        + rng.choice(_CONSONANTS.upper())
        + rng.choice(_CONSONANTS)
        + rng.choice(_QUIET_DIGITS)
        + rng.choice(SYMBOLS)
    )


# -- candidate sets, one per control ----------------------------------------------------------


def blocklist_candidates(ctx: CandidateContext, common: Sequence[str]) -> list[Candidate]:
    """Common and breached passwords and ones built from the context, all to be refused.

    Only candidates at least the minimum length are kept: a shorter one would be refused for
    its length and prove nothing about the blocklist.
    """
    found: list[Candidate] = []
    for value in common:
        if len(value) >= ctx.min_length:
            found.append(
                _candidate(
                    ctx,
                    value,
                    "breached",
                    "common or breached password",
                    "refuse",
                    "listed in public breach corpora",
                )
            )
    year = ctx.year
    name_parts = [p.capitalize() for p in re.split(r"[^a-z]+", _fold(ctx.display_name)) if p]
    user_parts = [p.capitalize() for p in re.split(r"[^a-z]+", _fold(ctx.username)) if p]
    brand = [
        "".join(p.capitalize() for p in re.split(r"[^a-z0-9]+", _fold(w)) if p)
        for w in ctx.context_words
    ]
    built: list[tuple[str, str]] = []
    for name in brand:
        built += [
            (f"{name}{year}!", "portal or hospital name + year"),
            (f"{name}Patient{year}!", "portal name + 'Patient' + year"),
        ]
    if brand:
        built.append((f"Welcome2{brand[0]}!", "'Welcome' + portal name"))
    if name_parts:
        built.append((f"{''.join(name_parts)}{year}!", "account holder's name + year"))
    if user_parts:
        built.append((f"{'.'.join(user_parts)}{year}!", "username + year"))
    for value, description in built:
        if len(value) < ctx.min_length:
            value = value.rstrip("!") + "!" * (ctx.min_length - len(value) + 1)
        found.append(
            _candidate(ctx, value, "context", description, "refuse", "built from the context")
        )
    unique: dict[str, Candidate] = {}
    for candidate in found:
        unique.setdefault(candidate.value, candidate)
    return list(unique.values())


def strength_candidates(ctx: CandidateContext, rng: random.Random) -> list[Candidate]:
    """Candidates across the zxcvbn scale, none common or built from the context.

    Weak ones are generated patterns (repeats, sequences, words with dates) at least the minimum
    length, so only their strength can be the reason to refuse them.
    """
    patterns: list[tuple[str, str]] = []
    chunk = "".join(rng.choice(_CONSONANTS) for _ in range(3))
    patterns.append((chunk * (ctx.min_length // 3 + 2), "a short chunk repeated"))
    start = rng.randrange(0, 8)
    patterns.append(
        (string.ascii_lowercase[start : start + ctx.min_length + 1], "alphabet sequence")
    )
    word = rng.choice(["summer", "winter", "autumn", "spring"])
    stamp = f"{word.capitalize()}{ctx.year}"
    patterns.append((stamp * (ctx.min_length // len(stamp) + 1), "season + year repeated"))
    digits = "".join(rng.choice("0123456789") for _ in range(4))
    patterns.append(((digits * 6)[: ctx.min_length + 2], "four digits repeated"))
    found: list[Candidate] = []
    for value, description in patterns:
        value_score = score(value, ctx.user_inputs())
        if value_score >= ctx.min_score or not _clean(ctx, value):
            continue
        found.append(
            Candidate(
                value,
                "weak pattern",
                description,
                value_score,
                "refuse",
                f"zxcvbn score {value_score} is below {ctx.min_score}",
            )
        )
    for value, description in (
        (strong_passphrase(ctx, ctx.min_length + 4, rng), "random passphrase"),
        (strong_random(ctx, ctx.min_length + 5, rng), "random characters"),
    ):
        found.append(
            _candidate(
                ctx, value, "strong", description, "accept", "strong, long enough, not common"
            )
        )
    return found


def length_candidates(
    ctx: CandidateContext, long_length: int, rng: random.Random
) -> dict[str, Candidate]:
    """One below the minimum, the minimum, ``long_length``, a very long one and Unicode."""
    too_short = strong_random(ctx, ctx.min_length - 1, rng)
    at_minimum = strong_random(ctx, ctx.min_length, rng)
    long = exact_length(strong_passphrase(ctx, long_length, rng), long_length, rng)
    very_long_length = max(long_length, 64) + 36
    very_long = exact_length(strong_passphrase(ctx, very_long_length, rng), very_long_length, rng)
    unicode = (
        f"{strong_passphrase(ctx, 12, rng)}-Grüße-Ünïcødé-Ελληνικά-日本語-"
        f"{rng.choice(['🔒', '🌿', '🎻'])}"
    )
    expected: Expected = "accept"
    return {
        "too_short": _candidate(
            ctx,
            too_short,
            "too short",
            f"{ctx.min_length - 1} random characters",
            "refuse",
            "one character below the minimum",
        ),
        "minimum": _candidate(
            ctx,
            at_minimum,
            "minimum length",
            f"{ctx.min_length} random characters",
            expected,
            "exactly the minimum",
        ),
        "long": _candidate(
            ctx,
            long,
            "long",
            f"{long_length}-character passphrase",
            expected,
            f"at least {long_length} characters must be allowed",
        ),
        "very_long": _candidate(
            ctx,
            very_long,
            "very long",
            f"{very_long_length}-character passphrase",
            expected,
            "long enough to reveal truncation at 64 or 72 bytes (advisory)",
        ),
        "unicode": _candidate(
            ctx,
            unicode,
            "unicode",
            "passphrase with accents, Greek, Japanese and an emoji",
            expected,
            "every Unicode character must be allowed",
        ),
    }


def lowercase_passphrase(ctx: CandidateContext, rng: random.Random) -> Candidate:
    """Only lower-case letters and spaces: refused only by character-class rules."""
    while True:
        words = [rng.choice(WORDS) for _ in range(5)]
        value = " ".join(words)
        if (
            len(value) >= ctx.min_length
            and _clean(ctx, value)
            and score(value, ctx.user_inputs()) >= max(ctx.min_score, 3)
        ):
            return _candidate(
                ctx,
                value,
                "lowercase passphrase",
                "five lower-case words and spaces",
                "accept",
                "no character-class rules may apply",
            )


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


def new_password(ctx: CandidateContext) -> str:
    """A fresh strong password for a change the check makes (not a candidate under test)."""
    return strong_passphrase(ctx, ctx.min_length + 6, random.Random(secrets.randbits(64)))
