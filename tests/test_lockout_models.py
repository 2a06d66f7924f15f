"""AUTH_LOCKOUT against every lockout model: recorded attempts, and live local sign-in servers.

The live tests start a small HTTPS sign-in server on 127.0.0.1 whose lockout model is chosen per
test, and drive it with the audit's own ``LockoutSequence`` through plain HTTP form posts (the
audit drives the same sequence through the browser). Lock periods are 1-3 s.
"""

from __future__ import annotations

import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlencode

import pytest

from portal.lockout_probe import LockoutSequence, SignInAnswer
from scanners.lockout import Attempt, LockoutMeasurement, Who, evaluate_lockout, stated_delay

GENERIC = "The username or password is incorrect."


def keys(evaluation: object) -> set[str]:
    return {f.key for f in evaluation.findings}  # type: ignore[attr-defined]


# -- recorded measurements ---------------------------------------------------------------------


class _Recorder:
    """Builds an attempt log with a clock that advances ``step`` seconds per attempt."""

    def __init__(self, step: float = 0.5) -> None:
        self.now = 0.0
        self.step = step
        self.attempts: list[Attempt] = []
        self.lock_index: int | None = None

    def add(
        self,
        who: Who,
        step: str,
        signed_in: bool = False,
        message: str = GENERIC,
        *,
        at: float | None = None,
        took: float = 0.1,
        captcha: bool = False,
        lock: bool = False,
    ) -> None:
        if at is not None:
            self.now = at
        if lock:
            self.lock_index = len(self.attempts)
        text = "" if signed_in else message
        self.attempts.append(
            Attempt(who, step, self.now, self.now + took, signed_in, text, captcha)  # type: ignore[arg-type]
        )
        self.now += self.step

    def start(self) -> None:
        self.add("right", "control", True)
        self.add("wrong", "baseline")
        self.add("unknown", "baseline")

    def measurement(self, period: float | None = 20.0, problem: str = "") -> LockoutMeasurement:
        return LockoutMeasurement(
            5, 0.5, tuple(self.attempts), self.lock_index, period, problem=problem
        )


def _consecutive_lock(lock_for: float, *, lock_message: str = GENERIC) -> _Recorder:
    """Threshold 3 in a row (a success resets); locked ``lock_for`` s after the last failure."""
    r = _Recorder()
    r.start()
    r.add("right", "alternating", True)
    for _ in range(4):
        r.add("wrong", "alternating")
        r.add("right", "alternating", True)
    for in_a_row in (2, 3):
        for _ in range(in_a_row):
            r.add("wrong", "consecutive")
        r.add("right", "consecutive", in_a_row < 3, lock_message, lock=in_a_row == 3)
    last_failure = r.attempts[-2].ended
    r.add("fresh", "after lock")
    for _ in range(10 - 1):
        r.add("unknown", "after lock")
    for moment in (5.0, 9.0, 9.75, 20.0 + 2.0):
        at = last_failure + moment
        r.add("right", "lock check", at >= last_failure + lock_for, lock_message, at=at)
        if at >= last_failure + lock_for:
            break
        if moment == 9.75:
            r.add("other", "after lock", True)
    return r


def test_a_consecutive_lockout_within_policy_passes_with_threshold_and_bracket() -> None:
    r = _consecutive_lock(15.0)
    evaluation = evaluate_lockout(r.measurement(), max_failures=5, lockout_seconds=10)
    assert evaluation.status == "passed", evaluation.describe()
    assert "locked after 3 failures (between the 2nd and the 3rd: threshold 3)" in (
        evaluation.measured
    )
    assert "consecutive failures (a success resets the count)" in evaluation.measured
    assert "lock lasted between 9.7s and 22.3s after the last failure" in evaluation.measured
    assert "another account still signed in" in evaluation.measured


def test_a_lock_clearly_shorter_than_the_policy_fails_and_a_borderline_one_is_inconclusive() -> (
    None
):
    short = evaluate_lockout(
        _consecutive_lock(4.0).measurement(), max_failures=5, lockout_seconds=10
    )
    assert keys(short) == {"lockout.too_short"}
    # Refused 9 s after the last failure, accepted at 9.75 s: the bracket straddles 10 s - 0.5 s.
    borderline = evaluate_lockout(
        _consecutive_lock(9.5).measurement(), max_failures=5, lockout_seconds=10
    )
    assert borderline.status == "inconclusive"
    assert "cannot be placed on either side" in borderline.reason


