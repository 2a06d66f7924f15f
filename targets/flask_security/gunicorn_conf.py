"""Gunicorn settings for the Flask-Security portal (``gunicorn --config`` this file).

No access log: reset links carry their token in the URL path. The app is loaded in the master
before the listening sockets are announced, so the ready line printed by ``when_ready`` means
requests will be answered. ``FLASK_SECURITY_TARGET_TLS`` chooses the TLS settings: ``careful``
is Mozilla's intermediate profile (TLS 1.2 and 1.3, ECDHE with AES-GCM or ChaCha20, P-256, no
renegotiation), anything else keeps gunicorn's and Python's defaults.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable
from typing import Any

accesslog = None
errorlog = "-"
loglevel = "warning"
preload_app = True
worker_class = "gthread"
workers = 2
threads = 8
timeout = 60
graceful_timeout = 5
keepalive = 5


def when_ready(server: Any) -> None:
    port = server.LISTENERS[0].sock.getsockname()[1]
    print(json.dumps({"ready": True, "port": port}), flush=True)


def ssl_context(config: Any, default_ssl_context_factory: Callable[[], ssl.SSLContext]) -> Any:
    context = default_ssl_context_factory()
    if os.environ.get("FLASK_SECURITY_TARGET_TLS") == "careful":
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
        context.set_ecdh_curve("prime256v1")
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context
