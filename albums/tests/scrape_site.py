"""A small web site on 127.0.0.1 for scraping tests, and the guard that keeps traffic on it.

``Site`` serves registered paths from a real HTTP server thread and records every request
(path and headers). ``connection_guard`` makes any socket connection to an address other than
127.0.0.1 fail the test, so a broken SSRF check can never send traffic off the machine.
"""

from __future__ import annotations

import io
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image as PILImage

Route = tuple[int, dict[str, str], bytes] | Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Site:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # time.monotonic() of each request
    server: ThreadingHTTPServer | None = None
    # Bytes each streamed route managed to send before the client hung up.
    streamed: dict[str, int] = field(default_factory=dict)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8", **headers: str) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = (200, {"Content-Type": content_type, **headers}, data)
        return self.url(path)

    def add_image(self, path: str, data: bytes, content_type: str = "image/png") -> str:
        return self.add(path, data, content_type)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.routes[path] = (status, {"Location": location}, b"")
        return self.url(path)

    def stream(self, path: str, total: int, content_type: str = "image/png") -> str:
        """A body of ``total`` bytes sent without Content-Length, closed-delimited, in 64 KiB chunks."""

        def respond(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Connection", "close")
            handler.end_headers()
            sent, chunk = 0, b"\x89PNG" + b"\0" * (64 * 1024 - 4)
            try:
                while sent < total:
                    handler.wfile.write(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.streamed[path] = sent

        self.routes[path] = respond
        return self.url(path)

    def trickle(self, path: str, *, interval: float, count: int) -> str:
        """An image body sent one byte every ``interval`` seconds (a slow-loris server)."""

        def respond(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "image/png")
            handler.send_header("Content-Length", str(count))
            handler.end_headers()
            try:
                for _ in range(count):
                    handler.wfile.write(b"x")
                    handler.wfile.flush()
                    time.sleep(interval)
            except (BrokenPipeError, ConnectionResetError):
                pass

        self.routes[path] = respond
        return self.url(path)

    def hang(self, path: str, seconds: float) -> str:
        """Accept the request, then say nothing for ``seconds``."""

        def respond(handler: BaseHTTPRequestHandler) -> None:
            time.sleep(seconds)

        self.routes[path] = respond
        return self.url(path)

    def requested(self, path: str) -> bool:
        return any(seen == path for seen, _headers in self.requests)

    def paths(self) -> list[str]:
        return [seen for seen, _headers in self.requests]


def _handler_for(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.times.append(time.monotonic())
            site.requests.append((self.path, dict(self.headers.items())))
            route = site.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if callable(route):
                route(self)
                return
            status, headers, body = route
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def site_running() -> Iterator[Site]:
    site = Site()
    site.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(site))
    site.server.daemon_threads = True
    site.server.block_on_close = False  # a handler still sleeping (a hanging route) must not hold teardown
    thread = threading.Thread(target=site.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.server.shutdown()
        site.server.server_close()
        thread.join(timeout=5)


@contextmanager
def connection_guard(monkeypatch: Any) -> Iterator[list[Any]]:
    """Refuse (and record) every socket connection to anything but 127.0.0.1.

    The recorded list is checked by the caller: code under test may swallow the OSError raised
    here, but the test still fails.
    """
    violations: list[Any] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def allowed(sock: socket.socket, address: Any) -> bool:
        if sock.family == socket.AF_UNIX:
            return True
        return sock.family == socket.AF_INET and address[0] == "127.0.0.1"

    def connect(sock: socket.socket, address: Any) -> None:
        if not allowed(sock, address):
            violations.append(address)
            raise OSError(f"test guard: connection to {address!r} blocked (only 127.0.0.1 is allowed)")
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if not allowed(sock, address):
            violations.append(address)
            raise OSError(f"test guard: connection to {address!r} blocked (only 127.0.0.1 is allowed)")
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield violations


def picture(seed: int, size: tuple[int, int] = (160, 120), fmt: str = "PNG", **save: Any) -> bytes:
    """A distinct, smooth picture per seed (smooth so perceptual hashes are stable)."""
    rng = random.Random(seed)
    grid = PILImage.new("RGB", (6, 5))
    grid.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(30)])
    image = grid.resize(size, PILImage.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def decompression_bomb(side: int = 10_000) -> bytes:
    """A PNG of side x side pixels (1 bit each) that compresses to a few kilobytes."""
    buffer = io.BytesIO()
    PILImage.new("1", (side, side), 0).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def tls_certificate(directory: Any, hostname: str) -> tuple[str, str, str]:
    """A throwaway CA and a certificate for ``hostname`` signed by it: (ca, cert, key) paths."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Imagineer test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = []
    for name, data in (
        ("ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
        ("cert.pem", cert.public_bytes(serialization.Encoding.PEM)),
        (
            "key.pem",
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        ),
    ):
        path = directory / name
        path.write_bytes(data)
        paths.append(str(path))
    return paths[0], paths[1], paths[2]


@contextmanager
def tls_site_running(cert: str, key: str) -> Iterator[Site]:
    """Like :func:`site_running`, over TLS with the given certificate."""
    import ssl

    site = Site()
    site.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(site))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    site.server.socket = context.wrap_socket(site.server.socket, server_side=True)
    site.server.daemon_threads = True
    site.server.block_on_close = False  # a handler still sleeping (a hanging route) must not hold teardown
    thread = threading.Thread(target=site.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.server.shutdown()
        site.server.server_close()
        thread.join(timeout=5)
