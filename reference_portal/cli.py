"""Command line: ``python -m reference_portal --list-weaknesses`` and ``... serve``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from reference_portal.settings import (
    DEFAULT_ABSOLUTE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    SSO_CLIENT_ID_VARIABLE,
    SSO_CLIENT_SECRET_VARIABLE,
    SsoConfig,
)
from reference_portal.weaknesses import WEAKNESSES, UnknownWeaknessError, parse_flags

PROG = "python -m reference_portal"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The bundled reference patient portal audited by portal-audit.",
    )
    parser.add_argument(
        "--list-weaknesses",
        action="store_true",
        help="print the weakness flags as JSON ({flag, control, description}) and exit",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the portal over HTTPS (plus an HTTP listener that redirects to it)",
        description=(
            "Run the portal. When both listeners accept connections, one JSON line with the "
            "URLs, ports, CA file and state dir is printed to stdout; logs go to stderr."
        ),
    )
    known = ", ".join(weakness.flag for weakness in WEAKNESSES)
    serve.add_argument(
        "--weaken",
        action="append",
        default=[],
        metavar="FLAG[,FLAG...]",
        help=f"switch on weakness flags (repeatable); known: {known}",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--https-port", type=_port, default=0, help="0 picks a free port")
    serve.add_argument("--http-port", type=_port, default=0, help="0 picks a free port")
    serve.add_argument(
        "--state-dir",
        type=Path,
        help="where ca.pem and the database live (default: a temp dir removed on exit)",
    )
    serve.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=DEFAULT_IDLE_TIMEOUT,
        help=f"seconds of inactivity before a session ends (default {DEFAULT_IDLE_TIMEOUT:g})",
    )
    serve.add_argument(
        "--absolute-timeout",
        type=_seconds,
        default=DEFAULT_ABSOLUTE_TIMEOUT,
        help=f"seconds after sign-in when a session ends (default {DEFAULT_ABSOLUTE_TIMEOUT:g})",
    )
    serve.add_argument(
        "--sso-issuer",
        metavar="URL",
        help="SSO mode: patients sign in at this OpenID Connect provider (https) instead of the "
        f"portal's password form; client id and secret from ${SSO_CLIENT_ID_VARIABLE} and "
        f"${SSO_CLIENT_SECRET_VARIABLE}",
    )
    serve.add_argument(
        "--sso-ca",
        type=Path,
        metavar="FILE",
        help="SSO mode: the CA (PEM) that verifies the provider's certificate; read when a "
        "sign-in first needs the provider",
    )
    return parser


def sso_config(args: argparse.Namespace, environ: Mapping[str, str]) -> SsoConfig | None:
    """SSO mode's settings from ``--sso-issuer``/``--sso-ca`` and the environment, if asked for;
    ValueError names what is missing or wrong."""
    if args.sso_issuer is None and args.sso_ca is None:
        return None
    if args.sso_issuer is None or args.sso_ca is None:
        raise ValueError("--sso-issuer and --sso-ca go together")
    parts = urlsplit(args.sso_issuer)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"--sso-issuer must be an https URL without query: {args.sso_issuer!r}")
    client_id = environ.get(SSO_CLIENT_ID_VARIABLE, "")
    client_secret = environ.get(SSO_CLIENT_SECRET_VARIABLE, "")
    if not client_id or not client_secret:
        raise ValueError(
            f"SSO mode needs ${SSO_CLIENT_ID_VARIABLE} and ${SSO_CLIENT_SECRET_VARIABLE}"
        )
    return SsoConfig(args.sso_issuer, args.sso_ca.resolve(), client_id, client_secret)


def _stop_during_startup(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.list_weaknesses:
        print(json.dumps([weakness.as_json() for weakness in WEAKNESSES], indent=2))
        return 0
    if args.command != "serve":
        parser.print_usage(sys.stderr)
        print(f"{PROG}: choose 'serve' or --list-weaknesses", file=sys.stderr)
        return 2

    try:
        weaknesses = parse_flags(args.weaken)
    except UnknownWeaknessError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        sso = sso_config(args, os.environ)
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2

    # Until the event loop takes over signals, stop via SystemExit so clean-up still runs.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop_during_startup)

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Imported late so --list-weaknesses does not pay for uvicorn, argon2 and cryptography.
    from reference_portal.server import ServeOptions, serve

    return serve(
        ServeOptions(
            weaknesses=weaknesses,
            host=args.host,
            https_port=args.https_port,
            http_port=args.http_port,
            state_dir=args.state_dir,
            idle_timeout=args.idle_timeout,
            absolute_timeout=args.absolute_timeout,
            sso=sso,
        )
    )
