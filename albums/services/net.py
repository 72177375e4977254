"""Safe outbound HTTP for scraping: SSRF checks on the address actually connected to.

Every URL (each redirect hop included) must be http(s); its host is resolved once, every
resolved address is checked, and the socket connects to a checked address while the request
keeps the original Host header and TLS server name. There is no gap between the check and the
connection for DNS rebinding to use, and redirects are followed here, hop by hop, never by
requests itself. Proxies from the environment are ignored: with one, the address checked
would be the proxy's, not the target's.

Loopback is allowed only with ``IMAGINEER_SCRAPE_ALLOW_LOOPBACK`` (tests, development);
private, link-local, multicast, reserved and other non-global addresses never are.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, cast
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError
from urllib3.util import connection as urllib3_connection

MAX_REDIRECTS = 5
ALLOWED_SCHEMES = frozenset({"http", "https"})
UNSAFE_REASONS = frozenset({"unsafe_address", "unsafe_url"})
ROBOTS_MAX_BYTES = 512 * 1024
# robots.txt Crawl-delay is honoured up to this many seconds; beyond it a site is effectively
# asking not to be crawled, and a worker should not sleep for minutes per request.
MAX_CRAWL_DELAY = 30.0


class FetchRefused(Exception):
    """A URL we will not fetch, or a response we will not use, with a reason code and a message."""

    def __init__(self, reason: str, message: str, *, url: str = "", detail: str = ""):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.url = url
        # The message without the URL, to restate it about another URL (a page whose
        # robots.txt was refused is refused for the same reason).
        self.detail = detail or message

    def __str__(self) -> str:
        return self.message


def address_refusal(address: str) -> str | None:
    """What kind of forbidden address this is ("a private address"), or None if it may be used."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:10.0.0.1, 6to4 and Teredo addresses reach the IPv4 address they embed.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            kind = address_refusal(str(embedded))
            return f"an IPv6 address embedding {embedded}, {kind}" if kind else None
    if ip.is_loopback:
        return None if settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK else "a loopback address"
    for test, kind in (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_link_local, "a link-local address"),
        # fec0::/10, deprecated (RFC 3879) but still routed inside some networks; Python counts it global.
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "a site-local address (fec0::/10)"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
    ):
        if test:
            return kind
    return None if ip.is_global else "not a public address"


