"""SSRF protection of the scraper's HTTP client, against a real server on 127.0.0.1.

Every test runs under a guard that fails it if anything connects to an address other than
127.0.0.1, so a broken check cannot send traffic off the machine.
"""

from __future__ import annotations

import itertools
import socket

import pytest

from albums.services.net import (
    Fetcher,
    FetchRefused,
    address_refusal,
    body_read,
    fetch_deadline,
    fetcher,
    url_check,
)
from albums.tests.scrape_site import connection_guard, site_running, tls_certificate, tls_site_running


@pytest.fixture(scope="module")
def site():
    with site_running() as running:
        running.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        running.add("/page", "<html><body>hello</body></html>")
        yield running


@pytest.fixture(autouse=True)
def guard(monkeypatch, settings):
    settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK = False
    settings.IMAGINEER_SCRAPE_HOST_DELAY_MS = 0
    with connection_guard(monkeypatch) as violations:
        yield violations
    assert not violations, f"connections to forbidden addresses were attempted: {violations}"


@pytest.fixture
def loopback_allowed(settings):
    settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK = True


@pytest.fixture
def resolve(monkeypatch):
    """Make chosen host names resolve to chosen addresses, in this process (a list per call)."""
    real = socket.getaddrinfo
    answers: dict[str, list[list[str]]] = {}
    calls: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            calls.append(host)
            queue = answers[host]
            addresses = queue.pop(0) if len(queue) > 1 else queue[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def set_answers(host: str, *per_call: list[str]) -> list[str]:
        answers[host] = list(per_call)
        return calls

    return set_answers


def refused(url: str) -> FetchRefused:
    with fetcher() as client, pytest.raises(FetchRefused) as caught:
        client.get(url)
    return caught.value


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://10.1.2.3/", "10.1.2.3 is a private address"),
        ("http://192.168.0.10:8080/admin", "private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::ffff:10.0.0.1]/", "embedding 10.0.0.1, a private address"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fec0::1]/", "fec0::1 is a site-local address"),
        ("http://[feff:ffff::1]/", "site-local"),
        ("http://0.0.0.0:80/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://100.64.0.1/", "not a public address"),
    ],
)
def test_private_and_special_addresses_are_refused_before_connecting(site, url, words):
    error = refused(url)
    assert error.reason == "unsafe_address"
    assert words in error.message
    assert url in error.message


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://127.0.0.1:70/", "data:,x"])
def test_schemes_other_than_http_are_refused(url):
    error = refused(url)
    assert error.reason == "unsafe_url"
    assert "only http and https" in error.message


def test_loopback_is_refused_unless_the_setting_allows_it(site, settings):
    seen = len(site.requests)
    error = refused(site.url("/page"))
    assert error.reason == "unsafe_address"
    assert "127.0.0.1 is a loopback address" in error.message
    assert len(site.requests) == seen

    settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK = True
    with fetcher() as client:
        response = client.get(site.url("/page"))
        assert response.status_code == 200
        response.close()


