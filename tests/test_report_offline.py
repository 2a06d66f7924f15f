"""The HTML report makes no network request: proved by opening it in Chromium with every
non-file request recorded and aborted, and by the same harness catching the request in
Allure's raw output."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Request, Route, sync_playwright

from portal.audit import render_allure
from portal.browser import QUIET_ARGS, find_chromium
from portal.report_files import (
    ReportNetworkError,
    external_resources,
    make_report_offline,
)
from tests.test_profile import ROOT

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


# -- 5. the HTML report makes no network request ---------------------------------------------

EVIDENCE_TEXT = "evidence body " + uuid.uuid4().hex


def _synthetic_results(results: Path) -> None:
    """Two scenario results and a text attachment, as allure-pytest-bdd writes them."""
    results.mkdir(parents=True)
    now = int(time.time() * 1000)
    attachment = f"{uuid.uuid4()}-attachment.txt"
    (results / attachment).write_text(EVIDENCE_TEXT)
    passed = {
        "uuid": str(uuid.uuid4()),
        "historyId": "h1",
        "testCaseId": "t1",
        "fullName": "features/session/logout.feature:A signed-out session cannot be replayed",
        "name": "A signed-out session cannot be replayed",
        "status": "passed",
        "stage": "finished",
        "start": now - 2000,
        "stop": now,
        "labels": [
            {"name": "feature", "value": "Session"},
            {"name": "tag", "value": "sess_logout"},
        ],
        "links": [{"type": "link", "name": "ASVS", "url": "https://github.com/OWASP/ASVS"}],
        "steps": [
            {
                "name": "Given the patient has signed in",
                "status": "passed",
                "start": now - 2000,
                "stop": now - 1000,
                "attachments": [
                    {"name": "session evidence", "source": attachment, "type": "text/plain"}
                ],
            }
        ],
    }
    failed = {
        **passed,
        "uuid": str(uuid.uuid4()),
        "historyId": "h2",
        "testCaseId": "t2",
        "name": "Session cookies are Secure and HttpOnly",
        "status": "failed",
        "statusDetails": {"message": "cookie sid lacks Secure"},
        "steps": [],
    }
    for result in (passed, failed):
        (results / f"{result['uuid']}-result.json").write_text(json.dumps(result))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with sync_playwright() as runtime:
        browser = runtime.chromium.launch(executable_path=find_chromium(), args=QUIET_ARGS)
        yield browser
        browser.close()


def _open_offline(browser: Any, index: Path) -> tuple[list[str], Any]:
    """Open the report from disk with every non-file request recorded and aborted; returns the
    requests attempted and the page (after the report rendered and showed its evidence)."""
    attempted: list[str] = []
    context = browser.new_context()

    def block(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    def seen(request: Request) -> None:
        if not request.url.startswith(("file://", "data:", "blob:")):
            attempted.append(request.url)

    context.route("**/*", block)
    context.on("request", seen)
    page = context.new_page()
    page.goto(index.as_uri(), wait_until="load")
    page.get_by_text("A signed-out session cannot be replayed").first.wait_for(timeout=15000)
    # Open the scenario, its step and the attachment, so lazily loaded parts run too.
    page.get_by_text("A signed-out session cannot be replayed").first.click()
    page.get_by_text("Given the patient has signed in").first.click()
    page.get_by_text("session evidence").first.click()
    page.get_by_text(EVIDENCE_TEXT).first.wait_for(timeout=10000)
    page.wait_for_timeout(1000)  # an async analytics loader would have fired by now
    return sorted(set(attempted)), context


def test_the_html_report_makes_no_network_request(tmp_path: Path, chromium: Any) -> None:
    run_dir = tmp_path / "run"
    _synthetic_results(run_dir / "allure-results")
    assert render_allure(run_dir, "portal-audit: synthetic") is None
    index = run_dir / "allure-report" / "index.html"
    attempted, context = _open_offline(chromium, index)
    context.close()
    assert attempted == []


def test_the_unprocessed_report_would_call_google_and_the_harness_sees_it(
    tmp_path: Path, chromium: Any
) -> None:
    """The check above can fail: Allure's own output makes the analytics request."""
    results = tmp_path / "allure-results"
    _synthetic_results(results)
    allure = ROOT / "node_modules" / ".bin" / "allure"
    subprocess.run(
        [str(allure), "awesome", str(results), "--output", str(tmp_path / "raw"), "--single-file"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
        timeout=120,
    )
    attempted, context = _open_offline(chromium, tmp_path / "raw" / "index.html")
    context.close()
    assert any("googletagmanager.com" in url for url in attempted), attempted


def test_an_unexpected_external_resource_fails_loudly(tmp_path: Path) -> None:
    index = tmp_path / "index.html"
    index.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<script async src="https://www.googletagmanager.com/gtag/js?id=G-X"></script>'
        "<script>window.dataLayer = []; function gtag(){dataLayer.push(arguments);}</script>"
        '</head><body><svg xmlns="http://www.w3.org/2000/svg"></svg></body></html>'
    )
    removed = make_report_offline(index)
    assert len(removed) == 2
    assert external_resources(index.read_text()) == []
    index.write_text(
        index.read_text().replace("</body>", '<img src="https://tracker.example/p.gif"></body>')
    )
    with pytest.raises(ReportNetworkError, match="tracker.example"):
        make_report_offline(index)
    assert not index.exists()  # nobody opens the unsafe file by mistake