def url_check(url: str) -> tuple[str, int]:
    """Refuse a URL by its form (scheme, host, literal address) before anything is resolved.

    Returns ``(host, port)``; the connection resolves and checks the host again when it connects.
    """
    if any(character.isspace() or ord(character) < 32 or ord(character) == 127 for character in url):
        raise FetchRefused("invalid_url", f"{url!r} contains spaces or control characters", url=url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchRefused("invalid_url", f"{url} is not a valid URL: {exc}", url=url) from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise FetchRefused(
            "unsafe_url", f"{url} refused: only http and https URLs are fetched, not {scheme or 'none'}", url=url
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise FetchRefused("invalid_url", f"{url} has no host name", url=url)
    if parts.username or parts.password:
        raise FetchRefused("unsafe_url", f"{url} refused: URLs with credentials are not fetched", url=url)
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        kind = address_refusal(host)
        if kind:
            detail = f"refused: {host} is {kind}"
            raise FetchRefused("unsafe_address", f"{url} {detail}", url=url, detail=detail)
    return host, port or (443 if scheme == "https" else 80)


def host_resolve(host: str, port: int) -> list[str]:
    """Resolve ``host`` once and return its addresses, refusing it if any address is unsafe.

    One unsafe address refuses the host: a name that resolves to both a public and a private
    address is how rebinding attacks pick the address they want.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchRefused("network_error", f"failed: {host} could not be resolved ({exc})") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0])
        kind = address_refusal(address)
        if kind:
            shown = f"{host} is {kind}" if host == address else f"{host} resolves to {address}, {kind}"
            raise FetchRefused("unsafe_address", f"refused: {shown}")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchRefused("network_error", f"failed: {host} has no addresses")
    return addresses


class _RobotRules(RobotFileParser):
    """CPython's parser. Its ``read()`` sets these two flags for 401/403 and other 4xx answers;
    we fetch robots.txt ourselves and set them the same way (typeshed leaves them out)."""

    disallow_all: bool
    allow_all: bool


class _PinnedConnectionMixin:
    """Resolve, check every address, then connect to a checked address (never re-resolving)."""

    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        addresses = host_resolve(self._dns_host, self.port)  # type: ignore[attr-defined]
        last_error: OSError | None = None
        for address in addresses:
            try:
                return urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from exc
            except OSError as exc:
                last_error = exc
        # Only ever mixed into an HTTPConnection (below).
        raise NewConnectionError(cast(HTTPConnection, self), f"Failed to connect to {self.host}: {last_error}")


class PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    # HTTPSConnection.connect() wraps the socket from _new_conn() with server_hostname=self.host,
    # so SNI and certificate checks still use the name, not the pinned address.
    pass


class PinnedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = PinnedHTTPConnection


class PinnedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = PinnedHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": PinnedHTTPConnectionPool,
            "https": PinnedHTTPSConnectionPool,
        }

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        raise FetchRefused("unsafe_url", "refused: proxies are not used for scraping")


def session_create() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc from the environment
    adapter = PinnedAdapter(max_retries=0)
    session.adapters.clear()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = settings.IMAGINEER_SCRAPE_USER_AGENT
    return session


@dataclass
class HostThrottle:
    """At most one request per ``delay`` seconds to each host (robots.txt may ask for more)."""

    delay: float
    _last: dict[str, float] = field(default_factory=dict)
    _host_delay: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def host_delay_set(self, host: str, delay: float) -> None:
        self._host_delay[host] = min(max(delay, self.delay), MAX_CRAWL_DELAY)

    def wait(self, host: str) -> None:
        with self._lock:
            delay = self._host_delay.get(host, self.delay)
            last = self._last.get(host)
            now = time.monotonic()
            if last is not None and now - last < delay:
                time.sleep(delay - (now - last))
            self._last[host] = time.monotonic()


def fetch_deadline() -> float:
    """When a response body started now must have arrived (monotonic time)."""
    return time.monotonic() + settings.IMAGINEER_SCRAPE_FETCH_DEADLINE


def body_read(response: requests.Response, sink: IO[bytes] | None, *, limit: int, deadline: float) -> bytes:
    """Stream a response body, refusing it past ``limit`` bytes or ``deadline`` (monotonic time).

    Writes to ``sink`` if given (returns b""), else returns the bytes. The connection is closed
    as soon as a limit is passed, so an oversized body is never downloaded in full.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise FetchRefused(
            "too_large", f"{response.url} is {int(declared):,} bytes, over the {limit:,}-byte limit", url=response.url
        )
    chunks: list[bytes] = []
    received = 0
    try:
        while True:
            # read1 returns whatever has arrived (up to 64 KiB), so the limits are checked as
            # bytes come in; a plain read would wait for the whole chunk from a trickling server.
            chunk = response.raw.read1(64 * 1024, decode_content=True)
            if not chunk:
                break
            received += len(chunk)
            if received > limit:
                raise FetchRefused(
                    "too_large", f"{response.url} passed the {limit:,}-byte limit; download cut off", url=response.url
                )
            if time.monotonic() > deadline:
                raise FetchRefused("timeout", f"{response.url} took too long to download", url=response.url)
            if sink is not None:
                sink.write(chunk)
            else:
                chunks.append(chunk)
    except (ReadTimeoutError, TimeoutError):
        raise FetchRefused("timeout", f"{response.url} stopped sending data", url=response.url) from None
    except (HTTPError, OSError) as exc:
        raise FetchRefused(
            "network_error", f"{response.url} failed while downloading: {exc}", url=response.url
        ) from None
    finally:
        response.close()
    return b"".join(chunks)


class Fetcher:
    """Polite, safe GETs: robots.txt, a per-host delay, timeouts, checked redirects."""

    def __init__(self) -> None:
        self.session = session_create()
        self.throttle = HostThrottle(delay=settings.IMAGINEER_SCRAPE_HOST_DELAY_MS / 1000)
        self.timeout = (settings.IMAGINEER_SCRAPE_CONNECT_TIMEOUT, settings.IMAGINEER_SCRAPE_READ_TIMEOUT)
        self.agent = settings.IMAGINEER_SCRAPE_USER_AGENT
        self._robots: dict[str, RobotFileParser] = {}
        self._robots_failures: dict[str, FetchRefused] = {}

    def close(self) -> None:
        self.session.close()

    def _request(self, url: str) -> requests.Response:
        host, _port = url_check(url)
        self.throttle.wait(host)
        try:
            return self.session.get(url, stream=True, allow_redirects=False, timeout=self.timeout)
        except FetchRefused as exc:
            # Raised inside the connection (resolution or address check): name the URL.
            raise FetchRefused(exc.reason, f"{url} {exc.message}", url=url, detail=exc.message) from None
        except requests.Timeout:
            raise FetchRefused("timeout", f"{url} timed out", url=url) from None
        except requests.RequestException as exc:
            raise FetchRefused("network_error", f"{url} could not be fetched: {exc}", url=url) from None

    def robots_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        parser = self._robots.get(origin)
        if parser is None:
            parser = self._robots[origin] = self._robots_load(origin)
            delay = parser.crawl_delay(self.agent)
            if delay:
                self.throttle.host_delay_set(parts.hostname or "", float(delay))
        if origin in self._robots_failures:
            raise self._robots_failures[origin]
        return parser.can_fetch(self.agent, url)

    def _robots_load(self, origin: str) -> RobotFileParser:
        """Fetch and parse robots.txt the way RFC 9309 asks: 4xx means no rules, 5xx or an
        unreachable server means everything is disallowed, 401/403 too (as CPython does)."""
        parser = _RobotRules(f"{origin}/robots.txt")
        try:
            response = self._follow(f"{origin}/robots.txt", robots=False)
            if response.status_code in (401, 403) or response.status_code >= 500:
                response.close()
                parser.disallow_all = True
            elif response.status_code >= 400:
                response.close()
                parser.allow_all = True
            else:
                body = body_read(response, None, limit=ROBOTS_MAX_BYTES, deadline=fetch_deadline())
                parser.parse(body.decode("utf-8", errors="replace").splitlines())
        except FetchRefused as exc:
            # Refused or unreachable: nothing on this origin is fetched, and each URL says why.
            detail = (
                exc.detail
                if exc.reason in UNSAFE_REASONS
                else f"not fetched: its robots.txt could not be read ({exc.detail})"
            )
            self._robots_failures[origin] = FetchRefused(exc.reason, detail, detail=detail)
            parser.disallow_all = True
        return parser

    def _follow(self, url: str, *, robots: bool) -> requests.Response:
        for _hop in range(MAX_REDIRECTS + 1):
            url_check(url)
            try:
                allowed = not robots or self.robots_allowed(url)
            except FetchRefused as exc:
                raise FetchRefused(exc.reason, f"{url} {exc.detail}", url=url, detail=exc.detail) from None
            if not allowed:
                raise FetchRefused("robots", f"{url} is disallowed by robots.txt", url=url)
            response = self._request(url)
            if not response.is_redirect:
                return response
            location = response.headers.get("Location", "")
            response.close()
            url = urljoin(url, location).split("#", 1)[0]
        raise FetchRefused("too_many_redirects", f"{url}: more than {MAX_REDIRECTS} redirects", url=url)

    def get(self, url: str) -> requests.Response:
        """GET with every hop checked (address, robots.txt); returns the final, streaming response.

        Raises FetchRefused for a refused URL, a network failure or an HTTP error status.
        """
        response = self._follow(url, robots=True)
        if response.status_code >= 400:
            response.close()
            raise FetchRefused("http_error", f"{response.url} answered HTTP {response.status_code}", url=response.url)
        return response


@contextmanager
def fetcher() -> Iterator[Fetcher]:
    instance = Fetcher()
    try:
        yield instance
    finally:
        instance.close()
