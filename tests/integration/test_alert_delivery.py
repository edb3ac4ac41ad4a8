"""Alert delivery to real receivers: a signed webhook to a local HTTP server (the test verifies the
signature itself), an e-mail to a local SMTP sink (aiosmtpd), a failing webhook recorded and retried with
back-off, and refused addresses never contacted. On real PostgreSQL."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from dashboard.alert_delivery import address_problem, backoff
from dashboard.alert_rules import create_rule
from dashboard.alerts import run_alerts
from dashboard.auth import user_scope
from dashboard.clock import floor_to, utcnow
from dashboard.schema import Device, Measurement, User
from dashboard.schema_features import AlertEvent

MINUTE = timedelta(minutes=1)


class Receiver:
    """A real HTTP server in a thread that records every POST and answers the statuses it is given."""

    def __init__(self, statuses=(200,)):
        self.requests: list[dict] = []
        self.statuses = list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/aggregator?x=1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Sink:
    """aiosmtpd's handler hook: keeps every message it is sent."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def receiver():
    servers = []

    def start(statuses=(200,)):
        servers.append(Receiver(statuses))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def smtp_sink():
    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
def t0():
    return floor_to(utcnow(), MINUTE) + timedelta(hours=1)  # house B's meter has been silent since creation


def silent_rule(client, world, caller="analyst", **extra):
    body = {"name": "meter offline", "kind": "silent_device", "scope_kind": "house", "scope_id": world.house2,
            "params": {"minutes": 10}} | extra  # fmt: skip
    r = client.post("/api/v1/alert-rules", json=body, headers=world.headers[caller])
    assert r.status_code == 201, r.json
    return r.json


def deliveries(factory, rule_id) -> list[dict]:
    with factory() as s:
        rows = s.scalars(select(AlertEvent).where(AlertEvent.rule_id == rule_id).order_by(AlertEvent.id))
        return [json.loads(e.deliveries_json) for e in rows]


def run_with(app, now, **settings):
    services = app.server.extensions["aggregator"]
    return run_alerts(services.session_factory, dataclasses.replace(services.settings, **settings), now)


