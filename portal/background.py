"""Slow probes that start together at the beginning of a run and wait alongside everything else.

Idle timeouts, absolute timeouts, lockout periods and link expiry need real waiting. Each such
control registers a probe with ``@slow_probe("CONTROL_ID")``; when the run starts, every probe of a
selected, in-scope scenario starts in its own thread with its own Playwright and browser (the
sync API is per thread). The scenarios themselves run last and collect the measurements with
``slow_probes.result("CONTROL_ID")``, so an audit lasts about as long as its longest wait, not
the sum of them. While a scenario waits, the console shows what it waits for and how long remains.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from portal.driver import PortalDriver
from portal.errors import Inconclusive
from portal.evidence import Redactor
from portal.profile import Profile

ProbeFunction = Callable[["ProbeContext"], Any]
_REGISTRY: dict[str, ProbeFunction] = {}


def slow_probe(control_id: str) -> Callable[[ProbeFunction], ProbeFunction]:
    """Register the background part of a slow control's check."""

    def register(function: ProbeFunction) -> ProbeFunction:
        _REGISTRY[control_id.upper()] = function
        return function

    return register


def registered() -> dict[str, ProbeFunction]:
    return dict(_REGISTRY)


@dataclass
class ProbeContext:
    """What a probe may use from its own thread."""

    control_id: str
    profile: Profile
    driver: PortalDriver
    redactor: Redactor
    browser: Browser
    stopping: threading.Event
    # What it waits for, or "measuring" while it is at work.
    status: str = "measuring"
    deadline: float | None = None
    _contexts: list[BrowserContext] = field(default_factory=list)

    def new_context(self, cookies: list[Any] | None = None) -> BrowserContext:
        context = self.browser.new_context()
        context.set_default_timeout(self.profile.timeouts.navigation_seconds * 1000)
        if cookies:
            context.add_cookies(cookies)
        self._contexts.append(context)
        return context

    def new_page(self, cookies: list[Any] | None = None) -> Page:
        return self.new_context(cookies).new_page()

    def remember_cookies(self, context: BrowserContext) -> None:
        for cookie in context.cookies():
            self.redactor.add(cookie.get("value"))

    def discard(self, context: BrowserContext) -> None:
        """Close a context now, e.g. so no page keeps its session alive while it idles."""
        self.remember_cookies(context)
        context.close()
        self._contexts.remove(context)

    def wait_until(self, moment: float, what: str) -> None:
        """Wait until ``moment`` (time.monotonic()), showing ``what`` as progress.

        Stopping the run interrupts the wait; the probe then ends inconclusive.
        """
        self.status = what
        self.deadline = moment
        remaining = moment - time.monotonic()
        try:
            if remaining > 0 and self.stopping.wait(remaining):
                raise Inconclusive(f"the run stopped while waiting: {what}")
        finally:
            self.status = "measuring"
            self.deadline = None

    def close(self) -> None:
        for context in self._contexts:
            self.remember_cookies(context)
            context.close()
        self._contexts.clear()


class SlowProbes:
    """The running probes of one audit."""

    def __init__(
        self,
        profile: Profile,
        driver: PortalDriver,
        redactor: Redactor,
        chromium: Any,
        *,
        on_done: Callable[[str, Future[Any]], None] | None = None,
    ):
        self.profile = profile
        self.on_done = on_done
        self.driver = driver
        self.redactor = redactor
        self.launch: Callable[[Any], Browser] = chromium
        self.stopping = threading.Event()
        self.futures: dict[str, Future[Any]] = {}
        self.contexts: dict[str, ProbeContext] = {}
        self.started_at: dict[str, float] = {}

    def start(self, control_ids: list[str]) -> None:
        for control_id in control_ids:
            function = _REGISTRY.get(control_id)
            if function is None or control_id in self.futures:
                continue
            future: Future[Any] = Future()
            if self.on_done is not None:
                future.add_done_callback(functools.partial(self._ended, control_id))
            self.futures[control_id] = future
            self.started_at[control_id] = time.monotonic()
            thread = threading.Thread(
                target=self._run,
                args=(control_id, function, future),
                name=f"slow-probe-{control_id}",
                daemon=True,
            )
            thread.start()

    def _ended(self, control_id: str, future: Future[Any]) -> None:
        if self.on_done is not None:
            self.on_done(control_id, future)

    def _run(self, control_id: str, function: ProbeFunction, future: Future[Any]) -> None:
        future.set_running_or_notify_cancel()
        try:
            with sync_playwright() as runtime:
                browser = self.launch(runtime)
                context = ProbeContext(
                    control_id, self.profile, self.driver, self.redactor, browser, self.stopping
                )
                self.contexts[control_id] = context
                try:
                    result = function(context)
                finally:
                    context.close()
                    browser.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the scenario that reports it
            future.set_exception(exc)
        else:
            future.set_result(result)

    def result(self, control_id: str, progress: Callable[[str], None], every: float = 10.0) -> Any:
        """The probe's measurement; blocks, reporting progress, until the probe ends."""
        future = self.futures.get(control_id)
        if future is None:
            raise Inconclusive(f"the slow probe for {control_id} was not started in this run")
        while True:
            try:
                return future.result(timeout=every)
            except TimeoutError:
                progress(self.describe(control_id))

    def wait_all(self, progress: Callable[[str], None]) -> None:
        """Wait until every probe has ended (whatever its outcome)."""
        self.wait_for(list(self.futures), progress)

    def wait_for(self, control_ids: Iterable[str], progress: Callable[[str], None]) -> None:
        """Wait until these probes have ended (whatever their outcome)."""
        for control_id in control_ids:
            if control_id not in self.futures:
                continue
            try:
                self.result(control_id, progress)
            except BaseException:  # noqa: BLE001 - each probe's own scenario reports it
                continue

    def running(self) -> list[str]:
        return [control_id for control_id, future in self.futures.items() if not future.done()]

    def say_while_quiet(
        self, show: Callable[[str], None], last_news: Callable[[], float], every: float = 10.0
    ) -> None:
        """While nothing else was heard for ``every`` seconds (``last_news``: a monotonic time),
        say what each running probe waits for: the progress a waiting scenario shows in a
        one-process run, for a parallel run whose waiting is done in its workers."""

        def watch() -> None:
            while not self.stopping.wait(every):
                running = self.running()
                if not running:
                    return
                if time.monotonic() - last_news() >= every:
                    for control_id in running:
                        show(self.describe(control_id))

        threading.Thread(target=watch, name="slow-probe-progress", daemon=True).start()

    def describe(self, control_id: str) -> str:
        context = self.contexts.get(control_id)
        elapsed = time.monotonic() - self.started_at.get(control_id, time.monotonic())
        if context is None:
            return f"{control_id}: starting ({elapsed:.0f} s)"
        if context.deadline is None:
            return f"{control_id}: {context.status} ({elapsed:.0f} s)"
        remaining = max(0.0, context.deadline - time.monotonic())
        return f"{control_id}: waiting for {context.status}, {remaining:.0f} s remaining"

    def stop(self) -> None:
        self.stopping.set()
