"""Signing in for a check, and asking whether a browser's cookies are signed in.

``check_session`` is how every replay is read (docs/positive-controls.md): the signed-in page
opened with the page's cookies, and when it is not signed in, the throttle or block page met
instead of the portal's answer, if any (``scanners.refusals`` via the profile's rate limits).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Response

from portal.abilities import SignInOutcome
from portal.driver import PortalDriver
from portal.errors import Inconclusive
from portal.profile import Profile
from portal.profile_sections import Account

BODY_TEXT_TIMEOUT_MS = 2000


def signed_in_outcome(driver: PortalDriver, page: Page, account: Account) -> SignInOutcome:
    """Sign in for a check that needs it; a sign-in that fails leaves the check inconclusive."""
    outcome = driver.sign_in(page, account)
    if not outcome.signed_in:
        raise Inconclusive(f"the test account cannot sign in: {outcome.detail}")
    return outcome


@dataclass(frozen=True)
class Replay:
    """Whether a page's cookies sign in; ``refusal`` names a throttle or block page met.

    ``answered_at`` is when (``time.monotonic()``) the first answer to the page's navigation
    arrived: the portal had decided by then, however long a signed-out redirect chain (to an
    identity provider's form, say) then took to load. None when nothing answered.
    """

    signed_in: bool
    refusal: str = ""
    answered_at: float | None = None


def refusal_shown(page: Page, profile: Profile, response: Response | None) -> str:
    """The throttle or block page ``page`` shows instead of the portal's answer, if any."""
    try:
        text = page.locator("body").inner_text(timeout=BODY_TEXT_TIMEOUT_MS)
    except PlaywrightError:
        text = ""
    refusal = profile.rate_limits.classify(
        response.status if response is not None else None,
        text,
        response.headers.get("retry-after") if response is not None else None,
    )
    return refusal.reason if refusal is not None else ""


class NavigationAnswers(list[Response]):
    """The answers to a page's own navigations; ``first_at``: when the first arrived
    (``time.monotonic()``), None before."""

    first_at: float | None = None


def answer_moment(response: Response) -> float:
    """When ``response``'s first byte reached the browser, on ``time.monotonic()``'s clock.

    The browser's own resource timing, not when this process heard of it: on a loaded machine
    the event reaches Python seconds later, and a signed-out answer must not look late because
    of that. Falls back to now when the browser gives no timing.
    """
    now = time.monotonic()
    try:
        timing = response.request.timing
        start, first_byte = float(timing["startTime"]), float(timing["responseStart"])
    except (PlaywrightError, KeyError, TypeError, ValueError):
        return now
    if start <= 0 or first_byte < 0:
        return now
    arrived = (start + first_byte) / 1000 - (time.time() - now)
    return min(arrived, now)


@contextmanager
def navigation_answers(page: Page) -> Iterator[NavigationAnswers]:
    """The portal's answers to the page's own navigations while the block runs."""
    answers = NavigationAnswers()

    def keep(response: Response) -> None:
        if response.frame == page.main_frame and response.request.is_navigation_request():
            if answers.first_at is None:
                answers.first_at = answer_moment(response)
            answers.append(response)

    page.on("response", keep)
    try:
        yield answers
    finally:
        page.remove_listener("response", keep)


def check_session(driver: PortalDriver, page: Page, profile: Profile) -> Replay:
    """Open the signed-in page with ``page``'s cookies: signed in, or why not."""
    with navigation_answers(page) as answers:
        signed_in = driver.is_signed_in(page)
    if signed_in:
        return Replay(True, answered_at=answers.first_at)
    refusal = refusal_shown(page, profile, answers[-1] if answers else None)
    return Replay(False, refusal, answers.first_at)
