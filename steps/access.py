"""Access control steps: a caregiver (proxy) sees only the patients it was granted."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from pytest_bdd import given, then, when

from portal.contexts import Contexts
from portal.driver import PortalDriver
from portal.errors import Inconclusive
from portal.evidence import Evidence
from portal.preflight import Preflight
from portal.profile import Profile
from portal.profile_sections import ProxyAccess
from portal.run import ControlRecord
from portal.session_checks import refusal_shown
from scanners.access import RecordVisit, evaluate_proxy_access
from steps.outcome import conclude


def _proxy_settings(profile: Profile) -> ProxyAccess:
    if profile.proxy_access is None:
        pytest.skip("the profile has no proxy_access section (granted and not-granted URLs)")
    if "proxy" not in profile.accounts:
        pytest.skip("the profile has no accounts.proxy (a caregiver account)")
    return profile.proxy_access


@given("the caregiver has signed in", target_fixture="caregiver_page")
def caregiver_signed_in(
    contexts: Contexts, driver: PortalDriver, profile: Profile, usable_portal: Preflight
) -> Page:
    _proxy_settings(profile)
    page = contexts.new_page()
    outcome = driver.sign_in(page, profile.accounts["proxy"])
    if not outcome.signed_in:
        raise Inconclusive(f"the caregiver account cannot sign in: {outcome.detail}")
    return page


@when(
    "the caregiver opens the granted patient's records and another patient's records",
    target_fixture="record_visits",
)
def open_records(caregiver_page: Page, profile: Profile, evidence: Evidence) -> list[RecordVisit]:
    settings = _proxy_settings(profile)
    page = caregiver_page
    wanted = [(url, True, False) for url in settings.granted_urls]
    wanted += [(url, False, False) for url in settings.not_granted_urls]
    # Positive control after the refusals: a granted record still loads, so the session was
    # not signed out, expired or throttled while the other patient's records were tried.
    wanted += [(url, True, True) for url in settings.granted_urls[:1]]
    visits = []
    for url, granted, reopened in wanted:
        try:
            response = page.goto(profile.url(url), wait_until="load")
        except Exception as exc:  # noqa: BLE001 - a page that cannot be opened is inconclusive
            raise Inconclusive(f"{url} could not be opened: {type(exc).__name__}") from None
        patient_data = page.locator(settings.patient_data).first.is_visible()
        visits.append(
            RecordVisit(
                url=url,
                granted=granted,
                status=response.status if response else None,
                final_url=page.url,
                patient_data=patient_data,
                sign_in_form=page.locator(profile.sign_in.username).first.is_visible(),
                refusal="" if patient_data else refusal_shown(page, profile, response),
                reopened=reopened,
            )
        )
    evidence.json("record URLs opened as the caregiver", [vars(v) for v in visits])
    return visits


@then("the granted records load and every other patient's record is refused")
def only_granted(
    record_visits: list[RecordVisit], control_record: ControlRecord, evidence: Evidence
) -> None:
    conclude(evaluate_proxy_access(record_visits), control_record, evidence, "proxy findings")
