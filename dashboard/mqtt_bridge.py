"""MQTT ingestion: the bridge from the broker to `ingest_readings`, the API's own transaction.

It subscribes to `{MQTT_TOPIC_PREFIX}/devices/+/measurements` with QoS 1 on a persistent MQTT 5 session
(a fixed MQTT_CLIENT_ID, clean start off, a session that outlives restarts), so the broker keeps what is
published while the bridge is away. A message is acknowledged (PUBACK) only after the transaction
holding its readings committed: a crash before the commit has the broker deliver it again, and
idempotency on (device, timestamp) stores it once. Messages are validated one by one as they arrive
(the network thread), then stored in batches (the writer thread: up to `batch_messages` messages or
`batch_readings` readings, waiting at most `batch_wait_s` for more). A bad message stores nothing and
gets the API's 422 body on `{prefix}/devices/{serial}/errors`; the others of its batch still commit.

Runs in `python app.py` when MQTT_URL is set and as `python -m dashboard mqtt-bridge` (deployments, one
process per MQTT_CLIENT_ID; never one per gunicorn worker). The running bridge touches a heartbeat file
that `python -m dashboard mqtt-bridge --check` reads (a container healthcheck).
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import queue
import re
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from dashboard.config import Settings
from dashboard.errors import DomainError, ValidationFailed
from dashboard.ingest import ingest_readings
from dashboard.mqtt_payload import error_body, errors_topic, measurements_filter, parse_message, serial_of
from dashboard.readings import Bounds, Reading
from dashboard.scope import system_scope

log = logging.getLogger(__name__)
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps the session (and queues for it) a week without the bridge
HEARTBEAT_EVERY_S = 5.0
HEARTBEAT_MAX_AGE_S = 30.0
OUTAGE_RETRY_S = (0.5, 30.0)  # database away: retry the batch, doubling from 0.5 s up to 30 s


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


@dataclass
class Message:
    serial: str
    readings: list[Reading]
    mid: int
    qos: int
    generation: int  # the connection it came on: a packet id is only acknowledged on that connection


def _is_outage(exc: BaseException) -> bool:
    """The database is away (or the transaction hit a deadlock): retry, never reject the messages."""
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError):
        return True
    return type(exc).__name__ in ("OperationalError", "InterfaceError")  # psycopg2's own, from COPY


class MqttBridge:
    def __init__(self, settings: Settings, session_factory: sessionmaker[Session], *, batch_messages: int = 1000,
                 batch_readings: int = 20_000, batch_wait_s: float = 0.005,
                 session_expiry_s: int = SESSION_EXPIRY_S) -> None:  # fmt: skip
        self.settings, self.factory = settings, session_factory
        self.prefix = settings.mqtt_topic_prefix
        self.batch_messages, self.batch_readings, self.batch_wait_s = (
            batch_messages,
            batch_readings,
            batch_wait_s,
        )
        self.bounds = Bounds(settings.max_power_w, settings.derive_energy_max_gap_s)
        self.client, self.broker = make_client(settings, settings.mqtt_client_id, manual_ack=True)
        self.client.max_inflight_messages_set(100)  # error replies
        self.client.on_connect, self.client.on_disconnect = self._on_connect, self._on_disconnect
        self.client.on_message = self._on_message
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = min(65535, 2 * batch_messages)  # one batch committing, the next arriving
        self.connected = threading.Event()
        self.stats = {"stored": 0, "duplicates": 0, "rejected": 0, "transactions": 0}
        self._queue: queue.Queue[Message] = queue.Queue()
        self._generation = 0
        self._stopping = threading.Event()
        self._db_ok = True
        self._writer: threading.Thread | None = None

    # ---- the network thread (paho's loop): connect, validate each message ----

    def _on_connect(self, client, _userdata, flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker %s:%s refused the bridge: %s; check MQTT_URL's user and password and the "
                      "broker's ACL", self.broker.host, self.broker.port, reason_code)  # fmt: skip
            return
        self._generation += 1
        client.subscribe(measurements_filter(self.prefix), qos=1)
        self.connected.set()
        log.info("MQTT bridge connected to %s:%s as %r (session %s), subscribed to %s", self.broker.host,
                 self.broker.port, self.settings.mqtt_client_id,
                 "resumed" if flags.session_present else "new", measurements_filter(self.prefix))  # fmt: skip

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("MQTT bridge lost the broker (%s); reconnecting with back-off (1-60 s)", reason_code)

    def _on_message(self, client, _userdata, msg) -> None:
        generation = self._generation
        try:
            serial = serial_of(msg.topic, self.prefix)
            if serial is None:
                self._ack(msg.mid, msg.qos, generation)
                return
            now = datetime.now(UTC).replace(tzinfo=None)
            days = self.settings.raw_retention_days
            readings = parse_message(serial, msg.payload, now, self.bounds, self.settings.max_batch_readings,
                                     None if days is None else now - timedelta(days=days))  # fmt: skip
        except DomainError as exc:
            self._reject(serial, msg.mid, msg.qos, generation, exc)
            return
        except Exception:  # never let one message stop paho's loop
            log.exception("MQTT message on %r could not be read; dropped", msg.topic[:200])
            self._ack(msg.mid, msg.qos, generation)
            return
        self._queue.put(Message(serial, readings, msg.mid, msg.qos, generation))

    def _ack(self, mid: int, qos: int, generation: int) -> None:
        # Only on the connection the message came on: after a reconnect the broker delivers it again
        # (same packet id) and that copy is acknowledged when it is stored (as a duplicate).
        if qos > 0 and generation == self._generation and self.connected.is_set():
            self.client.ack(mid, qos)

    def _reject(self, serial: str, mid: int, qos: int, generation: int, exc: DomainError) -> None:
        self.stats["rejected"] += 1
        body = json.dumps(error_body(exc), separators=(",", ":"))
        log.info("MQTT message for device %r rejected: %s", serial[:120], body[:300])
        self.client.publish(errors_topic(self.prefix, serial), body, qos=1)
        self._ack(mid, qos, generation)

    # ---- the writer thread: batches, one transaction each, acknowledged after the commit ----

    def _next_batch(self) -> list[Message]:
        try:
            first = self._queue.get(timeout=0.5)
        except queue.Empty:
            return []
        batch, readings = [first], len(first.readings)
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_messages and readings < self.batch_readings:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            batch.append(item)
            readings += len(item.readings)
        # a message from before a reconnect is delivered again on the new connection
        return [m for m in batch if m.generation == self._generation]

    def _commit(self, messages: list[Message]) -> None:
        readings = [r for m in messages for r in m.readings]
        with self.factory() as session:
            try:
                result = ingest_readings(session, system_scope(), readings, self.settings.timezone,
                                         self.settings.derive_energy_max_gap_s)  # fmt: skip
                session.commit()
            except BaseException:
                session.rollback()
                raise
        self.stats["stored"] += result.accepted
        self.stats["duplicates"] += result.duplicates
        self.stats["transactions"] += 1

    def _store(self, messages: list[Message]) -> None:
        """Commit the messages, leaving out the ones the ingestion refuses (each gets its own error)."""
        pending, delay = messages, OUTAGE_RETRY_S[0]
        while pending:
            try:
                self._commit(pending)
            except ValidationFailed as exc:  # unknown devices, a device's own bound: raised before any write
                blamed = self._blame(pending, exc.details)
                if not blamed:
                    self._one_by_one(pending)
                    return
                for index, details in blamed.items():
                    m = pending[index]
                    self._reject(m.serial, m.mid, m.qos, m.generation, ValidationFailed(details=details))
                pending = [m for i, m in enumerate(pending) if i not in blamed]
                continue
            except Exception as exc:
                if _is_outage(exc):
                    self._db_ok = False
                    log.warning("MQTT bridge cannot store %d messages (%s: %s); retrying in %.1f s",
                                len(pending), type(exc).__name__, str(exc).splitlines()[0][:200], delay)  # fmt: skip
                    if self._stopping.wait(delay):
                        return  # not acknowledged: the broker delivers them again
                    delay = min(2 * delay, OUTAGE_RETRY_S[1])
                    continue
                if len(pending) == 1:
                    log.exception("MQTT message for %r could not be stored", pending[0].serial)
                    m = pending[0]
                    self._reject(m.serial, m.mid, m.qos, m.generation,
                                 DomainError("The readings could not be stored (internal error); report this"))  # fmt: skip
                    return
                self._one_by_one(pending)
                return
            self._db_ok = True
            for m in pending:
                self._ack(m.mid, m.qos, m.generation)
            return

    def _one_by_one(self, messages: list[Message]) -> None:
        for m in messages:
            self._store([m])

    @staticmethod
    def _blame(messages: list[Message], details: list[dict]) -> dict[int, list[dict]]:
        """The batch's problems by message, their indexes made relative to the message's own readings."""
        starts, total = [], 0
        for m in messages:
            starts.append(total)
            total += len(m.readings)
        blamed: dict[int, list[dict]] = {}
        for detail in details:
            index = detail.get("index")
            if not isinstance(index, int) or not 0 <= index < total:
                return {}
            which = bisect.bisect_right(starts, index) - 1
            blamed.setdefault(which, []).append({**detail, "index": index - starts[which]})
        return blamed

    def _beat(self) -> bool:
        if not (self.connected.is_set() and self._db_ok):
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

    def _write_loop(self) -> None:
        next_beat = 0.0
        while not self._stopping.is_set():
            if time.monotonic() >= next_beat and self._beat():  # else again after the next wait (0.5 s)
                next_beat = time.monotonic() + HEARTBEAT_EVERY_S
            try:
                batch = self._next_batch()
                if batch:
                    self._store(batch)
            except Exception:  # the writer must outlive anything one batch does
                log.exception("MQTT bridge writer: a batch failed; its messages are delivered again")
                time.sleep(1)

    # ---- life cycle ----

    def start(self) -> MqttBridge:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_s
        properties.ReceiveMaximum = self.receive_maximum
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30, clean_start=False,
                                  properties=properties)  # fmt: skip
        self.client.loop_start()
        self._writer = threading.Thread(target=self._write_loop, name="mqtt-bridge-writer", daemon=True)
        self._writer.start()
        log.info(
            "MQTT bridge starting: %s:%s%s",
            self.broker.host,
            self.broker.port,
            " (TLS)" if self.broker.tls else "",
        )
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish and commit the batch being stored, then disconnect (what is still queued is not
        acknowledged, so the broker delivers it to the next run)."""
        self._stopping.set()
        if self._writer is not None:
            self._writer.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        heartbeat_path(self.settings).unlink(missing_ok=True)
        log.info("MQTT bridge stopped: %s", self.stats)


def run_bridge(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """`python -m dashboard mqtt-bridge`: run until SIGTERM or SIGINT, then stop cleanly."""
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    bridge = MqttBridge(settings, session_factory).start()
    while not done.wait(1.0):
        pass
    bridge.stop()
