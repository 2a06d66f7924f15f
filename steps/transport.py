"""Transport steps: security headers over HTTPS."""

from __future__ import annotations

from pytest_bdd import then, when

from portal.evidence import Evidence
from portal.plugin import ControlRecord
from portal.profile import Profile
from scanners.headers import evaluate_hsts, load_header_policy
from scanners.http import HttpProbe, fetch, make_ssl_context
from steps.outcome import conclude


@when(
    "the sign-in page, a protected page, an error page and static files are fetched",
    target_fixture="header_probes",
)
def fetch_response_kinds(profile: Profile, evidence: Evidence) -> list[HttpProbe]:
    context = make_ssl_context(profile.tls.ca_file)
    wanted = [(profile.sign_in.url, "page"), (profile.protected_pages[0].url, "redirect")]
    wanted += [(url, "page") for url in profile.headers.extra_pages]
    wanted.append((profile.headers.error_page, "error"))
    wanted += [(url, "static") for url in profile.headers.static_files]
    probes = [
        fetch(
            profile.url(url),
            ssl_context=context,
            timeout=profile.timeouts.reachability_seconds,
            kind=kind,
        )
        for url, kind in wanted
    ]
    lines = []
    for probe in probes:
        hsts = probe.get("strict-transport-security") or probe.error or "none"
        lines.append(f"{probe.kind:8} {probe.status or '-'} {probe.url}  HSTS: {hsts}")
    evidence.text("responses fetched", "\n".join(lines))
    return probes


@then("every response carries HSTS with a max-age of at least the policy minimum")
def hsts_everywhere(
    header_probes: list[HttpProbe],
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    evaluation = evaluate_hsts(
        header_probes,
        load_header_policy(),
        min_max_age=int(profile.threshold("min_max_age_seconds")),
    )
    conclude(evaluation, control_record, evidence, "HSTS findings")
