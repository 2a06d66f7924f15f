"""AUTH_ENUM's samples: the sign-in and reset forms posted many times over plain HTTP.

For each form, one untimed warm-up answer per account, then ``samples`` timed answers for the
known and for an unknown account, alternating. On the sign-in form the positive control is sent
before and after the samples: the right password of the profile's patient account through the
same client and form, which must be answered differently from a wrong one
(``scanners.enumeration``). Submissions are paced as the profile asks and a throttled answer is
retried after the portal's Retry-After while the budget lasts (``portal.pacing``); one still
throttled is kept, marked, and makes the result inconclusive.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from portal.errors import Inconclusive
from portal.pacing import Pacer
from portal.profile import Profile
from scanners.enumeration import FormComparison, unknown_name_like
from scanners.forms import FormAnswer, FormClient
from scanners.http import make_ssl_context


@dataclass(frozen=True)
class _Form:
    name: str
    url: str
    field: str
    values: Callable[[str, str], dict[str, str]]  # (username, password) -> fields
    positive: bool


def _forms(profile: Profile) -> list[_Form]:
    settings = profile.auth_enum
    assert settings is not None
    forms = [
        _Form(
            "sign-in",
            profile.url(profile.sign_in.url),
            settings.username_field,
            lambda user, password: {
                settings.username_field: user,
                settings.password_field: password,
            },
            positive=True,
        )
    ]
    if settings.reset is not None:
        reset = settings.reset
        forms.append(
            _Form(
                "password reset",
                profile.url(reset.url),
                reset.username_field,
                lambda user, _password: {reset.username_field: user},
                positive=False,
            )
        )
    return forms


MAX_UNANSWERED = 3


def sample_forms(profile: Profile, samples: int) -> tuple[list[FormComparison], Pacer]:
    """Every form's answers for the known and an unknown account, with positive controls."""
    settings = profile.auth_enum
    assert settings is not None
    known = settings.known_username
    unknown = unknown_name_like(known, secrets.token_hex(6))
    patient = profile.patient
    hide = (known, unknown, patient.username)
    context = make_ssl_context(profile.tls.ca_file)
    limits = profile.rate_limits
    pacer = Pacer(limits.pacing("enumeration"), limits.budget_seconds)
    wrong_password = "Wrong-" + secrets.token_urlsafe(12)
    unanswered: list[FormAnswer] = []

    def post(form: _Form, user: str, password: str) -> FormAnswer:
        answer = _post(form, user, password)
        # A portal that stopped answering gets no more submissions, each a full timeout long.
        unanswered[:] = [*unanswered, answer] if answer.status is None else []
        if len(unanswered) >= MAX_UNANSWERED:
            raise Inconclusive(
                f"the portal stopped answering: {MAX_UNANSWERED} submissions in a row got no "
                f"answer (last: {answer.error})"
            )
        return answer

    def _post(form: _Form, user: str, password: str) -> FormAnswer:
        while True:
            pacer.turn()
            client = FormClient(
                context,
                profile.timeouts.navigation_seconds,
                throttle_patterns=limits.all_throttle_patterns,
                block_patterns=limits.all_block_patterns,
            )
            answer = client.submit(form.url, form.field, form.values(user, password), hide)
            refusal = answer.refusal
            if refusal is None or not refusal.throttled or not pacer.back_off(refusal):
                return answer

    def positive(form: _Form) -> tuple[FormAnswer, ...]:
        if not form.positive:
            return ()
        return (post(form, patient.username, patient.password.get_secret_value()),)

    comparisons = []
    for form in _forms(profile):
        before = positive(form)
        # One untimed answer each first: the first request of a kind may pay for warm-up.
        post(form, known, wrong_password)
        post(form, unknown, wrong_password)
        known_answers: list[FormAnswer] = []
        unknown_answers: list[FormAnswer] = []
        for index in range(samples):
            # Alternating (and swapping who goes first) spreads any drift over both sides.
            order = [(known, known_answers), (unknown, unknown_answers)]
            for user, answers in order if index % 2 == 0 else reversed(order):
                answers.append(post(form, user, wrong_password))
        after = positive(form)
        comparisons.append(
            FormComparison(
                form.name,
                tuple(known_answers),
                tuple(unknown_answers),
                positive=before + after,
                needs_positive=form.positive,
            )
        )
    return comparisons, pacer


def answers_evidence(comparisons: list[FormComparison]) -> dict[str, object]:
    """The answers as evidence: status, redirect, timing and one text per side, no values sent."""

    def row(answer: FormAnswer) -> dict[str, object]:
        entry: dict[str, object] = {
            "status": answer.status,
            "location": answer.location,
            "ms": round(answer.elapsed * 1000, 1),
        }
        if answer.error:
            entry["error"] = answer.error
        if answer.refusal:
            entry["refused"] = answer.refusal.reason
        return entry

    evidence: dict[str, object] = {}
    for c in comparisons:
        sides: dict[str, object] = {
            side: [row(a) for a in answers] + [{"text": answers[0].text[:500]}] * bool(answers)
            for side, answers in (("known", c.known), ("unknown", c.unknown))
        }
        if c.needs_positive:
            sides["positive control (right password, same client and form)"] = [
                row(a) | {"cookies set": list(a.cookies_set)} for a in c.positive
            ]
        evidence[c.form] = sides
    return evidence
