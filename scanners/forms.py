"""Submitting a portal's HTML form over plain HTTP, as a browser would, and timing the answer.

Used by AUTH_ENUM, which needs many timed samples: a browser would add noise and time. Each
submission opens the form's page (following its redirects, to an identity provider's form say)
in a fresh cookie jar, keeps every field the form carries
(hidden CSRF tokens included), fills in the caller's values, and posts it the way a browser
does (the page's cookies, Origin and Referer, the form content type) without following
redirects. The answer's status, redirect target, visible text, duration and any sign that the
portal throttled or blocked the request (``scanners.refusals``) are recorded. Network problems
come back as data (``FormAnswer.error``), never as exceptions.

The requests themselves go through ``scanners.http.HttpSession``, the scanners' one HTTP client:
it keeps the visitor's cookies, verifies TLS and bounds each request by the client's timeout and
the body size cap.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

from scanners.http import HttpAnswer, HttpSession, origin
from scanners.refusals import DEFAULT_BLOCK_PATTERNS, DEFAULT_THROTTLE_PATTERNS, Refusal, classify

# What a browser sends with a form; some frameworks refuse a POST without Origin or Referer.
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36 portal-audit",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en",
}
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

_INVISIBLE = frozenset({"script", "style", "template", "noscript", "head", "title"})


@dataclass(frozen=True)
class FormAnswer:
    """How the portal answered one submission (values the caller sent are not kept)."""

    status: int | None
    location: str | None = None
    text: str = field(default="", repr=False)
    elapsed: float = 0.0
    error: str | None = None
    # Names of the cookies the answer set: a successful sign-in sets a session cookie.
    cookies_set: tuple[str, ...] = ()
    # Set when the answer is a throttle or a CSRF/WAF page rather than the portal's decision.
    refusal: Refusal | None = None

    def signature(self) -> tuple[int | None, str, str]:
        """What tells two answers apart to a user: status, redirect target and text."""
        return self.status, self.location or "", self.text


@dataclass
class _Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self._current: _Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = _Form(values.get("action", ""), values.get("method", "get").lower())
            self.forms.append(self._current)
        elif tag in ("input", "textarea", "select", "button") and self._current is not None:
            name = values.get("name")
            kind = values.get("type", "").lower()
            if name and kind not in ("submit", "button", "reset", "image", "checkbox", "radio"):
                self._current.fields[name] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self._hidden_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE and self._hidden_depth:
            self._hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> str:
    parser = _TextParser()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def find_form(html: str, field_name: str) -> tuple[str, str, dict[str, str]] | None:
    """(action, method, fields) of the first form with a field called ``field_name``."""
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        if field_name in form.fields:
            return form.action, form.method, dict(form.fields)
    return None


class FormClient:
    """One visitor: an ``HttpSession`` (its cookies, the TLS context that verifies the portal's
    certificate, the per-request deadline) sending what a browser sends with a form."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        timeout: float,
        *,
        throttle_patterns: tuple[str, ...] = DEFAULT_THROTTLE_PATTERNS,
        block_patterns: tuple[str, ...] = DEFAULT_BLOCK_PATTERNS,
    ) -> None:
        self.timeout = timeout
        self.throttle_patterns = throttle_patterns
        self.block_patterns = block_patterns
        self._session = HttpSession(ssl_context, timeout, headers=BROWSER_HEADERS)

    def _post(self, url: str, data: bytes, referer: str) -> HttpAnswer:
        headers = {"Referer": referer, "Origin": origin(referer), "Content-Type": FORM_CONTENT_TYPE}
        return self._session.request(url, method="POST", body=data, headers=headers)

    def submit(
        self, page_url: str, field_name: str, values: Mapping[str, str], hide: tuple[str, ...]
    ) -> FormAnswer:
        """Open ``page_url`` (redirects followed), fill the form holding ``field_name`` with
        ``values``, post it to the form's action.

        Occurrences of the ``hide`` strings (the usernames sent) are replaced in the answer's
        text, so the same answer for two usernames reads the same.
        """
        # Followed as a browser follows a link: a sign-in URL that sends the visitor to an
        # identity provider ends on the provider's form, with its cookies kept.
        page = self._session.open_page(page_url)[-1]
        if page.status is None or page.error is not None:
            return FormAnswer(page.status, error=page.error)
        page_url = page.url
        status = page.status
        html = page.text
        refusal = self._refusal(status, page, visible_text(html))
        if refusal is not None:
            return FormAnswer(status, error=f"the form page: {refusal.reason}", refusal=refusal)
        form = find_form(html, field_name)
        if form is None:
            return FormAnswer(status, error=f"no form with a field {field_name!r}")
        action, method, fields = form
        if method != "post":
            return FormAnswer(status, error=f"the form holding {field_name!r} is not POSTed")
        fields.update(values)
        target = urljoin(page_url, action or page_url)
        if urlsplit(target).scheme != urlsplit(page_url).scheme:
            return FormAnswer(status, error="the form posts to another scheme")
        started = time.perf_counter()
        answer = self._post(target, urlencode(fields).encode(), page_url)
        elapsed = time.perf_counter() - started
        if answer.status is None:
            return FormAnswer(None, error=answer.error)
        text = visible_text(answer.text)
        for value in hide:
            if value:
                text = text.replace(value, "<username>")
        location = answer.get("location")
        if location:
            location = urlsplit(urljoin(target, location)).path
        cookies = tuple(sorted({v.partition("=")[0].strip() for v in answer.get_all("set-cookie")}))
        refusal = self._refusal(answer.status, answer, text)
        return FormAnswer(
            answer.status, location, text, elapsed, cookies_set=cookies, refusal=refusal
        )

    def _refusal(self, status: int, answer: HttpAnswer, text: str) -> Refusal | None:
        return classify(
            status,
            text,
            answer.get("retry-after"),
            throttle_patterns=self.throttle_patterns,
            block_patterns=self.block_patterns,
        )