def test_a_lock_message_that_reveals_the_account_fails() -> None:
    r = _consecutive_lock(15.0, lock_message="Your account is locked.")
    evaluation = evaluate_lockout(r.measurement(), max_failures=5, lockout_seconds=10)
    assert keys(evaluation) == {"lockout.message_reveals_account"}


def test_a_threshold_above_the_policy_fails() -> None:
    evaluation = evaluate_lockout(
        _consecutive_lock(15.0).measurement(), max_failures=2, lockout_seconds=10
    )
    assert keys(evaluation) == {"lockout.threshold_too_high"}


def test_an_account_that_never_comes_back_fails_and_no_period_is_a_warning() -> None:
    r = _consecutive_lock(10_000.0)
    stuck = evaluate_lockout(r.measurement(period=20.0), max_failures=5, lockout_seconds=10)
    assert keys(stuck) == {"lockout.not_restored"}
    r.attempts.pop()  # no check after the portal's period: the profile gave none
    unknown_period = evaluate_lockout(
        r.measurement(period=None), max_failures=5, lockout_seconds=10
    )
    assert unknown_period.status == "passed"
    assert keys(unknown_period) == {"lockout.unlock_not_checked"}


def test_a_sliding_window_not_cleared_by_success_reports_its_real_threshold() -> None:
    # The framework from the issue: 5 failures per name in a window, successes do not clear it,
    # the lock lifts 15 s after the FIRST failure (here 6 s after the last one).
    r = _Recorder(step=1.0)
    r.start()  # first failure at 1.0
    r.add("right", "alternating", True)
    for failures in range(2, 6):
        r.add("wrong", "alternating")
        r.add("right", "alternating", failures < 5, lock=failures == 5)
    last_failure = r.attempts[-2].ended
    r.add("fresh", "after lock")
    for _ in range(4):
        r.add("unknown", "after lock")
    r.add("right", "lock check", True, at=last_failure + 8.0)
    r.add("other", "after lock", True)
    evaluation = evaluate_lockout(r.measurement(), max_failures=5, lockout_seconds=10)
    assert "locked after 5 failures (between the 4th and the 5th: threshold 5)" in (
        evaluation.measured
    )
    assert "sliding window" in evaluation.measured
    assert keys(evaluation) == {"lockout.too_short"}


def test_a_per_client_throttle_is_recognised() -> None:
    throttled = "Too many attempts from your network."
    r = _Recorder()
    r.start()
    r.add("right", "alternating", True)
    r.add("wrong", "alternating")
    r.add("right", "alternating", False, throttled, lock=True)
    last_failure = r.attempts[-2].ended
    r.add("fresh", "after lock", message=throttled)
    r.add("unknown", "after lock", message=throttled)
    r.add("right", "lock check", message=throttled, at=last_failure + 5)
    r.add("right", "lock check", message=throttled, at=last_failure + 9)
    r.add("right", "lock check", message=throttled, at=last_failure + 9.75)
    r.add("other", "after lock", message=throttled)
    r.add("right", "lock check", True, at=last_failure + 22)
    evaluation = evaluate_lockout(r.measurement(), max_failures=5, lockout_seconds=10)
    assert evaluation.status == "passed", evaluation.describe()
    assert "per-client throttle" in evaluation.measured
    assert {f.key for f in evaluation.warnings} == {"lockout.per_client"}


def _delays(stated: list[float]) -> _Recorder:
    r = _Recorder(step=0.2)
    r.start()
    r.add("right", "alternating", True)
    for delay in stated:
        message = f"{GENERIC} Try again in {delay:g} seconds." if delay else GENERIC
        r.add("wrong", "consecutive", message=message)
        r.now += delay
    r.add("right", "consecutive", True)
    return r


