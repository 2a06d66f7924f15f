"""AUTH_HTTPS's verdicts: the sign-in page is only served over HTTPS, and the password is
only ever sent over HTTPS.

Pure evaluation of what was already observed: the answer to the sign-in URL requested over plain
HTTP (an ``HttpProbe`` from ``scanners.http``) and the URLs of the requests that carried the
password during a browser sign-in.
"""

from __future__ import annotations

from collections.abc import Sequence

from scanners.http import HttpProbe
from scanners.result import Evaluation, Finding, verdict

REDIRECTS = frozenset({301, 302, 303, 307, 308})


def evaluate_https_redirect(probe: HttpProbe) -> Evaluation:
    """AUTH_HTTPS: the sign-in page requested over plain HTTP redirects to https (or plain HTTP
    is not served at all: the connection is refused).

    Finding key: ``https.plain_http_served`` (plain HTTP answered without a redirect to an
    https URL). A probe that failed any other way is inconclusive.
    """
    applied = "plain HTTP redirects to https or is not served (AUTH_HTTPS)"
    if probe.error == "connection refused":
        return Evaluation(
            "passed",
            "plain HTTP is not served at all",
            measured="plain HTTP is not served at all (connection refused)",
            threshold=applied,
        )
    if probe.error:
        return Evaluation(
            "inconclusive", f"plain HTTP could not be probed: {probe.error}", threshold=applied
        )
    location = probe.location or ""
    findings = []
    if probe.status not in REDIRECTS or not location.startswith("https://"):
        findings.append(
            Finding(
                "https.plain_http_served",
                f"plain HTTP answered {probe.status} instead of redirecting to https",
                where=probe.url,
            )
        )
    return verdict(
        findings,
        measured=f"plain HTTP answered {probe.status} -> {location or 'no redirect'}",
        threshold=applied,
        passed_reason="plain HTTP redirects to https",
        failed_reason=f"plain HTTP answered {probe.status} instead of redirecting to https",
    )


def evaluate_credentials_transport(carrying: Sequence[str]) -> Evaluation:
    """AUTH_HTTPS: every request that carried the password during sign-in went over https.

    ``carrying`` are the URLs (without query) of the requests whose body held the password.
    Finding key, one per plain-HTTP URL: ``https.password_over_plain_http``. No request seen
    carrying the password is inconclusive: the sign-in was not observed.
    """
    applied = "the password is submitted only over https (AUTH_HTTPS)"
    if not carrying:
        return Evaluation(
            "inconclusive",
            "no request carrying the password was seen during sign-in",
            threshold=applied,
        )
    plain = [url for url in carrying if not url.startswith("https://")]
    return verdict(
        [
            Finding(
                "https.password_over_plain_http",
                "the password was sent over plain HTTP",
                where=url,
            )
            for url in plain
        ],
        measured=f"requests carrying the password: {len(carrying)}, over plain HTTP: {len(plain)}",
        threshold=applied,
        passed_reason="the sign-in form is reached and submitted only over HTTPS",
        failed_reason=f"the password was sent over plain HTTP to {', '.join(plain)}",
    )