def test_the_loopback_setting_never_opens_private_ranges(loopback_allowed):
    assert address_refusal("127.0.0.1") is None
    assert address_refusal("::1") is None
    for address in ("10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "fd00::1", "::ffff:192.168.1.1"):
        assert address_refusal(address), address


def test_a_hostname_resolving_to_loopback_is_refused_at_connect_time(site):
    # "localhost" passes the URL check (it is a name); the connection resolves it and refuses.
    seen = len(site.requests)
    error = refused(f"http://localhost:{site.port}/page")
    assert error.reason == "unsafe_address"
    assert f"http://localhost:{site.port}/page refused: localhost resolves to" in error.message
    assert "loopback address" in error.message
    assert len(site.requests) == seen


def test_a_name_with_one_private_address_among_public_ones_is_refused(site, resolve, loopback_allowed):
    resolve("mixed.example", ["127.0.0.1", "10.0.0.7"])
    error = refused(f"http://mixed.example:{site.port}/page")
    assert "mixed.example resolves to 10.0.0.7, a private address" in error.message


def test_a_redirect_to_a_private_address_is_refused(site, loopback_allowed):
    site.redirect("/to-private", "http://10.0.0.9/secret")
    site.redirect("/to-file", "file:///etc/passwd")
    site.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/", status=307)
    for path, reason in (
        ("/to-private", "unsafe_address"),
        ("/to-file", "unsafe_url"),
        ("/to-metadata", "unsafe_address"),
    ):
        error = refused(site.url(path))
        assert error.reason == reason, error.message
        assert site.requested(path)


def test_redirects_are_followed_hop_by_hop_with_a_limit(site, loopback_allowed):
    site.redirect("/hop", "/page")
    with fetcher() as client:
        response = client.get(site.url("/hop"))
        assert response.url == site.url("/page")
        response.close()
    site.redirect("/loop", "/loop")
    assert refused(site.url("/loop")).reason == "too_many_redirects"


def test_a_rebinding_name_is_checked_at_each_connection(site, resolve, loopback_allowed):
    # Safe at the first lookup (robots.txt is fetched), private at the next (the page). The
    # check runs on the address each connection is about to use, so the switch is caught there,
    # with no connection to 10.0.0.7 (the guard fails the test otherwise).
    calls = resolve("rebind.example", ["127.0.0.1"], ["10.0.0.7"])
    error = refused(f"http://rebind.example:{site.port}/page")
    assert error.reason == "unsafe_address"
    assert "rebind.example resolves to 10.0.0.7, a private address" in error.message
    assert calls.count("rebind.example") == 2  # one lookup per connection, never a second one to connect
    path, headers = site.requests[-1]
    assert path == "/robots.txt"
    assert headers["Host"] == f"rebind.example:{site.port}"  # the name is kept, only the address is pinned


def test_a_name_is_resolved_once_and_the_connection_uses_that_address(site, resolve, loopback_allowed):
    calls = resolve("pinned.example", ["127.0.0.1"])
    with fetcher() as client:
        response = client.get(f"http://pinned.example:{site.port}/page")
        assert response.status_code == 200
        assert b"hello" in response.content
    assert calls.count("pinned.example") == 2  # robots.txt and the page
    assert site.requests[-1][1]["Host"] == f"pinned.example:{site.port}"
    assert "Imagineer" in site.requests[-1][1]["User-Agent"]


def test_proxies_from_the_environment_are_ignored(site, monkeypatch, loopback_allowed):
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("http_proxy", "http://10.0.0.1:3128")
    with fetcher() as client:
        response = client.get(site.url("/page"))
        assert response.status_code == 200
        response.close()


def test_url_check_names_the_problem():
    with pytest.raises(FetchRefused, match="no host name"):
        url_check("http:///path")
    with pytest.raises(FetchRefused, match="credentials"):
        url_check("http://user:pw@example.com/")
    with pytest.raises(FetchRefused, match="control characters"):
        url_check("http://example.com/\r\nX-Injected: 1")
    with pytest.raises(FetchRefused, match="not a valid URL"):
        url_check("http://example.com:99999/")
    assert url_check("https://example.com/a.png") == ("example.com", 443)


def test_a_fetcher_sends_its_user_agent(site, loopback_allowed):
    client = Fetcher()
    try:
        client.get(site.url("/page")).close()
    finally:
        client.close()
    assert "Imagineer" in site.requests[-1][1]["User-Agent"]


def test_requests_to_one_host_are_spaced_by_the_host_delay(site, settings, loopback_allowed):
    settings.IMAGINEER_SCRAPE_HOST_DELAY_MS = 150
    first = len(site.times)
    with fetcher() as client:
        for _ in range(3):
            client.get(site.url("/page")).close()
    times = site.times[first:]
    assert len(times) == 4  # robots.txt once, then the page three times
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) >= 0.14


def test_robots_crawl_delay_is_honoured(settings, loopback_allowed):
    with site_running() as slow:
        slow.add("/robots.txt", "User-agent: *\nCrawl-delay: 1\n", "text/plain")
        slow.add("/page", "ok")
        with fetcher() as client:
            client.get(slow.url("/page")).close()
            client.get(slow.url("/page")).close()
    assert slow.times[2] - slow.times[1] >= 0.95


def test_a_silent_server_and_a_trickling_one_time_out(site, settings, loopback_allowed):
    settings.IMAGINEER_SCRAPE_READ_TIMEOUT = 1
    settings.IMAGINEER_SCRAPE_FETCH_DEADLINE = 1
    site.hang("/silent", 3)
    assert refused(site.url("/silent")).reason == "timeout"

    # Each byte arrives well within the read timeout; the whole-response deadline stops it.
    site.trickle("/trickle.png", interval=0.1, count=100)
    with fetcher() as client:
        response = client.get(site.url("/trickle.png"))
        with pytest.raises(FetchRefused) as caught:
            body_read(response, None, limit=10_000, deadline=fetch_deadline())
    assert caught.value.reason == "timeout"


def test_https_to_a_pinned_address_keeps_sni_and_certificate_checks(tmp_path, resolve, loopback_allowed):
    ca, cert, key = tls_certificate(tmp_path, "secure.example")
    with tls_site_running(cert, key) as secure:
        secure.add("/robots.txt", "", "text/plain")
        secure.add("/page", "over tls")
        resolve("secure.example", ["127.0.0.1"])
        resolve("other.example", ["127.0.0.1"])
        with fetcher() as client:
            client.session.verify = ca
            response = client.get(f"https://secure.example:{secure.port}/page")
            assert response.content == b"over tls"
            # Same address, another name: the certificate does not match, so it is refused.
            with pytest.raises(FetchRefused, match="could not be fetched"):
                client.get(f"https://other.example:{secure.port}/page")