def test_growing_delays_pass_when_few_guesses_fit_in_the_period_and_fail_otherwise() -> None:
    enough = evaluate_lockout(
        _delays([0, 1, 2, 4, 8]).measurement(), max_failures=5, lockout_seconds=10
    )
    assert enough.status == "passed", enough.describe()
    assert "growing delays" in enough.measured
    too_slow = evaluate_lockout(
        _delays([0, 1, 2, 3, 3.5]).measurement(), max_failures=5, lockout_seconds=60
    )
    assert keys(too_slow) == {"lockout.delay_too_short"}


def test_slow_answers_only_count_as_delays_beyond_the_first_failures_answer() -> None:
    # A loaded machine slows every answer alike: that is no growing delay, and no lock.
    r = _Recorder()
    r.start()
    for _ in range(5):
        r.add("wrong", "consecutive", took=2.5)
    r.add("right", "consecutive", True)
    r.attempts[1] = Attempt("wrong", "baseline", 0.5, 3.0, False, GENERIC)
    evaluation = evaluate_lockout(r.measurement(), max_failures=5, lockout_seconds=10)
    assert keys(evaluation) == {"lockout.none_within_policy"}


def test_a_captcha_within_the_policy_counts_as_the_lock_with_its_duration_unmeasured() -> None:
    r = _Recorder()
    r.start()
    r.add("right", "alternating", True)
    for _ in range(3):
        r.add("wrong", "consecutive")
    r.attempts[-1] = Attempt("wrong", "consecutive", r.now, r.now + 0.1, False, GENERIC, True)
    evaluation = evaluate_lockout(r.measurement(), max_failures=5, lockout_seconds=10)
    assert evaluation.status == "passed"
    assert "CAPTCHA after 3 failures in a row" in evaluation.measured
    assert {f.key for f in evaluation.warnings} == {"lockout.duration_unmeasurable"}
    assert keys(evaluate_lockout(r.measurement(), max_failures=2, lockout_seconds=10)) == {
        "lockout.threshold_too_high",
        "lockout.duration_unmeasurable",
    }


def test_no_lockout_fails_and_a_probe_that_could_not_run_is_inconclusive() -> None:
    r = _Recorder()
    r.start()
    for _ in range(5):
        r.add("wrong", "consecutive")
    r.add("right", "consecutive", True)
    assert keys(evaluate_lockout(r.measurement(), max_failures=5, lockout_seconds=10)) == {
        "lockout.none_within_policy"
    }
    broken = r.measurement(problem="the answer to a wrong password showed no refusal message")
    assert evaluate_lockout(broken, max_failures=5, lockout_seconds=10).status == "inconclusive"
    refused = _Recorder()
    refused.add("right", "control", False)
    assert (
        evaluate_lockout(refused.measurement(), max_failures=5, lockout_seconds=10).status
        == "inconclusive"
    )
    skipped = LockoutMeasurement(5, 1.0, skipped="no accounts.lockout")
    assert evaluate_lockout(skipped, max_failures=5, lockout_seconds=10).status == "skipped"


def test_stated_delays_are_read_from_refusals() -> None:
    assert stated_delay("Too many attempts. Try again in 30 seconds.") == 30
    assert stated_delay("Please wait 2 min before signing in again") == 120
    assert stated_delay("Try again in 1.5 s") == 1.5
    assert stated_delay(GENERIC) is None


# -- live local sign-in servers ------------------------------------------------------------------

Model = Literal["consecutive", "window", "per_client", "delay", "captcha"]
ACCOUNTS = {"kowalski": "Right-Pass-1", "alvarez": "Other-Pass-2"}
THROTTLED = "Too many attempts from your network."
CAPTCHA = "Please complete the CAPTCHA to continue."


