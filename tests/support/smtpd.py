#!/usr/bin/env python3
"""A small SMTP server for Parley's tests, built on aiosmtpd.

Usage:
    python3 tests/support/smtpd.py --port N --out FILE.jsonl [--auth user:pass]
        [--tls-cert cert.pem --tls-key key.pem] [--implicit-tls] [--fail-first K] [--host 127.0.0.1]

Every accepted message is appended to FILE as one JSON line
{"mailFrom": "...", "rcptTos": [...], "data": "<the raw message as text>"}, flushed at once.
Prints "READY <port>" on stdout once listening (with --port 0 the port is chosen by the system)
and runs until SIGTERM or SIGINT.

--fail-first K   answer "451 4.3.0 try again later" to the first K DATA commands
--delay-file F   before answering DATA, wait as many seconds as F holds (a number; no file or junk: no wait),
                 read anew for every message, so a test can make delivery slow and fast again
--auth U:P       require AUTH (PLAIN or LOGIN) with these credentials before MAIL
--tls-cert/--tls-key
                 without --implicit-tls: offer STARTTLS (required when --auth is given);
                 with --implicit-tls: the whole connection is TLS (SMTPS)
"""

import argparse
import asyncio
import os
import json
import logging
import signal
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class RecordingHandler:
    """Appends accepted messages to the JSONL file; fails the first K DATA commands."""

    def __init__(self, out_path: str, fail_first: int, delay_file: str | None = None):
        self.out_path = out_path
        self.failures_left = fail_first
        self.delay_file = delay_file

    def delay(self) -> float:
        if not self.delay_file:
            return 0.0
        try:
            with open(self.delay_file, encoding="utf-8") as file:
                return max(0.0, float(file.read().strip() or 0))
        except (OSError, ValueError):
            return 0.0

    async def handle_DATA(self, server, session, envelope):
        delay = self.delay()
        if delay:
            await asyncio.sleep(delay)
        if self.failures_left > 0:
            self.failures_left -= 1
            return "451 4.3.0 try again later"
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            text = content
        else:
            text = content.decode("utf-8", errors="replace")
        record = {"mailFrom": envelope.mail_from, "rcptTos": list(envelope.rcpt_tos), "data": text}
        with open(self.out_path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
        return "250 2.0.0 OK queued"


class Authenticator:
    """Accepts exactly one user name and password, for PLAIN and LOGIN alike."""

    def __init__(self, username: str, password: str):
        self.username = username.encode("utf-8")
        self.password = password.encode("utf-8")

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            if auth_data.login == self.username and auth_data.password == self.password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description="SMTP test server for Parley")
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--out", required=True, help="JSONL file that accepted messages are appended to")
    parser.add_argument("--auth", help="user:pass that AUTH must present before MAIL")
    parser.add_argument("--tls-cert", help="PEM certificate for STARTTLS or implicit TLS")
    parser.add_argument("--tls-key", help="PEM private key for the certificate")
    parser.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (SMTPS)")
    parser.add_argument("--fail-first", type=int, default=0, help="answer 451 to the first K DATA commands")
    parser.add_argument("--delay-file", help="file holding how many seconds to wait before answering DATA")
    arguments = parser.parse_args(argv)
    if bool(arguments.tls_cert) != bool(arguments.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if arguments.implicit_tls and not arguments.tls_cert:
        parser.error("--implicit-tls needs --tls-cert and --tls-key")
    if arguments.auth is not None and ":" not in arguments.auth:
        parser.error("--auth takes user:pass")
    return arguments


def make_protocol_factory(arguments, handler):
    tls_context = None
    if arguments.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(arguments.tls_cert, arguments.tls_key)

    options = {"hostname": "localhost", "decode_data": False}
    if arguments.auth is not None:
        username, password = arguments.auth.split(":", 1)
        options["authenticator"] = Authenticator(username, password)
        options["auth_required"] = True
    starttls = tls_context is not None and not arguments.implicit_tls
    if starttls:
        options["tls_context"] = tls_context
        # STARTTLS is mandatory only when credentials travel: a plain client may still deliver.
        options["require_starttls"] = arguments.auth is not None
        options["auth_require_tls"] = True
    else:
        # Implicit TLS already encrypts everything; without TLS the tests want AUTH in the clear.
        options["auth_require_tls"] = False

    server_tls = tls_context if arguments.implicit_tls else None
    return (lambda: SMTP(handler, **options)), server_tls


async def serve(arguments):
    handler = RecordingHandler(arguments.out, arguments.fail_first, arguments.delay_file)
    factory, server_tls = make_protocol_factory(arguments, handler)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host=arguments.host, port=arguments.port, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    # A server shared by a whole test process outlives no test run: once its parent is gone (re-parented), it stops.
    parent = os.getppid()

    async def watch_parent():
        while os.getppid() == parent:
            await asyncio.sleep(0.5)
        stop.set()

    watcher = asyncio.create_task(watch_parent())
    print(f"READY {port}", flush=True)
    await stop.wait()
    watcher.cancel()
    server.close()
    await server.wait_closed()


def main(argv):
    arguments = parse_arguments(argv)
    # A parent may spawn us with SIGTERM blocked (Swift's Foundation.Process does); unblock it or SIGTERM never arrives.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    # aiosmtpd warns about AUTH without TLS, which is exactly what a plain test wants.
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    asyncio.run(serve(arguments))


if __name__ == "__main__":
    main(sys.argv[1:])
