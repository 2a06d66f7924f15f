"""The run's browser and each scenario's fresh browser contexts.

One Chromium per run, launched with the portal's private CA honoured; every scenario gets fresh
contexts whose cookie values are registered as secrets as they arrive, and whose traces and
screenshots are kept as evidence only when the scenario did not pass.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Response
from playwright.sync_api import Error as PlaywrightError

from portal.browser import QUIET_ARGS, TrustError, find_chromium, trusting_home, verify_portal_chain
from portal.browser_errors import PageWatch
from portal.errors import Inconclusive
from portal.evidence import Evidence, Redactor
from portal.profile import Profile


def launch_browser(runtime: Playwright, profile: Profile) -> Browser:
    """Chromium trusting the portal's private CA, if the profile names one (see
    portal.browser.trusting_home); its home directory goes when the browser closes."""
    if not (profile.tls.ca_file and profile.base_url.startswith("https:")):
        return runtime.chromium.launch(executable_path=find_chromium(), args=QUIET_ARGS)
    try:
        verify_portal_chain(
            profile.tls_host,
            profile.tls_port,
            server_name=profile.tls.server_name,
            ca_file=profile.tls.ca_file,
            timeout=profile.timeouts.reachability_seconds,
        )
        home = trusting_home(profile.tls.ca_file)
    except TrustError as exc:
        raise Inconclusive(f"cannot trust the portal's certificate: {exc}") from None
    try:
        browser = runtime.chromium.launch(
            executable_path=find_chromium(), args=QUIET_ARGS, env={**os.environ, "HOME": str(home)}
        )
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    browser.on("disconnected", lambda _: shutil.rmtree(home, ignore_errors=True))
    return browser


class Contexts:
    """Fresh browser contexts for one scenario, with traces kept when the scenario fails."""

    def __init__(self, browser: Browser, profile: Profile, redactor: Redactor, work_dir: Path):
        self.browser = browser
        self.profile = profile
        self.redactor = redactor
        self.work_dir = work_dir
        self.opened: list[BrowserContext] = []
        self.pages = PageWatch()

    def new(self, cookies: list[Any] | None = None, har: Path | None = None) -> BrowserContext:
        """A fresh context; ``har`` records every request (without bodies) to that file."""
        if har is not None:
            har.parent.mkdir(parents=True, exist_ok=True)
            context = self.browser.new_context(record_har_path=har, record_har_content="omit")
        else:
            context = self.browser.new_context()
        # Every cookie value any response sets is a secret, including ones replaced or deleted
        # before the scenario ends, so they are registered as they arrive.
        context.on("response", self._register_set_cookies)
        self.pages.watch(context)
        context.set_default_timeout(self.profile.timeouts.navigation_seconds * 1000)
        # DOM snapshots of every action, without the screencast: its frames were about 7 %
        # of an audit's CPU (docs/benchmarks.md), and a failed scenario gets a screenshot anyway.
        context.tracing.start(screenshots=False, snapshots=True)
        if cookies:
            context.add_cookies(cookies)
        self.opened.append(context)
        return context

    def _register_set_cookies(self, response: Response) -> None:
        try:
            headers = response.headers_array()
        except PlaywrightError:
            return
        for header in headers:
            if header["name"].lower() == "set-cookie":
                for line in header["value"].split("\n"):
                    self.redactor.add(line.partition(";")[0].partition("=")[2].strip())

    def new_page(self, cookies: list[Any] | None = None) -> Page:
        return self.new(cookies).new_page()

    def finish(self, context: BrowserContext) -> None:
        """Close one context now (its HAR is written on close); no trace is kept for it."""
        for cookie in context.cookies():
            self.redactor.add(cookie.get("value"))
        context.tracing.stop()
        context.close()
        self.opened.remove(context)

    def close(self, keep_evidence: Evidence | None) -> None:
        for index, context in enumerate(self.opened, start=1):
            for cookie in context.cookies():
                self.redactor.add(cookie.get("value"))
            if keep_evidence is not None:
                self._keep(context, index, keep_evidence)
            else:
                context.tracing.stop()
            context.close()
        self.opened.clear()

    def _keep(self, context: BrowserContext, index: int, evidence: Evidence) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for number, page in enumerate(context.pages, start=1):
            shot = self.work_dir / f"context{index}-page{number}.png"
            try:
                page.screenshot(path=str(shot), mask=[page.locator("input[type=password]")])
            except Exception:  # noqa: BLE001 - a page that cannot be captured leaves no screenshot
                continue
            evidence.file(shot, f"screenshot (browser {index}, page {number})", "png")
        trace = self.work_dir / f"context{index}-trace.zip"
        context.tracing.stop(path=str(trace))
        evidence.file(trace, f"Playwright trace (browser {index})", "trace")