@dataclass
class _Lockouts:
    """The sign-in server's lockout model; every name (known or not) is counted alike."""

    model: Model
    threshold: int = 3
    lock_seconds: float = 1.5
    window_seconds: float = 2.0
    delay_base: float = 0.25
    failures: dict[str, list[float]] = field(default_factory=dict)
    locked_until: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sign_in(self, name: str, password: str) -> str | None:
        """None when signed in, else the refusal's message."""
        with self.lock:
            now = time.monotonic()
            key = "client" if self.model == "per_client" else name
            count = self.failures.setdefault(key, [])
            if self.model == "window":
                count[:] = [t for t in count if t > now - self.window_seconds]
                if len(count) >= self.threshold:
                    return GENERIC
            elif self.model == "captcha" and len(count) >= self.threshold:
                return CAPTCHA
            elif self.locked_until.get(key, 0) > now:
                remaining = self.locked_until[key] - now
                if self.model == "delay":
                    return f"Too many attempts. Try again in {remaining:.2f} seconds."
                return THROTTLED if self.model == "per_client" else GENERIC
            if ACCOUNTS.get(name) == password:
                if self.model != "window":
                    count.clear()
                return None
            count.append(now)
            if self.model == "captcha" and len(count) >= self.threshold:
                return CAPTCHA
            if self.model == "delay" and len(count) >= 2:
                delay = self.delay_base * 2 ** (len(count) - 2)
                self.locked_until[key] = now + delay
                return f"{GENERIC} Try again in {delay:g} seconds."
            if self.model in ("consecutive", "per_client") and len(count) >= self.threshold:
                count.clear()
                self.locked_until[key] = now + self.lock_seconds
            return GENERIC


class _SignInHandler(BaseHTTPRequestHandler):
    lockouts: _Lockouts

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: str, location: str | None = None) -> None:
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body.encode())

    def do_POST(self) -> None:
        fields = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        refusal = self.server.lockouts.sign_in(  # type: ignore[attr-defined]
            fields["username"][0], fields["password"][0]
        )
        if refusal is None:
            self._send(303, "", "/home")
        else:
            self._send(401, f"<p id=sign-in-error>{refusal}</p>")


class _HttpSignIns:
    """The probe's SignInTarget over plain HTTP form posts (the audit uses the browser)."""

    def __init__(self, url: str, ca_file: str) -> None:
        self.url = url
        context = ssl.create_default_context(cafile=ca_file)

        class NoRedirects(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), NoRedirects()
        )
        self.fresh = 0

    @property
    def has_other_account(self) -> bool:
        return True

    def attempt(self, who: Who) -> SignInAnswer:
        self.fresh += who == "fresh"
        name, password = {
            "right": ("kowalski", ACCOUNTS["kowalski"]),
            "wrong": ("kowalski", "Wrong-guess"),
            "unknown": ("nobody", "Wrong-guess"),
            "fresh": (f"fresh-{self.fresh}", "Wrong-guess"),
            "other": ("alvarez", ACCOUNTS["alvarez"]),
        }[who]
        data = urlencode({"username": name, "password": password}).encode()
        try:
            with self.opener.open(self.url, data=data, timeout=5) as response:
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read().decode()
        if status == 303:
            return SignInAnswer(True)
        message = body.removeprefix("<p id=sign-in-error>").removesuffix("</p>")
        return SignInAnswer(False, message, captcha="CAPTCHA" in message)


class _RealTime:
    """The Pacer: waits on an event, so a stopped test never sleeps on."""

    def __init__(self) -> None:
        self.stop = threading.Event()

    def wait_until(self, moment: float, what: str) -> None:
        remaining = moment - time.monotonic()
        if remaining > 0:
            self.stop.wait(remaining)


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    from reference_portal.tls import generate_tls_material, server_context

    material = generate_tls_material(tmp_path_factory.mktemp("tls"), host="127.0.0.1")
    return server_context(material), str(material.ca_file)


@pytest.fixture
def sign_in_server(
    tls_material: tuple[ssl.SSLContext, str],
) -> Iterator[tuple[ThreadingHTTPServer, _HttpSignIns]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SignInHandler)
    server.socket = tls_material[0].wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}/login"
    yield server, _HttpSignIns(url, tls_material[1])
    server.shutdown()
    server.server_close()


def _probe(
    server: tuple[ThreadingHTTPServer, _HttpSignIns],
    lockouts: _Lockouts,
    *,
    minimum: float,
    period: float | None,
    ceiling: int = 5,
    pause: float = 0.0,
) -> LockoutMeasurement:
    server[0].lockouts = lockouts  # type: ignore[attr-defined]
    return LockoutSequence(
        server[1],
        _RealTime(),
        ceiling=ceiling,
        minimum_seconds=minimum,
        period_seconds=period,
        pause_seconds=pause,
        settle_seconds=0.3,
    ).run()


