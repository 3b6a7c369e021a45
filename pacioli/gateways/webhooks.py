"""Merchant webhooks on the wire: Standard Webhooks signing, the SSRF guard, the HTTP sender.

Signing follows the Standard Webhooks specification (https://www.standardwebhooks.com),
so any receiver using one of its libraries verifies our requests unchanged. Each request
carries `webhook-id` (the same on every retry of one event to one endpoint),
`webhook-timestamp` (unix seconds of this attempt) and `webhook-signature`, a
space-separated list of `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per
live secret (two while a rotated-out secret is in its grace period). Secrets are
`whsec_` + base64 of 32 random bytes. The HMAC itself is the `standardwebhooks`
package's (the reference implementation), not ours.

The guard: a webhook URL is the merchant's to choose, so without care it would let a
merchant make Pacioli call its own private network (server-side request forgery). Every
address the URL's host resolves to must be globally routable: loopback, private,
link-local, unspecified, multicast, reserved and shared (CGNAT) addresses are refused,
also when embedded in an IPv6 address (IPv4-mapped, 6to4, NAT64). The sender connects to
the address it checked (the request goes to the IP, with the Host header and TLS server
name set to the URL's host), so a DNS answer that changes between the check and the
connection (DNS rebinding) cannot redirect it. `TargetPolicy` can allow private targets
and plain http, for development and tests.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import re
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from pacioli.ledger.domain.errors import InvalidCommand, Rejected

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
URL_LENGTH_MAX = 2048
USER_AGENT = "Pacioli-Webhooks/1"
# The longest error text kept for an attempt.
ERROR_LENGTH_MAX = 300

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# A host name and port to the addresses they resolve to; raises OSError if they do not.
Resolver = Callable[[str, int], Sequence[str]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# A host as httpx gives it: a (punycode) domain name, an IPv4 address, or an IPv6 one.
_HOST_RE = re.compile(r"[A-Za-z0-9_.-]+|[0-9A-Fa-f:.]+")


class InvalidWebhookUrl(InvalidCommand):
    """A webhook URL is an absolute https URL with a host and no credentials."""

    code = "invalid_webhook_url"


class WebhookUrlNotAllowed(Rejected):
    """The URL's host is a loopback, private, link-local or other non-public address."""

    code = "webhook_url_not_allowed"


class WebhookHostUnresolvable(Rejected):
    """The URL's host name does not resolve to any address."""

    code = "webhook_host_unresolvable"


# Signing.


def new_secret() -> str:
    """A fresh signing secret, `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature_headers(
    msg_id: str, body: str, secrets_: Sequence[str], sent_at: datetime
) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, signed with every secret given."""
    sent_at = sent_at.astimezone(UTC).replace(microsecond=0)
    signatures = [Webhook(secret).sign(msg_id, sent_at, body) for secret in secrets_]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


# The guard.


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Which targets the guard lets through beyond public https URLs."""

    allow_private: bool = False
    allow_http: bool = False


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system resolver). Raises: OSError."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal_reason(address: IPAddress) -> str | None:
    """Why webhooks may not go to `address`, or None if it is globally routable."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal_reason(embedded)
    for reason, matches in (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    ):
        if matches:
            return reason
    return None


