"""The audit browser trusts the profile's private CA and nothing else: a chain from that CA opens,
a chain from another CA does not, and neither does an impostor's own certificate with the
portal's (public) certificate appended, which a leaf-key allow-list would have accepted."""

from __future__ import annotations

import http.server
import shutil
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from portal.browser import QUIET_ARGS, TrustError, find_chromium, trusting_home
from tests.tls_servers import LeafSpec, LocalPki

PEM_END = "-----END CERTIFICATE-----\n"


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<p id=shown>served</p>")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serving(chain: Path, key: Path) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def opened(url: str, ca_file: Path) -> bool:
    """Whether Chromium, trusting ``ca_file`` the way the audit does, shows the page."""
    home = trusting_home(str(ca_file))
    try:
        with sync_playwright() as runtime:
            browser = runtime.chromium.launch(
                executable_path=find_chromium(), args=QUIET_ARGS, env={"HOME": str(home)}
            )
            try:
                page = browser.new_page()
                page.goto(url, timeout=15_000)
                return page.locator("#shown").inner_text() == "served"
            except PlaywrightError as exc:
                assert "ERR_CERT" in str(exc), exc
                return False
            finally:
                browser.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPki, LocalPki]]:
    with (
        LocalPki.create(tmp_path_factory.mktemp("ours")) as ours,
        LocalPki.create(tmp_path_factory.mktemp("theirs")) as theirs,
    ):
        yield ours, theirs


def test_a_chain_from_the_profiles_ca_opens(pkis: tuple[LocalPki, LocalPki]) -> None:
    ours, _ = pkis
    chain, key = ours.issue("portal", LeafSpec(names=("localhost",)))
    with serving(chain, key) as url:
        assert opened(url, ours.ca_file)


def test_a_chain_from_another_ca_is_refused(pkis: tuple[LocalPki, LocalPki]) -> None:
    ours, theirs = pkis
    chain, key = theirs.issue("other", LeafSpec(names=("localhost",)))
    with serving(chain, key) as url:
        assert not opened(url, ours.ca_file)


def test_an_impostor_appending_the_portals_certificate_is_refused(
    pkis: tuple[LocalPki, LocalPki], tmp_path: Path
) -> None:
    ours, _ = pkis
    portal_chain, _key = ours.issue("portal-public", LeafSpec(names=("localhost",)))
    portal_leaf = portal_chain.read_text().split(PEM_END)[0] + PEM_END
    own_chain, own_key = ours.issue("impostor", LeafSpec(names=("localhost",), self_signed=True))
    appended = tmp_path / "impostor-chain.pem"
    appended.write_text(own_chain.read_text() + portal_leaf)
    with serving(appended, own_key) as url:
        assert not opened(url, ours.ca_file)


def test_a_ca_file_without_certificates_is_a_clear_trust_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(TrustError, match="no certificate"):
        trusting_home(str(empty))
