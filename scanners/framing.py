"""HDR_CSP's framing check: may a page of another origin show the sign-in page in a frame?

``evaluate_framing`` judges what a browser saw when it framed the sign-in page (and, as the
positive control, opened it top-level); ``framing_header`` names the response header that
forbids framing by other origins (CSP frame-ancestors, else X-Frame-Options), if any.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scanners.header_parsing import parse_csp_list
from scanners.result import Evaluation, Finding


@dataclass(frozen=True)
class FramingCheck:
    """The sign-in page framed by a page of another origin, and its positive control.

    ``framed``: the frame showed the sign-in form. ``top_level_loaded``: the same page opened
    top-level in the same browser showed it (the positive control). ``frame_status`` and
    ``blocked_by`` come from the framed request's answer: the header that forbids framing
    (``X-Frame-Options: DENY``, ``CSP frame-ancestors 'none'``), empty when none did.
    ``top_level_blocked_by`` is the same for the answer that showed the form top-level.
    """

    framed: bool
    top_level_loaded: bool
    frame_status: int | None
    blocked_by: str
    top_level_blocked_by: str = ""


def evaluate_framing(check: FramingCheck) -> Evaluation:
    applied = "the sign-in page refuses to be framed by another origin"
    measured = (
        f"framed by another origin: {'shown' if check.framed else 'not shown'} (HTTP "
        f"{check.frame_status if check.frame_status is not None else 'no answer'}"
        f"{', ' + check.blocked_by if check.blocked_by else ''}); top-level: "
        f"{'shown' if check.top_level_loaded else 'not shown'}"
        f"{' (' + check.top_level_blocked_by + ')' if check.top_level_blocked_by else ''}"
    )
    if check.framed:
        return Evaluation(
            "failed",
            "another site can show the sign-in page in a frame (clickjacking)",
            measured=measured,
            threshold=applied,
            findings=(Finding("csp.framable", "the sign-in form was shown inside a frame"),),
        )
    if not check.top_level_loaded:
        return Evaluation(
            "inconclusive",
            "the sign-in page did not show top-level either (positive control): an empty frame "
            "proves nothing about framing",
            measured=measured,
            threshold=applied,
        )
    if check.frame_status is None:
        return Evaluation(
            "inconclusive",
            "the frame stayed empty and the framed sign-in page never answered: an empty frame "
            "proves nothing about framing",
            measured=measured,
            threshold=applied,
        )
    if not 200 <= check.frame_status < 400:
        # Framed, the request ended on an error (an identity provider that keeps its sign-in
        # in a SameSite cookie a cross-site frame does not carry, say): a header on that answer
        # says nothing about the sign-in page. The page that showed the form top-level does:
        # a browser refuses to show it in another site's frame whatever path leads there.
        if check.top_level_blocked_by:
            return Evaluation(
                "passed",
                f"framing by another origin is refused ({check.top_level_blocked_by} on the "
                f"sign-in page shown top-level; framed, the request ended on HTTP "
                f"{check.frame_status})",
                measured=measured,
                threshold=applied,
            )
        return Evaluation(
            "inconclusive",
            f"the framed request answered HTTP {check.frame_status}, not the sign-in page, and "
            "the sign-in page shown top-level carries neither CSP frame-ancestors nor "
            "X-Frame-Options refusing other origins",
            measured=measured,
            threshold=applied,
        )
    if not check.blocked_by:
        return Evaluation(
            "inconclusive",
            "the frame stayed empty, but its answer carried neither CSP frame-ancestors nor "
            "X-Frame-Options refusing other origins: something else kept it empty",
            measured=measured,
            threshold=applied,
        )
    return Evaluation(
        "passed",
        f"framing by another origin is refused ({check.blocked_by})",
        measured=measured,
        threshold=applied,
    )


# Sources that let a page of any http(s) origin frame the page, the check's own origin included.
_ANY_ANCESTOR = frozenset({"*", "http:", "https:", "http://*", "https://*"})


def _refuses_other_origins(sources: Sequence[str]) -> bool:
    """Whether a frame-ancestors source list keeps out an unrelated origin (the check's own)."""
    lowered = [s.lower() for s in sources]
    if not lowered:
        return True  # an empty list matches nothing, like 'none'
    return not any(s in _ANY_ANCESTOR or s.endswith(".invalid") for s in lowered)


def framing_header(headers: Mapping[str, str]) -> str:
    """The response header that forbids framing by other origins, described, or empty.

    A frame-ancestors list that admits any origin (``*``, a bare scheme) forbids nothing, and
    where any enforced policy sets frame-ancestors, browsers ignore X-Frame-Options.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    policies = parse_csp_list(lowered.get("content-security-policy", ""))
    ancestors = [p["frame-ancestors"] for p in policies if "frame-ancestors" in p]
    for sources in ancestors:
        if _refuses_other_origins(sources):
            shown = " ".join(sources) or "'none'"
            return f"CSP frame-ancestors {shown}"
    option = lowered.get("x-frame-options", "").strip()
    if not ancestors and option.upper() in ("DENY", "SAMEORIGIN"):
        return f"X-Frame-Options: {option.upper()}"
    return ""
