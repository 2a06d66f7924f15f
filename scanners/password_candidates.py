"""The password candidates a run submits: built per run from the profile's context and scored
with zxcvbn, each with the verdict a compliant portal gives.

Candidates come from the profile's context (the account's username and name, the portal's and
hospital's names), a small versioned list of common and breached passwords, generated weak
patterns, strong random passwords and passphrases, short and very long ones and Unicode. Each is
scored with zxcvbn (with the context as user inputs) and carries the verdict a compliant portal
gives. The value of a candidate is a secret: it is kept out of reprs and shown only masked.
"""

from __future__ import annotations

import random
import re
import secrets
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from zxcvbn import zxcvbn

POLICY_DIR = Path(__file__).resolve().parent / "policies"
BREACHED_FILE = POLICY_DIR / "common-passwords-v1.txt"
ZXCVBN_MAX_INPUT = 72  # zxcvbn refuses longer input
Expected = Literal["accept", "refuse"]

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


def new_password(ctx: CandidateContext) -> str:
    """A fresh strong password for a change the check makes (not a candidate under test)."""
    return strong_passphrase(ctx, ctx.min_length + 6, random.Random(secrets.randbits(64)))