def verify(secret: str, header: str, body: bytes, now: int, tolerance_s: int = 300) -> bool:
    """A receiver's check, written from the README's description (not the app's code)."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return abs(now - int(fields["t"])) <= tolerance_s and hmac.compare_digest(expected, fields["v1"])


def test_a_firing_and_a_resolved_webhook_arrive_signed(app, client, world, factory, receiver, t0):
    server = receiver()
    rule = silent_rule(client, world, webhook_url=server.url)
    secret = rule["webhook"]["secret"]
    assert run_with(app, t0)["webhook_delivered"] == 1
    (request,) = server.requests
    assert request["path"] == "/hooks/aggregator?x=1"
    assert request["headers"]["Content-Type"] == "application/json"
    signature = request["headers"]["X-Aggregator-Signature"]
    assert verify(secret, signature, request["body"], int(time.time()))
    assert not verify("another-secret-of-enough-length", signature, request["body"], int(time.time()))
    assert not verify(
        secret, signature, request["body"] + b" ", int(time.time())
    )  # the body is what is signed
    payload = json.loads(request["body"])
    assert payload["state"] == "firing" and payload["rule"]["id"] == rule["id"]
    assert payload["details"]["devices"][0]["device"] == "H2-MAIN" and payload["resolved_at"] is None
    assert deliveries(factory, rule["id"]) == [
        {"webhook:firing": {"status": "delivered", "attempts": 1, "delivered_at": (t0).isoformat() + "Z"}}
    ]
    assert run_with(app, t0 + MINUTE).get("webhook_delivered") is None  # once per episode
    with factory() as s:  # the meter reports again: the episode resolves, and the receiver hears it
        meter = s.scalar(select(Device.id).where(Device.serial == "H2-MAIN"))
        s.add(Measurement(device_id=meter, ts=t0 + MINUTE, power_w=400.0, energy_wh=100.0))
        s.commit()
    assert run_with(app, t0 + 2 * MINUTE)["webhook_delivered"] == 1
    resolved = json.loads(server.requests[1]["body"])
    assert resolved["state"] == "resolved" and resolved["resolved_at"] == (t0 + 2 * MINUTE).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_a_failing_webhook_is_recorded_and_retried_with_back_off(app, client, world, factory, receiver, t0):
    server = receiver(statuses=(500, 503, 200))
    rule = silent_rule(client, world, webhook_url=server.url)
    assert run_with(app, t0)["webhook_pending"] == 1
    (state,) = deliveries(factory, rule["id"])
    first = state["webhook:firing"]
    assert first["attempts"] == 1 and first["error"] == "the receiver answered HTTP 500"
    assert first["next_attempt_at"] == (t0 + backoff(1)).isoformat() + "Z"
    assert run_with(app, t0 + 30 * timedelta(seconds=1)).get("webhook_pending") is None  # not due yet
    assert len(server.requests) == 1
    assert run_with(app, t0 + MINUTE)["webhook_pending"] == 1  # second attempt: 503, then wait 2 minutes
    assert deliveries(factory, rule["id"])[0]["webhook:firing"]["error"] == "the receiver answered HTTP 503"
    assert run_with(app, t0 + 3 * MINUTE)["webhook_delivered"] == 1
    assert deliveries(factory, rule["id"])[0]["webhook:firing"]["attempts"] == 3
    assert len(server.requests) == 3


def test_a_webhook_that_keeps_failing_is_given_up_and_the_run_goes_on(app, client, world, factory, t0):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    rule = silent_rule(client, world, webhook_url=dead)
    other = silent_rule(client, world, name="second rule")
    counts = run_with(app, t0, alert_delivery_attempts=2)
    assert counts["fired"] == 2 and counts["webhook_pending"] == 1
    assert run_with(app, t0 + MINUTE, alert_delivery_attempts=2)["webhook_failed"] == 1
    state = deliveries(factory, rule["id"])[0]["webhook:firing"]
    assert state == {"status": "failed", "attempts": 2, "error": "connection failed (ConnectionRefusedError)"}
    assert deliveries(factory, other["id"]) == [{}]  # in-app only
    with factory() as s:
        assert s.scalar(select(AlertEvent.delivery_pending).where(AlertEvent.rule_id == rule["id"])) is False


def test_an_email_reaches_the_smtp_sink_with_the_right_recipient_and_body(
    app, client, world, factory, smtp_sink, t0
):
    sink, port = smtp_sink
    with factory() as s:
        s.get(User, world.users["consumer2"]).email = "bob@example.org"
        s.commit()
    rule = silent_rule(client, world, caller="consumer2", email=True)
    counts = run_with(
        app, t0, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, smtp_from="alerts@agg.test"
    )
    assert counts["email_delivered"] == 1
    (envelope,) = sink.messages
    assert envelope.rcpt_tos == ["bob@example.org"] and envelope.mail_from == "alerts@agg.test"
    text = envelope.content.decode()
    assert "Subject: [Aggregator] Alert: meter offline" in text
    assert "H2-MAIN" in text and "silent for over 10 min" in text
    assert deliveries(factory, rule["id"])[0]["email:firing"]["status"] == "delivered"


def test_without_smtp_host_the_email_is_recorded_as_not_configured(app, client, world, factory, t0):
    with factory() as s:
        s.get(User, world.users["consumer2"]).email = "bob@example.org"
        s.commit()
    rule = silent_rule(client, world, caller="consumer2", email=True)
    run_with(app, t0, smtp_host=None)
    state = deliveries(factory, rule["id"])[0]["email:firing"]
    assert state["status"] == "pending" and "SMTP_HOST" in state["error"]


def test_link_local_and_metadata_addresses_are_never_contacted(app, client, world, factory, t0):
    for address in (
        "169.254.169.254",
        "fe80::1",
        "100.100.100.200",
        "::ffff:169.254.1.1",
        "0.0.0.0",
        "224.0.0.1",
    ):
        assert address_problem(address, allow_link_local=False), address
    assert address_problem("169.254.169.254", allow_link_local=True) is None
    assert address_problem("0.0.0.0", allow_link_local=True)  # never, whatever the setting
    assert address_problem("127.0.0.1", allow_link_local=False) is None
    assert address_problem("10.1.2.3", allow_link_local=False) is None
    # a rule saved while the setting allowed it is refused at delivery once it does not
    with factory() as s:
        body = {"name": "metadata", "kind": "silent_device", "scope_kind": "house", "scope_id": world.house2,
                "params": {"minutes": 10}, "webhook_url": "http://169.254.169.254/latest/meta-data/"}  # fmt: skip
        rule_id = create_rule(
            s, user_scope(s, s.get(User, world.users["analyst"])), body, allow_link_local=True
        ).id
        s.commit()
    run_with(app, t0, alert_webhook_allow_link_local=False)
    state = deliveries(factory, rule_id)[0]["webhook:firing"]
    assert state["status"] == "pending" and "link-local" in state["error"]
