"""The HTML report makes no network request: proved by opening it in Chromium with every
non-file request recorded and aborted, and by the same harness catching the request in
Allure's raw output."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def _recording_context(browser: Any) -> tuple[list[str], Any]:
    """A browser context in which every non-file request is recorded and aborted."""
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
    return attempted, context


def _our_report(tmp_path: Path) -> Path:
    """The synthetic results rendered as a run renders its report (portal.audit)."""
    run_dir = tmp_path / "run"
    _synthetic_results(run_dir / "allure-results")
    assert render_allure(run_dir, "portal-audit: synthetic") is None
    return run_dir / "allure-report" / "index.html"


def test_the_html_report_makes_no_network_request(tmp_path: Path, chromium: Any) -> None:
    index = _our_report(tmp_path)
    attempted, context = _recording_context(chromium)
    page = context.new_page()
    page.goto(index.as_uri(), wait_until="load")
    # Open the scenario, its step and the attachment, so lazily loaded parts run too.
    page.get_by_text("A signed-out session cannot be replayed").first.click(timeout=30000)
    page.get_by_text("Given the patient has signed in").first.click()
    page.get_by_text("session evidence").first.click()
    page.get_by_text(EVIDENCE_TEXT).first.wait_for(timeout=30000)
    page.wait_for_load_state("networkidle")  # an async loader's request would have been made
    context.close()
    assert attempted == []


def _allure_output(tmp_path: Path) -> Path:
    """Allure's own single-file report of the synthetic results, as Allure writes it."""
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
    return tmp_path / "raw" / "index.html"


def test_the_unprocessed_report_would_call_google_and_the_harness_sees_it(
    tmp_path: Path, chromium: Any
) -> None:
    """The check above can fail: Allure's own output makes the analytics request (its loader is
    an async script, which the load event waits for)."""
    index = _allure_output(tmp_path)
    attempted, context = _recording_context(chromium)
    context.new_page().goto(index.as_uri(), wait_until="load")
    context.close()
    assert any("googletagmanager.com" in url for url in attempted), attempted


# -- the report reads its embedded data whatever the browser parses first ---------------------


class _HeldBackPage:
    """Serves one HTML page on 127.0.0.1 in two parts: everything before the embedded data
    block at once, the rest only when released, as a slow parser or a busy machine would
    deliver it to the report's application."""

    def __init__(self, page: str) -> None:
        cut = page.rfind("<script", 0, page.index("function d(name, value)"))
        assert cut > 0, "the report has no embedded data block"
        self.head, self.rest = page[:cut].encode(), page[cut:].encode()
        self.released = threading.Event()
        self.fetched: list[str] = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/index.html":
                    served.fetched.append(self.path)
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(served.head) + len(served.rest)))
                self.end_headers()
                self.wfile.write(served.head)
                self.wfile.flush()
                served.released.wait(timeout=60)
                self.wfile.write(served.rest)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/index.html"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _HeldBackPage:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _load_with_data_held_back(browser: Any, page_text: str) -> tuple[bool, list[str]]:
    """Whether the report showed its results when its data block arrived only after the
    application had started; and the files it tried to fetch instead."""
    with _HeldBackPage(page_text) as served:
        context = browser.new_context()
        page = context.new_page()
        failed_fetches: list[str] = []
        page.on(
            "console",
            lambda message: (
                failed_fetches.append(message.text) if "Failed to fetch" in message.text else None
            ),
        )
        page.goto(served.url, wait_until="commit")
        # The application has started and drawn its frame: it has asked for its data by now.
        page.locator("#app > *").first.wait_for(state="attached", timeout=30000)
        served.released.set()
        results = page.get_by_text("A signed-out session cannot be replayed").first
        deadline = time.monotonic() + 30
        shown = False
        while not (served.fetched or failed_fetches) and time.monotonic() < deadline:
            if results.is_visible():
                shown = True
                break
            page.wait_for_timeout(100)
        context.close()
        return shown, served.fetched + failed_fetches


def test_the_report_shows_its_results_when_its_data_arrives_after_the_application(
    tmp_path: Path, chromium: Any
) -> None:
    page_text = _our_report(tmp_path).read_text(encoding="utf-8")
    shown, fetched = _load_with_data_held_back(chromium, page_text)
    assert shown and fetched == [], fetched


def test_allure_s_own_output_loses_that_race_and_the_harness_sees_it(
    tmp_path: Path, chromium: Any
) -> None:
    """The check above can fail: Allure's own output, held back the same way, fetches files
    that a single-file report does not have and shows no results."""
    page_text = _allure_output(tmp_path).read_text(encoding="utf-8")
    shown, fetched = _load_with_data_held_back(chromium, page_text)
    assert not shown and any("widgets/" in path for path in fetched), fetched


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
