"""Sending an alert out: signed webhooks and e-mail, each attempt recorded on the event, never raised.

Webhooks: `POST` of the JSON payload with `X-Aggregator-Signature: t=<unix seconds>,v1=<hex>`, where the
hex is HMAC-SHA256 under the rule's secret of `<t>.<raw body>` (Stripe's scheme; the README shows how to
verify it). No redirect is followed. The host is resolved once and the connection made to that address
(no second lookup a DNS rebinding could change), and refused when it is unspecified, multicast or
broadcast, or (unless ALERT_WEBHOOK_ALLOW_LINK_LOCAL=1) link-local or a cloud metadata address:
169.254.0.0/16 and fe80::/10 (where AWS, GCP and Azure answer at 169.254.169.254), 100.100.100.200
(Alibaba) and fd00:ec2::254 (AWS over IPv6). Loopback and private networks are allowed: an aggregator's
own receivers often live there, and only admins and analysts may set webhooks.

E-mail: the standard library's smtplib and email, with SMTP_* settings (STARTTLS by default).

A failed attempt is retried by later evaluation runs with exponential back-off (1, 2, 4, 8 ... minutes,
at most an hour) until ALERT_DELIVERY_ATTEMPTS attempts; then the delivery is marked failed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import smtplib
import socket
import ssl
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

from dashboard.config import Settings

SIGNATURE_HEADER = "X-Aggregator-Signature"
MAX_BACKOFF = timedelta(hours=1)
MAX_RESPONSE_BYTES = 65536
ALWAYS_REFUSED = {
    "unspecified": ("0.0.0.0/8", "::/128"),
    "multicast": ("224.0.0.0/4", "ff00::/8"),
    "broadcast": ("255.255.255.255/32",),
}
LINK_LOCAL = {
    "link-local": ("169.254.0.0/16", "fe80::/10"),
    "cloud metadata": ("100.100.100.200/32", "fd00:ec2::254/128"),
}


class DeliveryFailed(Exception):
    """One attempt failed; the message (never the URL, which may hold a token) is recorded on the event."""


def _networks(groups: dict) -> list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    return [(name, ipaddress.ip_network(cidr)) for name, cidrs in groups.items() for cidr in cidrs]


REFUSED, LINK_LOCAL_NETS = _networks(ALWAYS_REFUSED), _networks(LINK_LOCAL)


def address_problem(address: str, allow_link_local: bool) -> str | None:
    """Why a webhook may not go to this IP address, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    groups = REFUSED + ([] if allow_link_local else LINK_LOCAL_NETS)
    for name, network in groups:
        if ip.version == network.version and ip in network:
            hint = "" if name in ALWAYS_REFUSED else " (ALERT_WEBHOOK_ALLOW_LINK_LOCAL=1 allows it)"
            return f"webhooks may not go to {name} addresses ({network}){hint}"
    return None


def literal_address_problem(host: str, allow_link_local: bool) -> str | None:
    """`address_problem` for a host given as an IP address; None for a name (checked when it is resolved)."""
    try:
        return address_problem(host.strip("[]"), allow_link_local)
    except ValueError:
        return None


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _resolve(host: str, port: int, allow_link_local: bool) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryFailed(f"cannot resolve the webhook's host ({exc.__class__.__name__})") from None
    addresses = [info[4][0] for info in infos]
    for address in addresses:  # every address a name has must be allowed, not only the first
        problem = address_problem(address, allow_link_local)
        if problem:
            raise DeliveryFailed(problem)
    return addresses[0]


class _Pinned(http.client.HTTPConnection):
    """Connects to the address resolved and checked before, whatever the name resolves to now."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self):
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def post_webhook(url: str, secret: str, payload: dict, timeout_s: float, allow_link_local: bool,
                 now: float | None = None) -> int:  # fmt: skip
    """POST the signed payload; the HTTP status when 2xx, else DeliveryFailed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryFailed("the webhook URL is not http(s)")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _resolve(parts.hostname, port, allow_link_local)
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    stamp = int(now if now is not None else time.time())
    connection = (_PinnedTLS if parts.scheme == "https" else _Pinned)(
        parts.hostname, port, address, timeout_s
    )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Content-Type": "application/json", "User-Agent": "aggregator-alerts/1",
               SIGNATURE_HEADER: signature(secret, stamp, body), "X-Aggregator-Event": str(payload.get("event_id"))}  # fmt: skip
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
    except TimeoutError:
        raise DeliveryFailed(f"no answer within {timeout_s:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryFailed(f"connection failed ({exc.__class__.__name__})") from None
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise DeliveryFailed(f"the receiver answered HTTP {response.status}")
    return response.status


def send_email(settings: Settings, to: str, subject: str, text: str) -> None:
    """One plain-text message through SMTP_HOST; DeliveryFailed on any SMTP or network error."""
    if not settings.smtp_host:
        raise DeliveryFailed("e-mail is not configured: set SMTP_HOST (and SMTP_PORT, SMTP_FROM)")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.smtp_from, to, subject
    message.set_content(text)
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.alert_delivery_timeout_s
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP failed ({exc.__class__.__name__}: {str(exc)[:120]})") from None


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt after `attempts` failed ones: 1, 2, 4 ... minutes, at most an hour."""
    return min(timedelta(minutes=2 ** max(0, attempts - 1)), MAX_BACKOFF)


def record_attempt(state: dict, error: str | None, now: datetime, max_attempts: int) -> dict:
    """A delivery's state after one attempt (error None: delivered)."""
    attempts = int(state.get("attempts", 0)) + 1
    if error is None:
        return {"status": "delivered", "attempts": attempts, "delivered_at": now.isoformat() + "Z"}
    if attempts >= max_attempts:
        return {"status": "failed", "attempts": attempts, "error": error}
    return {"status": "pending", "attempts": attempts, "error": error,
            "next_attempt_at": (now + backoff(attempts)).isoformat() + "Z"}  # fmt: skip


def due(state: dict, now: datetime) -> bool:
    if state.get("status") != "pending":
        return False
    at = state.get("next_attempt_at")
    return at is None or datetime.fromisoformat(at.removesuffix("Z")) <= now
