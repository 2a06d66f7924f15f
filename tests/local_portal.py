"""Small purpose-built HTTPS portals for tests: a handler base and a server on 127.0.0.1.

Each test module describes its portal's behaviour in a ``HtmlHandler`` subclass; ``serve_https``
runs it over real TLS with a certificate from a fresh test CA and stops it afterwards.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from portal.profile import Profile, load_profile


class HtmlHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def send_html(self, status: int, body: str, headers: Mapping[str, str] | None = None) -> None:
        data = f"<html><body>{body}</body></html>".encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def form_fields(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length", "0"))
        return {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

    def send_bytes(
        self, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        """``body`` as it is (HTML unless ``headers`` name another Content-Type)."""
        headers = {"Content-Type": "text/html; charset=utf-8", **(headers or {})}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, to: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_bytes(b"", 303, {"Location": to, **(headers or {})})

    def cookie(self, name: str) -> str | None:
        for part in self.headers.get("Cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None


@contextmanager
def serve_https(
    handler: type[BaseHTTPRequestHandler], directory: Path
) -> Iterator[tuple[str, str]]:
    """(base URL, CA file) of ``handler`` served over HTTPS on a free port of 127.0.0.1."""
    from reference_portal.tls import generate_tls_material, server_context

    material = generate_tls_material(directory, host="127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = server_context(material).wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/", str(material.ca_file)
    finally:
        server.shutdown()
        server.server_close()


def write_profile(directory: Path, text: str, env: Mapping[str, str]) -> Profile:
    """Load a profile written (dedented) into ``directory``."""
    path = directory / "local.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return load_profile(path, env=env)
