"""Browser failures told in the audit's words: what was being done, where, and what the portal said.

A raw Playwright message ("Locator.click: Timeout 30000ms exceeded.") sends a user hunting for a
wrong selector when the portal was in fact throttling them. ``PageWatch`` remembers the last
page the portal served in a browser context (URL, HTTP status, Retry-After);
``describe_browser_error`` turns a Playwright error into one line naming the action, the
selector, the page, the last status, and a throttle or block when that status or page shows one.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from playwright.sync_api import BrowserContext, Page, Response
from playwright.sync_api import Error as PlaywrightError

from scanners.refusals import Refusal, classify

_ACTION = re.compile(r"^(?P<api>[A-Za-z]+)\.(?P<action>[A-Za-z_]+): (?P<rest>.*)$")
_TIMEOUT = re.compile(r"Timeout (?P<ms>\d+)ms exceeded")
_SELECTOR = re.compile(r'waiting for (?:get_by_\w+\(|locator\()"?(?P<selector>.*?)"?\)')
_NET_ERROR = re.compile(r"net::(?P<code>ERR_[A-Z_]+)")

_VERBS = {
    "click": "click",
    "fill": "fill in",
    "wait_for": "see",
    "inner_text": "read",
    "input_value": "read",
    "check": "tick",
    "press": "type into",
    "screenshot": "capture",
    "select_option": "choose from",
}


@dataclass(frozen=True)
class ServedPage:
    """The last document the portal served in a context (never its body or cookies)."""

    url: str
    status: int
    retry_after: str | None = None

    def refusal(self) -> Refusal | None:
        return classify(self.status, "", self.retry_after)

    def describe(self) -> str:
        return f"last page {self.url} answered HTTP {self.status}"


class PageWatch:
    """Keeps the last main-frame document response of each watched context."""

    def __init__(self) -> None:
        self._last: dict[int, ServedPage] = {}
        self._lock = threading.Lock()

    def watch(self, context: BrowserContext) -> None:
        context.on("response", lambda response: self._seen(id(context), response))

    def _seen(self, key: int, response: Response) -> None:
        try:
            request = response.request
            if request.resource_type != "document" or response.frame.parent_frame is not None:
                return
            served = ServedPage(
                response.url.split("?", 1)[0], response.status, response.headers.get("retry-after")
            )
        except PlaywrightError:
            return
        with self._lock:
            self._last[key] = served

    def last(self, page_or_context: Page | BrowserContext) -> ServedPage | None:
        context = page_or_context.context if isinstance(page_or_context, Page) else page_or_context
        with self._lock:
            return self._last.get(id(context))

    def latest(self) -> ServedPage | None:
        """The last page served in any watched context."""
        with self._lock:
            return next(reversed(self._last.values()), None)


def describe_browser_error(
    exc: BaseException, *, doing: str, url: str | None = None, served: ServedPage | None = None
) -> str:
    """One line for a failed browser action; never the raw Playwright text."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    match = _ACTION.match(first)
    action = match.group("action") if match else ""
    selector_match = _SELECTOR.search(text)
    selector = selector_match.group("selector").replace('\\"', '"') if selector_match else None
    timeout = _TIMEOUT.search(first)
    net = _NET_ERROR.search(first)
    if timeout and selector:
        verb = _VERBS.get(action, action.replace("_", " ") or "use")
        seconds = int(timeout.group("ms")) / 1000
        problem = f"could not {verb} {selector!r} within {seconds:g} s"
    elif timeout:
        problem = f"the page did not answer within {int(timeout.group('ms')) / 1000:g} s"
    elif net:
        problem = f"the page could not be loaded ({net.group('code')})"
    elif "Target page, context or browser has been closed" in text:
        problem = "the browser page was closed"
    else:
        problem = "the browser action failed"
    where = [f"at {url}"] if url else []
    if served is not None:
        where.append(served.describe())
        refusal = served.refusal()
        if refusal is not None:
            problem = f"{refusal.reason}; {problem}"
    return f"{doing}: {problem}" + (f" ({'; '.join(where)})" if where else "")
