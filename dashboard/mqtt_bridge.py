"""MQTT ingestion: the bridge from the broker to `ingest_readings`, the API's own transaction.

It subscribes to `{MQTT_TOPIC_PREFIX}/devices/+/measurements` with QoS 1 on a persistent MQTT 5 session
(a fixed MQTT_CLIENT_ID, clean start off, a session that outlives restarts), so the broker keeps what is
published while the bridge is away. A message is acknowledged (PUBACK) only after the transaction
holding its readings committed: a crash before the commit has the broker deliver it again, and
idempotency on (device, timestamp) stores it once. The writers (dashboard/mqtt_writer.py) validate each
message and store batches of them, one transaction each; a bad message stores nothing and gets the API's
422 body on `{prefix}/devices/{serial}/errors`, the others of its batch still commit.

Runs in `python app.py` when MQTT_URL is set and as `python -m dashboard mqtt-bridge` (deployments, one
process per MQTT_CLIENT_ID; never one per gunicorn worker). The running bridge touches a heartbeat file
that `python -m dashboard mqtt-bridge --check` reads (a container healthcheck).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import queue
import re
import signal
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.orm import Session, sessionmaker

from dashboard.config import Settings
from dashboard.mqtt_payload import errors_topic, measurements_filter, serial_of
from dashboard.mqtt_writer import Ack, Raw, Writer, worker_main

log = logging.getLogger(__name__)
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps the session (and queues for it) a week without the bridge
HEARTBEAT_EVERY_S = 5.0
HEARTBEAT_MAX_AGE_S = 30.0


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> Broker:
        parts = urlsplit(url)
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)  # fmt: skip


def make_client(
    settings: Settings, client_id: str = "", manual_ack: bool = False
) -> tuple[mqtt.Client, Broker]:
    """A paho MQTT 5 client with MQTT_URL's credentials and TLS (MQTT_CA_FILE, else the system's CAs)."""
    broker = Broker.from_url(settings.mqtt_url or "mqtt://127.0.0.1:1883")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5, manual_ack=manual_ack)  # fmt: skip
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set(ca_certs=settings.mqtt_ca_file)
    client.reconnect_delay_set(min_delay=1, max_delay=60)
    return client, broker


def heartbeat_path(settings: Settings) -> Path:
    return (
        settings.data_dir
        / f"mqtt-bridge-{re.sub(r'[^A-Za-z0-9_.-]', '_', settings.mqtt_client_id)}.heartbeat"
    )


def check_heartbeat(settings: Settings, max_age_s: float = HEARTBEAT_MAX_AGE_S) -> tuple[bool, str]:
    """(healthy, why): the running bridge touches its heartbeat every 5 s while it is connected to the
    broker and the database answers; older than `max_age_s`, or missing, is unhealthy."""
    path = heartbeat_path(settings)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return (
            False,
            f"no heartbeat at {path}: is `python -m dashboard mqtt-bridge` running with this DATA_DIR?",
        )
    if age > max_age_s:
        return (
            False,
            f"heartbeat {age:.0f} s old (limit {max_age_s:.0f} s): the bridge lost the broker or the database, or hangs",
        )
    return True, f"ok: heartbeat {age:.1f} s old ({path})"


class MqttBridge:
    """The MQTT connection (paho's network thread) and its writers: `workers=0` stores in a thread of this
    process (`python app.py`; the given session factory), `workers=N` in N processes of their own, each
    taking the devices whose serial hashes to it (one device's messages stay in order)."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session] | None = None, *,
                 workers: int = 0, batch_messages: int = 1000, batch_readings: int = 20_000,
                 batch_wait_s: float = 0.005, session_expiry_s: int = SESSION_EXPIRY_S) -> None:  # fmt: skip
        if workers == 0 and session_factory is None:
            raise ValueError("a bridge storing in its own thread needs the app's session factory")
        self.settings, self.factory, self.workers = settings, session_factory, workers
        self.prefix = settings.mqtt_topic_prefix
        self.options = {"batch_messages": batch_messages, "batch_readings": batch_readings,
                        "batch_wait_s": batch_wait_s}  # fmt: skip
        self.client, self.broker = make_client(settings, settings.mqtt_client_id, manual_ack=True)
        self.client.max_inflight_messages_set(100)  # error replies
        self.client.on_connect, self.client.on_disconnect = self._on_connect, self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.session_expiry_s = session_expiry_s
        # unacknowledged messages the broker may send: each writer's batch committing and its next arriving
        self.receive_maximum = min(65535, 2 * batch_messages * max(1, workers))
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker acknowledged the subscription (SUBACK)
        self.failed = threading.Event()  # a writer process died: stop, so a supervisor restarts the bridge
        self.stats = {"stored": 0, "duplicates": 0, "rejected": 0, "transactions": 0}
        self._generation = 0
        self._stopping = threading.Event()
        self._db_ok = True
        self._writers_ready = 0
        self._threads: list[threading.Thread] = []
        self._procs: list = []
        self._inboxes: list = []

    # ---- the network thread (paho's loop) ----

    def _on_connect(self, client, _userdata, flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker %s:%s refused the bridge: %s; check MQTT_URL's user and password and the "
                      "broker's ACL", self.broker.host, self.broker.port, reason_code)  # fmt: skip
            return
        self._generation += 1
        self.subscribed.clear()
        client.subscribe(measurements_filter(self.prefix), qos=1)
        self.connected.set()
        log.info("MQTT bridge connected to %s:%s as %r (session %s), subscribed to %s", self.broker.host,
                 self.broker.port, self.settings.mqtt_client_id,
                 "resumed" if flags.session_present else "new", measurements_filter(self.prefix))  # fmt: skip

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties) -> None:
        if any(code.is_failure for code in reason_codes):
            log.error("MQTT broker refused the bridge's subscription to %s (%s); check the broker's ACL for "
                      "the bridge's user", measurements_filter(self.prefix), reason_codes)  # fmt: skip
            return
        self.subscribed.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stopping.is_set():
            log.warning("MQTT bridge lost the broker (%s); reconnecting with back-off (1-60 s)", reason_code)

    def _on_message(self, _client, _userdata, msg) -> None:
        try:
            serial = serial_of(msg.topic, self.prefix)
        except UnicodeDecodeError:
            serial = None
        if serial is None:  # not a measurements topic (the subscription's filter lets none through)
            self._ack((msg.mid, msg.qos, self._generation))
            return
        raw = Raw(serial, msg.payload, msg.mid, msg.qos, self._generation)
        self._inboxes[zlib.crc32(serial.encode()) % len(self._inboxes)].put(raw)

    def _ack(self, ack: Ack) -> None:
        # Only on the connection the message came on: after a reconnect the broker delivers it again
        # (same packet id) and that copy is acknowledged when it is stored (as a duplicate).
        mid, qos, generation = ack
        if qos > 0 and generation == self._generation and self.connected.is_set():
            self.client.ack(mid, qos)

    # ---- the writers' reports ----

    def _done(self, acks: list[Ack], stored: int, duplicates: int) -> None:
        self.stats["stored"] += stored
        self.stats["duplicates"] += duplicates
        self.stats["transactions"] += 1
        for ack in acks:
            self._ack(ack)

    def _reject(self, raw: Raw, body: dict) -> None:
        self.stats["rejected"] += 1
        text = json.dumps(body, separators=(",", ":"))
        log.info("MQTT message for device %r rejected: %s", raw.serial[:120], text[:300])
        self.client.publish(errors_topic(self.prefix, raw.serial), text, qos=1)
        self._ack((raw.mid, raw.qos, raw.generation))

    def _db(self, ok: bool) -> None:
        self._db_ok = ok

    def _ready(self) -> None:
        self._writers_ready += 1

    def _results(self, outbox) -> None:
        """Process mode: the writer processes' reports, until they all exited after the stop."""
        handlers = {"done": lambda acks, stored, dup, _ok: self._done(acks, stored, dup), "reject": self._reject,
                    "db": self._db, "ready": self._ready, "exit": lambda: None}  # fmt: skip
        while True:
            try:
                kind, *args = outbox.get(timeout=0.2)
            except queue.Empty:
                if self._stopping.is_set() and not any(p.is_alive() for p in self._procs):
                    return
                continue
            try:
                handlers[kind](*args)
            except Exception:
                log.exception("MQTT bridge: a writer's report %r failed", kind)

    def _beat(self) -> bool:
        if not (self.subscribed.is_set() and self._db_ok) or self.failed.is_set():
            return False
        if self._writers_ready < len(self._procs):  # still starting (importing, connecting)
            return False
        if self._procs and not all(p.is_alive() for p in self._procs):
            log.error("MQTT bridge: a writer process died; stopping (its messages are delivered again)")
            self.failed.set()
            return False
        path = heartbeat_path(self.settings)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(
                json.dumps({"at": datetime.now(UTC).isoformat(), "pid": os.getpid(), **self.stats})
            )
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("MQTT bridge cannot write its heartbeat %s: %s", path, exc)
        return True

    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(HEARTBEAT_EVERY_S if self._beat() else 0.5):
            pass

    # ---- life cycle ----

    def _thread(self, target, name: str, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def start(self) -> MqttBridge:
        if self.workers == 0:
            writer = Writer(
                self.settings, self.factory, self._done, self._reject, self._stopping, **self.options
            )
            writer.on_db = self._db
            self._inboxes = [queue.Queue()]
            self._thread(writer.run, "mqtt-bridge-writer", self._inboxes[0])
        else:
            ctx = mp.get_context("spawn")  # never fork a process with paho's and SQLAlchemy's threads
            self._mp_stopping, outbox = ctx.Event(), ctx.Queue()
            self._inboxes = [ctx.Queue() for _ in range(self.workers)]
            self._procs = [ctx.Process(target=worker_main, name=f"mqtt-writer-{i}", daemon=True,
                                       args=(self.settings, inbox, outbox, self._mp_stopping, self.options))
                           for i, inbox in enumerate(self._inboxes)]  # fmt: skip
            for proc in self._procs:
                proc.start()
            self._thread(self._results, "mqtt-bridge-results", outbox)
        self._thread(self._heartbeat_loop, "mqtt-bridge-heartbeat")
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_s
        properties.ReceiveMaximum = self.receive_maximum
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30, clean_start=False,
                                  properties=properties)  # fmt: skip
        self.client.loop_start()
        log.info("MQTT bridge starting: %s:%s%s, %s", self.broker.host, self.broker.port,
                 " (TLS)" if self.broker.tls else "",
                 f"{self.workers} writer processes" if self.workers else "a writer thread")  # fmt: skip
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish and commit the batches being stored, then disconnect (what is still queued is not
        acknowledged, so the broker delivers it to the next run)."""
        self._stopping.set()
        if self._procs:
            self._mp_stopping.set()
            for proc in self._procs:
                proc.join(timeout)
            for inbox in self._inboxes:  # what the writers left unread is not acknowledged: do not wait
                inbox.cancel_join_thread()  # to flush it into a pipe nobody reads (exit would hang)
        for thread in self._threads:
            thread.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        heartbeat_path(self.settings).unlink(missing_ok=True)
        log.info("MQTT bridge stopped: %s", self.stats)


def run_bridge(settings: Settings, session_factory: sessionmaker[Session], workers: int = 2) -> int:
    """`python -m dashboard mqtt-bridge`: run until SIGTERM or SIGINT (0), or until a writer process
    dies (1), then stop cleanly. SQLite takes one writer: there the writer is a thread."""
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    workers = 0 if settings.embedded_database else max(0, workers)
    bridge = MqttBridge(settings, session_factory, workers=workers).start()
    while not done.wait(1.0) and not bridge.failed.is_set():
        pass
    bridge.stop()
    return 1 if bridge.failed.is_set() else 0
