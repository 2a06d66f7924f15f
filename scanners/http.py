"""HTTP requests for the scanners: the one place that opens connections.

Every raw request a scanner makes goes through this module. ``fetch`` sends one request (and
its redirects, if asked) and records the response head as an ``HttpProbe`` for the header checks
(``scanners.headers`` evaluates it). ``HttpSession`` is one visitor of one portal for form
submissions (``scanners.forms``): it keeps the portal's cookies between requests and reads each
answer's body.

Both verify the certificate against the system store plus the profile's CA file, bound each
call by one whole-request deadline (connecting, the TLS handshake, every read and write: a server
that trickles bytes cannot hold a request past it), cap a body at ``MAX_BODY_BYTES``, and follow
no redirect unless asked. A request that could not complete (refused, timed out, certificate not
trusted, body too large) comes back as data with ``error`` set: it never raises for a network
problem.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

USER_AGENT = "portal-audit/0.1"
MASK = "[REDACTED]"
MAX_REDIRECTS = 10
# A portal that streams forever is an error, not a hang; no page the suite reads is this large.
MAX_BODY_BYTES = 5 * 1024 * 1024
_READ_SIZE = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CREDENTIALS = frozenset({"cookie", "authorization", "proxy-authorization"})

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class HttpProbe:
    """One response head (or the reason there is none) for ``url``.

    ``kind`` is the caller's label for what was probed ("page", "error", "static", "redirect"...),
    so findings can say which sort of response lacked a header. ``headers`` keeps every field in
    the order received, duplicates included, because a duplicated security header is itself
    something to report; Set-Cookie values are replaced with ``[REDACTED]`` (name and attributes
    kept) since a probe may be attached as evidence. ``redirects`` lists the URLs answered with a
    redirect before ``url`` when redirects were followed.
    """

    url: str
    kind: str
    status: int | None
    headers: Headers = ()
    location: str | None = None
    error: str | None = None
    elapsed: float = 0.0
    redirects: tuple[str, ...] = ()

    @property
    def reachable(self) -> bool:
        return self.error is None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower()

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return next(iter(_values(self.headers, name)), None)

    def get_all(self, name: str) -> tuple[str, ...]:
        """Every value of header ``name`` (case-insensitive), in the order received."""
        return _values(self.headers, name)


@dataclass(frozen=True)
class HttpAnswer:
    """A session's answer to one request: status, head and body, or the reason there is none.

    Unlike an ``HttpProbe`` it keeps Set-Cookie values as sent (the session's cookies are
    taken from them), so it is working data, never evidence; headers and body stay out of its
    repr.
    """

    url: str
    status: int | None
    headers: Headers = field(default=(), repr=False)
    body: bytes = field(default=b"", repr=False)
    error: str | None = None
    elapsed: float = 0.0

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return next(iter(_values(self.headers, name)), None)

    def get_all(self, name: str) -> tuple[str, ...]:
        """Every value of header ``name`` (case-insensitive), in the order received."""
        return _values(self.headers, name)


def make_ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """A context that verifies the chain and host name against the system store plus ``ca_file``.

    There is deliberately no way to turn verification off: an untrusted certificate is a finding
    (the probe's ``error``), not something to step around. A missing ``ca_file`` raises, since
    that is a configuration mistake rather than a property of the portal.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


def fetch(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None,
    timeout: float = 10.0,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    follow_redirects: bool = False,
    kind: str = "page",
) -> HttpProbe:
    """Send one request (plus redirects, if asked) and record the response head.

    ``timeout`` bounds the whole call, redirects included, not each socket operation.
    ``ssl_context`` None means ``make_ssl_context(None)``. Raises ValueError only for a URL
    that is not http(s) with a host, which is a usage error rather than a network problem.
    """
    _check_url(url)
    started = time.monotonic()
    deadline = started + timeout
    context = ssl_context if ssl_context is not None else make_ssl_context(None)
    request_headers = _request_headers(headers)
    current, current_method = url, method
    visited: list[str] = []

    while True:
        try:
            status, raw_headers, _body = _exchange(
                current, current_method, request_headers, context, deadline
            )
        except (OSError, http.client.HTTPException) as exc:
            return HttpProbe(
                url=current,
                kind=kind,
                status=None,
                error=describe_error(exc),
                elapsed=time.monotonic() - started,
                redirects=tuple(visited),
            )
        response_headers = tuple(
            (name, redact_set_cookie(value) if name.lower() == "set-cookie" else value)
            for name, value in raw_headers
        )
        location = next(iter(_values(response_headers, "location")), None)
        if follow_redirects and status in _REDIRECT_STATUSES and location:
            target = urljoin(current, location)
            problem = None
            if len(visited) >= MAX_REDIRECTS:
                problem = f"more than {MAX_REDIRECTS} redirects"
            elif not _is_http_url(target):
                problem = f"redirect to an unsupported URL: {target}"
            if problem is None:
                if _origin_key(target) != _origin_key(current):
                    # Credentials the caller gave for one origin must not follow it elsewhere
                    # (nor over a downgrade to plain http).
                    request_headers = {
                        k: v for k, v in request_headers.items() if k.lower() not in _CREDENTIALS
                    }
                visited.append(current)
                current = target
                if status == 303 or (status in (301, 302) and current_method == "POST"):
                    current_method = "GET"
                continue
            return HttpProbe(
                url=current,
                kind=kind,
                status=status,
                headers=response_headers,
                location=location,
                error=problem,
                elapsed=time.monotonic() - started,
                redirects=tuple(visited),
            )
        return HttpProbe(
            url=current,
            kind=kind,
            status=status,
            headers=response_headers,
            location=location,
            elapsed=time.monotonic() - started,
            redirects=tuple(visited),
        )


class HttpSession:
    """One visitor of one portal: the portal's cookies kept between requests, as a browser does.

    ``headers`` are sent with every request (a caller's per-request headers override them).
    Cookies are kept and sent back by ``http.cookiejar`` with a browser's rules (domain, path,
    Secure, expiry), from every answer, redirects and errors included. Redirects are never
    followed: a redirect is the answer, its Location the caller's to read. ``timeout`` bounds
    each request as a whole, body included.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None,
        timeout: float,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.timeout = timeout
        self._context = ssl_context if ssl_context is not None else make_ssl_context(None)
        self._headers = _request_headers(headers)
        import http.cookiejar  # only a session keeps cookies

        self._cookies = http.cookiejar.CookieJar()

    def request(
        self,
        url: str,
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        """Send one request with the session's cookies and read the whole answer.

        Raises ValueError only for a URL that is not http(s) with a host (a usage error).
        """
        _check_url(url)
        started = time.monotonic()
        deadline = started + self.timeout
        outgoing = _CookieRequest(url, _request_headers(self._headers, headers))
        # http.cookiejar reads requests and answers through urllib's interface, which these
        # small adapters provide; its type hints name the urllib classes.
        self._cookies.add_cookie_header(cast(Any, outgoing))
        try:
            status, response_headers, content = _exchange(
                url, method, outgoing.headers, self._context, deadline, body=body, read_body=True
            )
        except (OSError, http.client.HTTPException) as exc:
            return HttpAnswer(
                url, None, error=describe_error(exc), elapsed=time.monotonic() - started
            )
        self._cookies.extract_cookies(
            cast(Any, _CookieAnswer(response_headers)), cast(Any, outgoing)
        )
        return HttpAnswer(
            url, status, response_headers, content, elapsed=time.monotonic() - started
        )

    def open_page(self, url: str) -> tuple[HttpAnswer, ...]:
        """GET ``url`` and follow its redirects as a browser opening a link does, cookies kept.

        The chain of answers, the page last: a sign-in URL that sends the visitor on to an
        identity provider's form ends on that form, with the provider's cookies set on the way.
        A chain that does not end (too many redirects, a Location that is not http(s)) ends on
        its last redirect with ``error`` set. Each request has the session's whole timeout.
        """
        chain = [self.request(url)]
        while True:
            last = chain[-1]
            location = last.get("location")
            if last.status not in _REDIRECT_STATUSES or not location:
                return tuple(chain)
            target = urljoin(last.url, location)
            problem = None
            if len(chain) > MAX_REDIRECTS:
                problem = f"more than {MAX_REDIRECTS} redirects"
            elif not _is_http_url(target):
                problem = f"redirect to an unsupported URL: {without_query(target)}"
            if problem is not None:
                chain[-1] = replace(last, error=problem)
                return tuple(chain)
            chain.append(self.request(target))


def probe_of(answer: HttpAnswer, kind: str, *, redirects: tuple[str, ...] = ()) -> HttpProbe:
    """An answer's head as evidence: Set-Cookie values redacted, URLs without their query.

    A query on the way to a sign-in form carries the flow's state, nonce and code challenge;
    none of them is needed to judge headers, so none is kept (in the URL or a Location).
    """
    headers = tuple((name, _evidence_value(name, value)) for name, value in answer.headers)
    location = answer.get("location")
    return HttpProbe(
        url=without_query(answer.url),
        kind=kind,
        status=answer.status,
        headers=headers,
        location=without_query(location) if location else None,
        error=answer.error,
        elapsed=answer.elapsed,
        redirects=redirects,
    )


def _evidence_value(name: str, value: str) -> str:
    lowered = name.lower()
    if lowered == "set-cookie":
        return redact_set_cookie(value)
    if lowered == "location":
        return without_query(value)
    return value


def without_query(url: str) -> str:
    """``url`` without its query and fragment."""
    return urlsplit(url)._replace(query="", fragment="").geturl()


def describe_error(exc: BaseException) -> str:
    """A short, stable description of why a probe could not complete."""
    # Order matters: several of these are subclasses of one another.
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or str(exc)
        return f"TLS certificate verification failed: {detail}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"host name not resolved: {exc.strerror or exc}"
    if isinstance(exc, http.client.HTTPException):
        return f"invalid HTTP response: {type(exc).__name__} {exc}".rstrip()
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def redact_set_cookie(value: str) -> str:
    """``sid=abc; Secure; HttpOnly`` -> ``sid=[REDACTED]; Secure; HttpOnly``."""
    pair, separator, attributes = value.partition(";")
    name = pair.partition("=")[0].strip()
    return f"{name}={MASK}{separator}{attributes}"


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, as browsers send it in an Origin header."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _values(headers: Headers, name: str) -> tuple[str, ...]:
    wanted = name.lower()
    return tuple(value for key, value in headers if key.lower() == wanted)


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return False
    try:
        parts.port  # noqa: B018 - the property raises ValueError for a malformed port
    except ValueError:
        return False
    return True


def _origin_key(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS[scheme]


def _check_url(url: str) -> None:
    if not _is_http_url(url):
        raise ValueError(f"not an http(s) URL with a host: {url!r}")


def _request_headers(*extras: Mapping[str, str] | None) -> dict[str, str]:
    """The default headers overridden, name by name and case-insensitively, by ``extras``."""
    merged = {"User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
    for extra in extras:
        for name, value in (extra or {}).items():
            for existing in [k for k in merged if k.lower() == name.lower()]:
                del merged[existing]
            merged[name] = value
    return merged


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


def _exchange(
    url: str,
    method: str,
    headers: Mapping[str, str],
    context: ssl.SSLContext,
    deadline: float,
    *,
    body: bytes | None = None,
    read_body: bool = False,
) -> tuple[int, Headers, bytes]:
    """Status, head (as received) and, if ``read_body``, body of one request, by ``deadline``.

    Raises OSError or http.client.HTTPException when the exchange cannot complete; the body
    beyond ``MAX_BODY_BYTES`` is one.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS[scheme]
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"

    sock: socket.socket = socket.create_connection((host, port), timeout=_remaining(deadline))
    try:
        connection: http.client.HTTPConnection
        if scheme == "https":
            sock.settimeout(_remaining(deadline))
            sock = context.wrap_socket(sock, server_hostname=host)
            connection = http.client.HTTPSConnection(host, port, context=context)
        else:
            connection = http.client.HTTPConnection(host, port)
        # http.client only calls sendall/makefile/close on its socket; handing it a wrapper
        # lets one deadline cover every read and write instead of restarting per operation.
        connection.sock = cast(socket.socket, _DeadlineSocket(sock, deadline))
        try:
            connection.request(method, target, body=body, headers=dict(headers))
            response = connection.getresponse()
            try:
                content = _read_bounded(response) if read_body else b""
                return response.status, tuple(response.msg.items()), content
            finally:
                response.close()
        finally:
            connection.close()
    finally:
        sock.close()


def _read_bounded(response: http.client.HTTPResponse) -> bytes:
    """The answer's body, refused beyond ``MAX_BODY_BYTES``; the deadline socket bounds its time."""
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read1(_READ_SIZE):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise http.client.HTTPException(f"the answer is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _DeadlineSocket:
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_remaining(self._deadline))
        self._sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        # http.client closes its socket as soon as the head says the connection will close,
        # before the body is read through makefile(); a real socket stays open for its file,
        # and here ``_exchange`` closes the socket once the answer has been read.
        pass


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        self._sock.settimeout(_remaining(self._deadline))
        return self._sock.recv_into(buffer)


class _CookieRequest:
    """A request as ``http.cookiejar`` reads it (the part of urllib's Request it documents)."""

    unverifiable = False  # the visitor asked for every request itself, as a browser's user does

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.headers = headers
        self.type = parts.scheme.lower()
        self.host = parts.netloc
        self.origin_req_host = (parts.hostname or "").lower()
        self._url = url

    def get_full_url(self) -> str:
        return self._url

    def has_header(self, name: str) -> bool:
        return any(key.lower() == name.lower() for key in self.headers)

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), default)

    def header_items(self) -> list[tuple[str, str]]:
        return list(self.headers.items())

    def add_unredirected_header(self, name: str, value: str) -> None:
        self.headers[name] = value


class _CookieAnswer:
    """An answer as ``http.cookiejar`` reads it: ``info()`` holding its Set-Cookie fields."""

    def __init__(self, headers: Headers) -> None:
        self._message = http.client.HTTPMessage()
        for name, value in headers:
            self._message[name] = value  # appends: repeated Set-Cookie fields are all kept

    def info(self) -> http.client.HTTPMessage:
        return self._message
