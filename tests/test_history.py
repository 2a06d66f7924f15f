"""The run-to-run comparison: what counts as a moved measured value."""

from __future__ import annotations

from typing import Any

from portal.history import change_lines, changes_between


def _summary(target: str, **measured: str) -> dict[str, Any]:
    return {
        "target": target,
        "started": "2026-12-01T10:00:00Z",
        "verdict": "compliant",
        "controls": {
            control: {"status": "passed", "measured": value} for control, value in measured.items()
        },
    }


def test_the_same_portal_on_another_port_and_other_timings_is_no_change() -> None:
    """The bundled reference portal listens on a new port each run; timings always move."""
    before = _summary(
        "https://127.0.0.1:43117/",
        SESS_LOGOUT="before sign-out https://127.0.0.1:43117/dashboard: patient data",
        AUTH_ENUM="median 140 ms apart",
    )
    after = _summary(
        "https://127.0.0.1:40021/",
        SESS_LOGOUT="before sign-out https://127.0.0.1:40021/dashboard: patient data",
        AUTH_ENUM="median 152 ms apart",
    )
    changes = changes_between(before, after, "previous")
    assert changes["measured_moved"] == []
    assert change_lines(changes) == []


def test_a_measured_value_that_really_moved_is_reported() -> None:
    before = _summary(
        "https://127.0.0.1:43117/",
        SESS_LOGOUT="before sign-out https://127.0.0.1:43117/dashboard: patient data",
        HDR_HSTS="max-age=63072000 on 4/4 HTTPS responses",
    )
    after = _summary(
        "https://127.0.0.1:40021/",
        SESS_LOGOUT="before sign-out https://127.0.0.1:40021/records: patient data",
        HDR_HSTS="max-age=31536000 on 4/4 HTTPS responses",
    )
    moved = changes_between(before, after, "previous")["measured_moved"]
    assert [c["control"] for c in moved] == ["SESS_LOGOUT", "HDR_HSTS"]
    # Reported as measured, each with its own run's address.
    assert "40021/records" in moved[0]["measured"] and "43117/dashboard" in moved[0]["measured_was"]
