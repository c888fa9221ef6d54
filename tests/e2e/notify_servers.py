"""Real receivers for notification tests: an SMTP server (aiosmtpd, optionally STARTTLS with a self-signed
certificate made by ``openssl``) and an HTTP server, both in-process on free ports."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def refused_url() -> str:
    """An http URL on a port where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}/hook"


# ------------------------------------------------------------------------------------------------ SMTP


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message
    received: float

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, content_type: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode()
        raise AssertionError(f"no {content_type} part in {self.subject!r}")


@dataclass
class MailHandler:
    mails: list[Mail] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.mails.append(
            Mail(
                str(envelope.mail_from),
                [str(r) for r in envelope.rcpt_tos],
                email.message_from_bytes(content, policy=email.policy.default),
                time.time(),
            )
        )
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    handler: MailHandler
    #: The self-signed certificate (PEM) clients must trust, for STARTTLS servers.
    cert_file: Path | None = None

    @property
    def mails(self) -> list[Mail]:
        return self.handler.mails


@contextmanager
def smtp_server(*, starttls_dir: Path | None = None) -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1; with ``starttls_dir`` it requires STARTTLS (certificate made there)."""
    handler = MailHandler()
    port = free_port()
    cert_file = None
    kwargs: dict[str, Any] = {}
    if starttls_dir is not None:
        cert_file, key_file = self_signed_cert(starttls_dir)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        kwargs = {"tls_context": context, "require_starttls": True}
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpServer(port, handler, cert_file)
    finally:
        controller.stop()


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (``openssl``, a few ms)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


# ------------------------------------------------------------------------------------------------ HTTP


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any
    received: float


@dataclass
class HttpReceiver:
    """Records every POST; answers ``statuses[path]`` (default 200); holds requests while ``hold`` is set
    until ``release`` is set."""

    port: int
    requests: list[Request] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    hold: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            receiver.requests.append(Request(self.path, dict(self.headers.items()), body, time.time()))
            if receiver.hold.is_set():
                receiver.release.wait(60)
            status = receiver.statuses.get(self.path, 200)
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"no such hook")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join()