Server = tuple[ThreadingHTTPServer, _HttpSignIns]


def test_live_consecutive_lockout_with_reset_passes(sign_in_server: Server) -> None:
    m = _probe(sign_in_server, _Lockouts("consecutive"), minimum=1.0, period=1.5)
    evaluation = evaluate_lockout(m, max_failures=5, lockout_seconds=1.0)
    assert evaluation.status == "passed", evaluation.describe()
    assert "threshold 3" in evaluation.measured
    assert "a success resets the count" in evaluation.measured
    # Never more wrong passwords in a row than the policy's number.
    assert max(_runs(m)) <= 5


def test_live_consecutive_lockout_too_short_fails(sign_in_server: Server) -> None:
    lockouts = _Lockouts("consecutive", lock_seconds=0.6)
    m = _probe(sign_in_server, lockouts, minimum=2.0, period=0.6)
    evaluation = evaluate_lockout(m, max_failures=5, lockout_seconds=2.0)
    assert keys(evaluation) == {"lockout.too_short"}, evaluation.describe()


def test_live_sliding_window_lifted_after_the_first_failure(sign_in_server: Server) -> None:
    # Successes do not clear the count; the lock lifts 2.4 s after the first failure, which
    # is under 1 s after the last one when the failures are spread out.
    lockouts = _Lockouts("window", window_seconds=2.4)
    m = _probe(sign_in_server, lockouts, minimum=3.0, period=2.4, pause=0.3)
    evaluation = evaluate_lockout(m, max_failures=5, lockout_seconds=3.0)
    # The duration verdict holds however slow the machine is ...
    assert keys(evaluation) == {"lockout.too_short"}, evaluation.describe()
    # ... the threshold only while the probe's first failures stay inside the 2.4 s window (a
    # heavily loaded machine can spread them wider, and the window then forgets the first).
    failures = [a for a in m.attempts if a.who == "wrong"]
    if failures[2].started - failures[0].ended < lockouts.window_seconds:
        assert "locked after 3 failures (between the 2nd and the 3rd: threshold 3)" in (
            evaluation.measured
        )
        assert "sliding window" in evaluation.measured
        assert max(_runs(m)) == 1  # found without two wrong passwords in a row


def test_live_per_client_throttle(sign_in_server: Server) -> None:
    m = _probe(sign_in_server, _Lockouts("per_client"), minimum=1.0, period=1.5)
    evaluation = evaluate_lockout(m, max_failures=5, lockout_seconds=1.0)
    assert evaluation.status == "passed", evaluation.describe()
    assert "per-client throttle" in evaluation.measured
    assert "lockout.per_client" in keys(evaluation)


def test_live_growing_delays(sign_in_server: Server) -> None:
    m = _probe(sign_in_server, _Lockouts("delay"), minimum=1.5, period=None)
    evaluation = evaluate_lockout(m, max_failures=5, lockout_seconds=1.5)
    assert evaluation.status == "passed", evaluation.describe()
    assert "growing delays" in evaluation.measured


def test_live_captcha_after_n_failures(sign_in_server: Server) -> None:
    m = _probe(sign_in_server, _Lockouts("captcha"), minimum=1.0, period=None)
    evaluation = evaluate_lockout(m, max_failures=5, lockout_seconds=1.0)
    assert evaluation.status == "passed", evaluation.describe()
    assert "CAPTCHA after 3 failures in a row" in evaluation.measured
    assert "lockout.duration_unmeasurable" in keys(evaluation)


def test_live_portal_without_lockout_is_not_hammered(sign_in_server: Server) -> None:
    m = _probe(sign_in_server, _Lockouts("consecutive", threshold=99), minimum=1.0, period=1.5)
    evaluation = evaluate_lockout(m, max_failures=5, lockout_seconds=1.0)
    assert keys(evaluation) == {"lockout.none_within_policy"}
    assert max(_runs(m)) == 5


def _runs(m: LockoutMeasurement) -> list[int]:
    """Lengths of the runs of the account's wrong passwords with no right password between."""
    runs, current = [0], 0
    for attempt in m.attempts:
        if attempt.who == "wrong":
            current += 1
            runs.append(current)
        elif attempt.who == "right":
            current = 0
    return runs