def parse_url(url: str, policy: TargetPolicy) -> httpx.URL:
    """The URL, checked for form: scheme, host, no credentials, length.

    Raises: InvalidWebhookUrl.
    """
    if len(url) > URL_LENGTH_MAX:
        raise InvalidWebhookUrl(f"the URL has {len(url)} characters; the limit is "
                                f"{URL_LENGTH_MAX}")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise InvalidWebhookUrl(f"the URL is malformed: {error}") from None
    schemes = ("https", "http") if policy.allow_http else ("https",)
    if parsed.scheme not in schemes:
        raise InvalidWebhookUrl(f"the URL must use {' or '.join(schemes)}")
    if not parsed.host:
        raise InvalidWebhookUrl("the URL has no host")
    if not _HOST_RE.fullmatch(parsed.raw_host.decode("ascii")):
        raise InvalidWebhookUrl("the URL's host is not a domain name or an IP address")
    if parsed.userinfo:
        raise InvalidWebhookUrl("the URL may not carry a user name or password")
    return parsed


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt goes: the URL and the checked address to connect to."""

    url: httpx.URL
    address: str


class TargetGuard:
    """Checks webhook URLs at registration and picks a checked address at each delivery."""

    def __init__(self, policy: TargetPolicy, *, resolver: Resolver = resolve_host) -> None:
        self.policy = policy
        self._resolver = resolver

    def check_registration(self, url: str) -> str:
        """The URL as it will be stored, once its form and addresses pass.

        A host that does not resolve yet is accepted (its DNS may not be set up); every
        delivery checks again.
        Raises: InvalidWebhookUrl, WebhookUrlNotAllowed.
        """
        parsed = parse_url(url, self.policy)
        with contextlib.suppress(WebhookHostUnresolvable):
            self._checked_addresses(parsed)
        return str(parsed)

    def target(self, url: str) -> Target:
        """The URL and the first of its addresses, all of which passed the check.

        Raises: InvalidWebhookUrl, WebhookUrlNotAllowed, WebhookHostUnresolvable.
        """
        parsed = parse_url(url, self.policy)
        return Target(parsed, self._checked_addresses(parsed)[0])

    def _checked_addresses(self, url: httpx.URL) -> list[str]:
        """Raises: WebhookUrlNotAllowed, WebhookHostUnresolvable."""
        host = url.raw_host.decode("ascii")
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = self._resolve(host, url.port or (443 if url.scheme == "https" else 80))
        if not self.policy.allow_private:
            for address in addresses:
                reason = refusal_reason(ipaddress.ip_address(address.split("%", 1)[0]))
                if reason is not None:
                    raise WebhookUrlNotAllowed(
                        f"{url.host} resolves to {address}, a {reason} address"
                    )
        return addresses

    def _resolve(self, host: str, port: int) -> list[str]:
        try:
            addresses = list(self._resolver(host, port))
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise WebhookHostUnresolvable(f"{host} does not resolve to any address")
        return addresses


# The sender.


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one HTTP attempt came to: a status code, or an error, and its latency."""

    status_code: int | None
    error: str | None
    latency_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """The receiver answered 410 Gone: it asks not to be called again."""
        return self.status_code == 410


class WebhookSender:
    """Sends one signed webhook request per call; never raises for the network's failures.

    Redirects are not followed (a 3xx is a failed attempt: it could lead anywhere) and
    connections are not reused (each attempt's TLS session is checked against its own
    host name). `timeout_s` bounds each network step of an attempt (connect, write,
    read of the response head); the body of the response is not read.
    """

    def __init__(
        self,
        guard: TargetGuard,
        *,
        timeout_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.guard = guard
        self.timeout_s = timeout_s
        self._clock = clock
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def send(self, url: str, *, msg_id: str, body: str, secrets_: Sequence[str]) -> AttemptResult:
        """POST `body` to `url`, signed with `secrets_` as of now."""
        started = time.monotonic()
        try:
            target = self.guard.target(url)
        except InvalidWebhookUrl as error:
            return _failure(started, f"invalid_url: {error.detail}")
        except WebhookUrlNotAllowed as error:
            return _failure(started, f"address_not_allowed: {error.detail}")
        except WebhookHostUnresolvable as error:
            return _failure(started, f"host_unresolvable: {error.detail}")
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": target.url.netloc.decode("ascii"),
            **signature_headers(msg_id, body, secrets_, self._clock()),
        }
        extensions = {}
        if target.url.scheme == "https" and target.address != target.url.host:
            extensions["sni_hostname"] = target.url.raw_host.decode("ascii")
        request = self._client.build_request(
            "POST", target.url.copy_with(host=target.address), content=body.encode(),
            headers=headers, extensions=extensions,
        )
        try:
            response = self._client.send(request, stream=True)
        except httpx.TimeoutException:
            return _failure(started, "timeout")
        except httpx.ConnectError as error:
            return _failure(started, f"connection_error: {error}")
        except httpx.HTTPError as error:
            return _failure(started, f"protocol_error: {error}")
        response.close()
        return AttemptResult(response.status_code, None, _elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _failure(started: float, error: str) -> AttemptResult:
    return AttemptResult(None, error[:ERROR_LENGTH_MAX], _elapsed_ms(started))
