"""The MQTT bridge's writer: messages in, one transaction per batch, acknowledgements out after the commit.

A `Writer` reads raw messages from its inbox, validates each one (dashboard/mqtt_payload.py), gathers a
batch (up to `batch_messages` messages or `batch_readings` readings, waiting at most `batch_wait_s` for
more) and stores it with `ingest_readings` in one transaction. It reports through two callbacks:
`done(acks, stored, duplicates)` after a commit, `reject(raw, error_body)` for a message that stores
nothing (the rest of its batch still commits). The bridge runs one Writer in a thread (`python app.py`,
SQLite included) or several in their own processes (`python -m dashboard mqtt-bridge`), each taking a
fixed share of the devices, so validation and rollup arithmetic use every core.
"""

from __future__ import annotations

import bisect
import logging
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from dashboard.config import Settings
from dashboard.errors import DomainError, ValidationFailed
from dashboard.ingest import ingest_readings
from dashboard.mqtt_payload import parse_message
from dashboard.readings import Bounds, Reading
from dashboard.scope import system_scope

log = logging.getLogger(__name__)
OUTAGE_RETRY_S = (0.5, 30.0)  # database away: retry the batch, doubling from 0.5 s up to 30 s


@dataclass(frozen=True)
class Raw:
    """A message as it came: its device (from the topic), payload, packet id, QoS and connection."""

    serial: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # the connection it came on: a packet id is only acknowledged on that connection


Ack = tuple[int, int, int]  # mid, qos, generation


@dataclass
class Message:
    raw: Raw
    readings: list[Reading]


def is_outage(exc: BaseException) -> bool:
    """The database is away (or the transaction hit a deadlock): retry, never reject the messages."""
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError):
        return True
    return type(exc).__name__ in ("OperationalError", "InterfaceError")  # psycopg2's own, from COPY


class Writer:
    def __init__(self, settings: Settings, factory: sessionmaker[Session], done: Callable, reject: Callable,
                 stopping, *, batch_messages: int = 1000, batch_readings: int = 20_000,
                 batch_wait_s: float = 0.005) -> None:  # fmt: skip
        self.settings, self.factory, self.done, self.reject_cb = settings, factory, done, reject
        self.stopping = stopping
        self.batch_messages, self.batch_readings, self.batch_wait_s = (
            batch_messages,
            batch_readings,
            batch_wait_s,
        )
        self.bounds = Bounds(settings.max_power_w, settings.derive_energy_max_gap_s)
        self.db_ok = True
        self.on_db: Callable[[bool], None] | None = None  # told when the database goes away and comes back

    def _db(self, ok: bool) -> None:
        if ok != self.db_ok:
            self.db_ok = ok
            if self.on_db is not None:
                self.on_db(ok)

    def _reject(self, raw: Raw, exc: DomainError) -> None:
        self.reject_cb(raw, exc.body())

    def parse(self, raw: Raw) -> Message | None:
        now = datetime.now(UTC).replace(tzinfo=None)
        days = self.settings.raw_retention_days
        try:
            readings = parse_message(raw.serial, raw.payload, now, self.bounds, self.settings.max_batch_readings,
                                     None if days is None else now - timedelta(days=days))  # fmt: skip
        except DomainError as exc:
            self._reject(raw, exc)
            return None
        except Exception:
            log.exception("MQTT message for %r could not be read", raw.serial[:120])
            self._reject(raw, DomainError("The message could not be read (internal error); report this"))
            return None
        return Message(raw, readings)

    def next_batch(self, inbox) -> list[Message]:
        try:
            first = inbox.get(timeout=0.5)
        except queue.Empty:
            return []
        batch, readings = [], 0
        deadline = time.monotonic() + self.batch_wait_s
        raw: Raw | None = first
        while raw is not None:
            message = self.parse(raw)
            if message is not None:
                batch.append(message)
                readings += len(message.readings)
            if len(batch) >= self.batch_messages or readings >= self.batch_readings:
                break
            try:
                raw = inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raw = None
        return batch

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
        acks = [(m.raw.mid, m.raw.qos, m.raw.generation) for m in messages]
        self.done(acks, result.accepted, result.duplicates)

    def store(self, messages: list[Message]) -> None:
        """Commit the messages, leaving out the ones the ingestion refuses (each gets its own error)."""
        pending, delay = messages, OUTAGE_RETRY_S[0]
        while pending:
            try:
                self._commit(pending)
            except ValidationFailed as exc:  # unknown devices, a device's own bound: raised before any write
                blamed = blame(pending, exc.details)
                if not blamed:
                    self._one_by_one(pending)
                    return
                for index, details in blamed.items():
                    self._reject(pending[index].raw, ValidationFailed(details=details))
                pending = [m for i, m in enumerate(pending) if i not in blamed]
                continue
            except Exception as exc:
                if is_outage(exc):
                    self._db(False)
                    log.warning("MQTT bridge cannot store %d messages (%s: %s); retrying in %.1f s",
                                len(pending), type(exc).__name__, str(exc).splitlines()[0][:200], delay)  # fmt: skip
                    if self.stopping.wait(delay):
                        return  # not acknowledged: the broker delivers them again
                    delay = min(2 * delay, OUTAGE_RETRY_S[1])
                    continue
                if len(pending) == 1:
                    log.exception("MQTT message for %r could not be stored", pending[0].raw.serial)
                    self._reject(pending[0].raw,
                                 DomainError("The readings could not be stored (internal error); report this"))  # fmt: skip
                    return
                self._one_by_one(pending)
                return
            self._db(True)
            return

    def _one_by_one(self, messages: list[Message]) -> None:
        for m in messages:
            self.store([m])

    def run(self, inbox) -> None:
        """Until `stopping`: the batch being stored is finished, what is still queued is left (unacknowledged)."""
        while not self.stopping.is_set():
            try:
                batch = self.next_batch(inbox)
                if batch:
                    self.store(batch)
            except Exception:  # the writer must outlive anything one batch does
                log.exception("MQTT bridge writer: a batch failed; its messages are delivered again")
                time.sleep(1)


def blame(messages: list[Message], details: list[dict]) -> dict[int, list[dict]]:
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


def _die_with_parent() -> None:
    """Linux: the kernel kills this writer when the bridge's process dies (even by SIGKILL), so its open
    transaction is rolled back instead of committing for messages nobody will acknowledge."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        log.warning("MQTT writer: cannot ask to die with the bridge (not Linux)")


def worker_main(settings: Settings, inbox, outbox, stopping, options: dict) -> None:
    """A writer process: its own database engine; acknowledgements and errors go back through `outbox`
    to the bridge's process, which holds the MQTT connection. SIGTERM/SIGINT are the bridge's to handle."""
    from dashboard.db import make_engine, make_session_factory

    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = make_engine(settings)
    writer = Writer(
        settings,
        make_session_factory(engine),
        lambda acks, stored, duplicates: outbox.put(("done", acks, stored, duplicates, True)),
        lambda raw, body: outbox.put(("reject", raw, body)),
        stopping,
        **options,
    )
    writer.on_db = lambda ok: outbox.put(("db", ok))
    outbox.put(("ready",))
    try:
        writer.run(inbox)
    finally:
        outbox.put(("exit",))
        engine.dispose()
