"""``portal-audit scan``: the TLS verdicts of many local servers at once, with the audit's
thresholds, one dead target inconclusive on its own, and its exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from portal.scan import ScanUsageError, parse_target, plain_http_url, read_targets, thresholds
from tests.sarif_schema import sarif_errors
from tests.test_tls_scanner import EXPECTED_KEYS
from tests.tls_servers import CONFIGS, HOST, SERVER_NAME, LocalPki, RunningServer, free_port
from tests.tls_servers import tls_servers as start_servers

COMMAND = Path(sys.executable).parent / "portal-audit"
# The finished command, its JSON report by server configuration, and the dead target's port.
Scanned = tuple[subprocess.CompletedProcess[str], dict[str, dict[str, Any]], int]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[dict[str, RunningServer], Path]]:
    with LocalPki.create() as pki, start_servers(list(CONFIGS), pki) as running:
        yield running, pki.ca_file


def scan(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), "scan", *arguments], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def scanned(
    servers: tuple[dict[str, RunningServer], Path], tmp_path_factory: pytest.TempPathFactory
) -> Scanned:
    running, ca_file = servers
    directory = tmp_path_factory.mktemp("scan")
    dead = free_port()
    listed = directory / "targets.txt"
    names = list(running)
    # Half on the command line, half from a file with a comment and a blank line.
    listed.write_text(
        "# the rest\n\n" + "\n".join(f"{HOST}:{running[n].port}" for n in names[6:]) + "\n"
    )
    report = directory / "verdicts.json"
    done = scan(
        *(f"{HOST}:{running[n].port}" for n in names[:6]),
        f"{HOST}:{dead}",
        "--targets",
        str(listed),
        "--sni",
        SERVER_NAME,
        "--ca-file",
        str(ca_file),
        "--concurrency",
        "12",
        # Nothing listens there: plain HTTP is not served by the live hosts (AUTH_HTTPS).
        "--plain-http-port",
        str(dead),
        "--json",
        str(report),
        "--junit",
        str(directory / "junit.xml"),
        "--sarif",
        str(directory / "scan.sarif"),
        "--run-dir",
        str(directory / "run"),
        "--policy",
        "expiry_warning_days=20",
    )
    by_port = {t["port"]: t for t in json.loads(report.read_text())["targets"]}
    by_name = {name: by_port[server.port] for name, server in running.items()}
    return done, by_name, dead


def test_every_server_gets_the_audit_s_findings(scanned: Scanned) -> None:
    done, by_name, _ = scanned
    assert done.returncode == 1, done.stdout + done.stderr
    for name, expected in EXPECTED_KEYS.items():
        controls = by_name[name]["controls"]
        keys = {f["key"] for i, c in controls.items() if i != "HDR_HSTS" for f in c["findings"]}
        assert keys == expected, name
        statuses = {c["status"] for c in controls.values()}
        assert statuses <= {"passed", "warn", "failed", "skipped"}, (name, statuses)
        for control, verdict in controls.items():
            advisory = any(f["severity"] == "warn" for f in verdict["findings"])
            failing = any(f["severity"] == "fail" for f in verdict["findings"])
            assert (verdict["status"] == "warn") == (advisory and not failing), (name, control)
        assert ("failed" in statuses) == any(
            f["severity"] == "fail" for c in controls.values() for f in c["findings"]
        ), name


def test_headers_are_judged_whatever_the_certificate(scanned: Scanned) -> None:
    _, by_name, _ = scanned
    for name in EXPECTED_KEYS:
        for control in ("HDR_HSTS", "HDR_CSP", "HDR_MISC"):
            verdict = by_name[name]["controls"][control]
            assert verdict["status"] == "passed", (name, control, verdict["reason"])
        hsts = by_name[name]["controls"]["HDR_HSTS"]
        certificate_failed = by_name[name]["controls"]["TLS_CERT"]["status"] == "failed"
        assert ("RFC 6797 section 8.1" in hsts["reason"]) == certificate_failed, name
    # Self-signed, misnamed, expired, SHA-1 and 1024-bit RSA certificates all left it readable.
    assert {
        n for n in EXPECTED_KEYS if "RFC 6797" in by_name[n]["controls"]["HDR_HSTS"]["reason"]
    } >= {
        "self_signed",
        "wrong_host",
        "expired",
        "sha1_signature",
    }


def test_a_dead_target_is_inconclusive_on_its_own(scanned: Scanned) -> None:
    done, by_name, dead = scanned
    report = json.loads(Path(done.args[done.args.index("--json") + 1]).read_text())
    dead_target = next(t for t in report["targets"] if t["port"] == dead)
    assert dead_target["scan"]["status"] == "unreachable"
    assert {c["status"] for c in dead_target["controls"].values()} == {"inconclusive"}
    assert by_name["intermediate"]["scan"]["status"] == "completed"
    assert f"{SERVER_NAME}:{dead}" in done.stdout


def test_the_catalogue_s_thresholds_apply_and_policy_overrides_are_checked() -> None:
    applied = thresholds({})
    assert applied["max_lifespan_days"] == 398 and applied["expiry_warning_days"] == 30
    assert applied["mozilla_level"] == "intermediate"
    assert thresholds({"expiry_warning_days": "14"})["expiry_warning_days"] == 14
    with pytest.raises(ScanUsageError, match="expiry_warning_days"):
        thresholds({"expiry_warning_days": "soon"})
    with pytest.raises(ScanUsageError, match="not a threshold of the scan"):
        thresholds({"idle_timeout_seconds": "60"})


def test_targets_are_read_as_host_host_port_or_https_url() -> None:
    assert parse_target("example.org").port == 443
    assert (parse_target("example.org:8443").host, parse_target("example.org:8443").port) == (
        "example.org",
        8443,
    )
    url = parse_target("https://portal.example/login", sni="portal.example")
    assert (url.host, url.port, url.server_name) == ("portal.example", 443, "portal.example")
    for bad in ("http://example.org", "example.org:99999", "example.org/path", ""):
        with pytest.raises(ScanUsageError):
            parse_target(bad)
    with pytest.raises(ScanUsageError, match=r"hosts\.txt:2: one target per line"):
        read_targets("a.example\nb.example c.example\n", "hosts.txt")


def test_usage_errors_exit_3() -> None:
    nothing = scan()
    assert nothing.returncode == 3 and "no target given" in nothing.stderr
    bad_policy = scan("127.0.0.1:1", "--policy", "max_lifespan_days=forever")
    assert bad_policy.returncode == 3 and "max_lifespan_days" in bad_policy.stderr
    missing_file = scan("--targets", "/nonexistent/targets.txt")
    assert missing_file.returncode == 3 and "/nonexistent/targets.txt" in missing_file.stderr


def test_junit_has_a_case_per_target_and_control_with_the_verdicts(scanned: Scanned) -> None:
    done, by_name, dead = scanned
    junit = Path(done.args[done.args.index("--junit") + 1])
    suites = ElementTree.parse(junit).getroot()
    assert suites.tag == "testsuites"
    cases = {
        (suite.get("name"), case.get("name")): case
        for suite in suites
        for case in suite.iter("testcase")
    }
    assert len(cases) == (len(by_name) + 1) * 9
    for (target, control), case in cases.items():
        assert case.get("classname") == target
        port = int(str(target).split(":")[1].split(" ")[0])
        if port == dead:
            assert case.find("error") is not None, (target, control)
            continue
        name = next(n for n, t in by_name.items() if t["port"] == port)
        status = by_name[name]["controls"][control]["status"]
        failure = case.find("failure")
        assert (failure is not None) == (status == "failed"), (name, control)
        if failure is not None:
            assert failure.get("message")
            findings = by_name[name]["controls"][control]["findings"]
            failing = {f["key"] for f in findings if f["severity"] == "fail"}
            assert failing and all(key in (failure.text or "") for key in failing), name


def test_sarif_log_is_valid_and_has_a_result_per_control_needing_attention(
    scanned: Scanned,
) -> None:
    done, by_name, dead = scanned
    log = json.loads(Path(done.args[done.args.index("--sarif") + 1]).read_text())
    assert sarif_errors(log) == []
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == [
        "AUTH_HTTPS",
        "HDR_HSTS",
        "HDR_CSP",
        "HDR_MISC",
        "TLS_PROTOCOLS",
        "TLS_CIPHERS",
        "TLS_CERT",
        "TLS_VULNS",
        "TLS_OCSP",
    ]
    hsts = next(rule for rule in rules if rule["id"] == "HDR_HSTS")
    assert hsts["helpUri"].startswith("https://github.com/OWASP/ASVS/")
    assert {"transport", "Moz 63072000"} <= set(hsts["properties"]["tags"])
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert (uri, result["ruleId"]) not in results
        results[(uri, result["ruleId"])] = result
    expected: dict[tuple[str, str], tuple[str, str]] = {}
    for target in by_name.values():
        for control, verdict in target["controls"].items():
            if verdict["status"] == "failed":
                expected[(target["url"], control)] = ("fail", "error")
            elif verdict["status"] == "warn":
                expected[(target["url"], control)] = ("fail", "warning")
    for control in by_name["intermediate"]["controls"]:
        expected[(f"https://{HOST}:{dead}/", control)] = ("open", "none")
    assert {key: (r["kind"], r["level"]) for key, r in results.items()} == expected
    # Failures, advisories and inconclusive targets all occur in this scan.
    assert set(expected.values()) == {
        ("fail", "error"),
        ("fail", "warning"),
        ("open", "none"),
    }
    for (_, control), result in results.items():
        if result["level"] == "error":
            assert result["message"]["text"], control
    assert sum(run["properties"]["statuses"].values()) == (len(by_name) + 1) * 9


def test_the_sarif_schema_check_finds_a_broken_log() -> None:
    broken = {"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": [{}]}]}
    errors = sarif_errors(broken)
    assert any("'name' is a required property" in error for error in errors), errors
    assert any("'message' is a required property" in error for error in errors), errors


def test_run_dir_has_the_audit_s_summary_and_matrix_per_target(scanned: Scanned) -> None:
    done, by_name, _ = scanned
    run_dir = Path(done.args[done.args.index("--run-dir") + 1])
    folders = {folder.name: folder for folder in run_dir.iterdir()}
    assert len(folders) == len(by_name) + 1
    port = {name: target["port"] for name, target in by_name.items()}
    intermediate = json.loads(
        (folders[f"{SERVER_NAME}_{port['intermediate']}"] / "summary.json").read_text()
    )
    legacy = json.loads((folders[f"{SERVER_NAME}_{port['legacy']}"] / "summary.json").read_text())
    assert intermediate["verdict"] == "compliant" and legacy["verdict"] == "noncompliant"
    assert set(intermediate["controls"]) == {
        "AUTH_HTTPS",
        "TLS_PROTOCOLS",
        "TLS_CIPHERS",
        "TLS_CERT",
        "TLS_VULNS",
        "TLS_OCSP",
        "HDR_HSTS",
        "HDR_CSP",
        "HDR_MISC",
    }
    certificate = intermediate["controls"]["TLS_CERT"]
    assert certificate["threshold"] == {"expiry_warning_days": 20, "max_lifespan_days": 398}
    assert "expiry_warning_days set by --policy" in certificate["threshold_note"]
    matrix = (folders[f"{SERVER_NAME}_{port['legacy']}"] / "compliance-matrix.md").read_text()
    assert "| TLS_PROTOCOLS | FAILED |" in matrix


class _PlainHttp(BaseHTTPRequestHandler):
    redirect = True

    def do_GET(self) -> None:
        if self.redirect:
            self.send_response(301)
            self.send_header("Location", f"https://{SERVER_NAME}{self.path}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def plain_http(redirect: bool) -> Iterator[int]:
    handler = type("Handler", (_PlainHttp,), {"redirect": redirect})
    server = ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_plain_http_must_redirect_to_https_or_not_be_served(
    servers: tuple[dict[str, RunningServer], Path], tmp_path: Path
) -> None:
    running, ca_file = servers
    target = f"https://{HOST}:{running['intermediate'].port}/login?next=%2F"
    verdicts = {}
    with plain_http(redirect=True) as redirecting, plain_http(redirect=False) as serving:
        for name, port in (("redirects", redirecting), ("serves", serving)):
            report = tmp_path / f"{name}.json"
            scan(
                target,
                "--sni",
                SERVER_NAME,
                "--ca-file",
                str(ca_file),
                "--plain-http-port",
                str(port),
                "--json",
                str(report),
            )
            verdicts[name] = json.loads(report.read_text())["targets"][0]["controls"]["AUTH_HTTPS"]
    assert verdicts["redirects"]["status"] == "passed", verdicts["redirects"]
    assert "an audit" in verdicts["redirects"]["reason"]
    served = verdicts["serves"]
    assert served["status"] == "failed", served
    assert [f["key"] for f in served["findings"]] == ["https.plain_http_served"]
    assert served["findings"][0]["where"] == f"http://{HOST}:{serving}/login?next=%2F"


def test_the_plain_http_url_keeps_the_page_and_names_the_port() -> None:
    assert plain_http_url("https://portal.example/login?x=1") == "http://portal.example/login?x=1"
    assert plain_http_url("https://[::1]:8443/", 8080) == "http://[::1]:8080/"
