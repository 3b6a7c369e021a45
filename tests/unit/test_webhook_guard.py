"""The SSRF guard: which webhook URLs and addresses are refused, at registration and send."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from pacioli.gateways.webhooks import (
    InvalidWebhookUrl,
    TargetGuard,
    TargetPolicy,
    WebhookHostUnresolvable,
    WebhookSender,
    WebhookUrlNotAllowed,
    refusal_reason,
)

STRICT = TargetPolicy()


def resolver(table: dict[str, list[str]]):
    """A resolver answering from `table`; other names do not resolve."""
    calls: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append((host, port))
        if host not in table:
            raise OSError(f"{host}: name or service not known")
        return table[host]

    resolve.calls = calls
    return resolve


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # cloud metadata services live here
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fd12:3456::1", "private"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:10.0.0.1", "private"),
    ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
    ("2002:a00:1::", "private"),  # 6to4 around 10.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around 169.254.169.254
    ("2001:db8::1", "private"),  # documentation range
])
def test_non_public_addresses_are_refused(address, reason):
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", [
    "93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::",
])
def test_public_addresses_pass(address):
    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("url", [
    "http://hooks.example.com/x",  # plain http without the setting
    "ftp://hooks.example.com/x",
    "hooks.example.com/x",
    "https:///x",
    "https://user:secret@hooks.example.com/x",
    "https://hooks.example.com/" + "a" * 2048,
    "https://exa mple.com/",
])
def test_malformed_or_non_https_urls_are_invalid(url):
    guard = TargetGuard(STRICT, resolver=resolver({"hooks.example.com": ["93.184.215.14"]}))
    with pytest.raises(InvalidWebhookUrl):
        guard.check_registration(url)


def test_http_is_accepted_when_the_policy_allows_it():
    guard = TargetGuard(TargetPolicy(allow_http=True),
                        resolver=resolver({"hooks.example.com": ["93.184.215.14"]}))
    assert guard.check_registration("http://hooks.example.com/x") == "http://hooks.example.com/x"


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook",
    "https://10.1.2.3:8443/hook",
    "https://[::1]/hook",
    "https://[fe80::1]/hook",
    "https://[::ffff:192.168.0.1]/hook",
    "https://169.254.169.254/latest/meta-data",
])
def test_literal_private_addresses_are_refused_without_dns(url):
    resolve = resolver({})
    with pytest.raises(WebhookUrlNotAllowed):
        TargetGuard(STRICT, resolver=resolve).check_registration(url)
    assert resolve.calls == []


def test_a_name_resolving_to_a_private_address_is_refused():
    guard = TargetGuard(STRICT, resolver=resolver({"intranet.example.com": ["10.0.0.7"]}))
    with pytest.raises(WebhookUrlNotAllowed, match="10.0.0.7, a private address"):
        guard.check_registration("https://intranet.example.com/hook")


def test_a_name_with_one_private_address_among_public_ones_is_refused():
    guard = TargetGuard(STRICT, resolver=resolver(
        {"mixed.example.com": ["93.184.215.14", "2606:4700::1", "fd00::5"]}))
    with pytest.raises(WebhookUrlNotAllowed, match="fd00::5"):
        guard.target("https://mixed.example.com/hook")


def test_a_name_resolving_to_an_ipv6_loopback_is_refused():
    guard = TargetGuard(STRICT, resolver=resolver({"six.example.com": ["::1"]}))
    with pytest.raises(WebhookUrlNotAllowed, match="loopback"):
        guard.target("https://six.example.com/hook")


def test_localhost_is_refused_through_the_system_resolver():
    with pytest.raises(WebhookUrlNotAllowed):
        TargetGuard(STRICT).check_registration("https://localhost/hook")


def test_the_resolver_is_asked_with_the_urls_port_and_punycode_host():
    resolve = resolver({"xn--bcher-kva.example": ["93.184.215.14"]})
    TargetGuard(STRICT, resolver=resolve).check_registration("https://bücher.example:8443/x")
    assert resolve.calls == [("xn--bcher-kva.example", 8443)]


def test_an_unresolvable_name_is_accepted_at_registration_but_not_at_delivery():
    guard = TargetGuard(STRICT, resolver=resolver({}))
    assert guard.check_registration("https://not-yet.example.com/x") == \
        "https://not-yet.example.com/x"
    with pytest.raises(WebhookHostUnresolvable):
        guard.target("https://not-yet.example.com/x")


def test_private_targets_pass_when_the_policy_allows_them():
    guard = TargetGuard(TargetPolicy(allow_private=True),
                        resolver=resolver({"intranet.example.com": ["10.0.0.7"]}))
    target = guard.target("https://intranet.example.com/hook")
    assert target.address == "10.0.0.7"


def test_the_sender_connects_to_the_checked_address_with_the_urls_host_and_sni():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    guard = TargetGuard(STRICT, resolver=resolver({"hooks.example.com": ["93.184.215.14"]}))
    sender = WebhookSender(guard, timeout_s=1, transport=httpx.MockTransport(handler))
    result = sender.send("https://hooks.example.com:8443/in?x=1", msg_id="evt_1", body="{}",
                         secrets_=["whsec_" + "A" * 44])

    assert result.succeeded and result.status_code == 204
    request = seen[0]
    assert request.url.host == "93.184.215.14" and request.url.port == 8443
    assert request.url.path == "/in" and request.url.params["x"] == "1"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.headers["webhook-id"] == "evt_1"


def test_the_sender_refuses_a_name_that_now_resolves_to_a_private_address():
    seen: list[httpx.Request] = []
    table = {"rebind.example.com": ["93.184.215.14"]}
    guard = TargetGuard(STRICT, resolver=resolver(table))
    guard.check_registration("https://rebind.example.com/x")
    table["rebind.example.com"] = ["127.0.0.1"]
    sender = WebhookSender(guard, timeout_s=1, transport=httpx.MockTransport(
        lambda request: seen.append(request) or httpx.Response(200)))

    result = sender.send("https://rebind.example.com/x", msg_id="evt_1", body="{}",
                         secrets_=["whsec_" + "A" * 44])

    assert not result.succeeded and result.status_code is None
    assert result.error.startswith("address_not_allowed")
    assert seen == []


def test_the_sender_reports_redirects_as_failures_without_following_them():
    guard = TargetGuard(STRICT, resolver=resolver({"hooks.example.com": ["93.184.215.14"]}))
    sender = WebhookSender(guard, timeout_s=1, transport=httpx.MockTransport(
        lambda request: httpx.Response(302, headers={"location": "http://127.0.0.1/"})))

    result = sender.send("https://hooks.example.com/x", msg_id="evt_1", body="{}",
                         secrets_=["whsec_" + "A" * 44])
    assert result.status_code == 302 and not result.succeeded


def test_the_sender_reports_connection_failures_and_timeouts_as_errors():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    guard = TargetGuard(STRICT, resolver=resolver({"hooks.example.com": ["93.184.215.14"]}))
    for handler, error in ((refuse, "connection_error: connection refused"),
                           (time_out, "timeout")):
        sender = WebhookSender(guard, timeout_s=1, transport=httpx.MockTransport(handler))
        result = sender.send("https://hooks.example.com/x", msg_id="evt_1", body="{}",
                             secrets_=["whsec_" + "A" * 44])
        assert result.status_code is None and result.error == error
