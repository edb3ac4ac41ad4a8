"""MQTT ingestion (dashboard/mqtt_bridge.py) against this machine's Mosquitto and the real PostgreSQL.

Each test has its own topic prefix and client id (its own persistent session), forgotten at the end."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import create_engine, text

from dashboard.mqtt_bridge import MqttBridge, check_heartbeat, heartbeat_path
from dashboard.mqtt_payload import max_payload_bytes
from tests.conftest import make_settings, service_missing

ROOT = Path(__file__).resolve().parents[2]
HOST, PORT = "127.0.0.1", 1883
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


@pytest.fixture(scope="module")
def mosquitto():
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        service_missing(
            "Mosquitto (MQTT) at 127.0.0.1:1883", f"{exc}; run `make services` (Debian: mosquitto)"
        )


def forget_session(client_id: str) -> None:
    """Connect with a clean start and no session expiry: the broker drops the test's session."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    c.connect(HOST, PORT, clean_start=True, properties=props)
    c.loop_start()
    time.sleep(0.2)
    c.disconnect()
    c.loop_stop()


class Mqtt:
    """One test's names and a publisher that also collects the errors topic."""

    def __init__(self, tmp_path, pg_url):
        self.prefix = f"aggtest-{uuid.uuid4().hex[:10]}"
        self.client_id = f"bridge-{uuid.uuid4().hex[:10]}"
        self.settings = make_settings(tmp_path, DATABASE_URL=pg_url, MQTT_URL=f"mqtt://{HOST}:{PORT}",
                                      MQTT_TOPIC_PREFIX=self.prefix, MQTT_CLIENT_ID=self.client_id)  # fmt: skip
        self.errors: queue.Queue = queue.Queue()
        self.pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.pub.max_inflight_messages_set(1000)
        self.pub.on_message = lambda _c, _u, m: self.errors.put((m.topic, json.loads(m.payload)))
        self.pub.connect(HOST, PORT)
        self.pub.loop_start()
        self.pub.subscribe(f"{self.prefix}/devices/+/errors", qos=1)
        time.sleep(0.2)

    def publish(self, serial: str, body, wait: bool = True):
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        info = self.pub.publish(f"{self.prefix}/devices/{serial}/measurements", payload, qos=1)
        if wait:
            info.wait_for_publish(5)
        return info

    def error(self, timeout: float = 10.0) -> tuple[str, dict]:
        return self.errors.get(timeout=timeout)

    def close(self):
        self.pub.disconnect()
        self.pub.loop_stop()
        forget_session(self.client_id)


@pytest.fixture
def bus(mosquitto, app, world, pg_url, tmp_path):
    m = Mqtt(tmp_path, pg_url)
    yield m
    m.close()


@pytest.fixture
def run_bridge(bus, factory):
    started = []

    def start(**kwargs) -> MqttBridge:
        bridge = MqttBridge(bus.settings, factory, session_expiry_s=120, **kwargs).start()
        assert bridge.connected.wait(10), "the bridge did not connect to Mosquitto"
        assert bridge.subscribed.wait(10), "Mosquitto did not acknowledge the bridge's subscription"
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.stop()


def rows(factory, sql: str, **params):
    with factory() as s:
        return s.execute(text(sql), params).all()


def wait_rows(factory, expected: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        found = rows(factory, "SELECT count(*) FROM measurements")[0][0]
        if found >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_both_payload_forms_are_stored_and_visible_through_the_api(bus, run_bridge, factory, client, world):
    run_bridge()
    bus.publish("H1-MAIN", {"timestamp": at(0), "power_w": 1000.0, "energy_wh": 250.0})  # one reading
    bus.publish("H1-MAIN", {"measurements": [{"timestamp": at(15), "power_w": 1200.0, "energy_wh": 300.0},
                                             {"timestamp": at(30), "power_w": 800.0, "energy_wh": 200.0,
                                              "device_id": "H1-MAIN"}]})  # fmt: skip
    assert wait_rows(factory, 3) == 3
    admin = world.headers["admin"]
    raw = client.get(f"/api/v1/measurements?device_id=H1-MAIN&start={at(0)}&end={at(60)}".replace("+", "%2B"),
                     headers=admin).json["measurements"]  # fmt: skip
    assert [m["power_w"] for m in raw] == [1000.0, 1200.0, 800.0]
    energy = client.get(
        f"/api/v1/energy?resolution=hour&house_id={world.house1}&start=2026-03-01T10:00:00Z&end=2026-03-01T11:00:00Z",
        headers=admin,
    ).json["series"]
    assert len(energy) == 1 and energy[0]["consumption_kwh"] == pytest.approx(0.75)  # the rollups moved


def test_bad_messages_store_nothing_get_the_apis_422_and_the_bridge_goes_on(bus, run_bridge, factory, client,
                                                                            world):  # fmt: skip
    bridge = run_bridge()
    bad_batch = [{"timestamp": at(0), "power_w": 100.0}, {"timestamp": at(15), "power_w": -5.0}]
    bus.publish("H1-MAIN", {"measurements": bad_batch})
    topic, body = bus.error()
    assert topic == f"{bus.prefix}/devices/H1-MAIN/errors"
    api = client.post("/api/v1/measurements", json={"measurements": [r | {"device_id": "H1-MAIN"} for r in bad_batch]},
                      headers=world.headers["admin"])  # fmt: skip
    assert api.status_code == 422 and body == api.json  # the same body the API answers

    bus.publish("H1-MAIN", b"{not json")
    assert bus.error()[1]["details"][0]["field"] == "body"
    bus.publish("H1-MAIN", b'{"timestamp": "2026-03-01T10:00:00Z\\u0000", "power_w": 1}')
    assert "NUL" in bus.error()[1]["details"][0]["message"]
    bus.publish("H1-MAIN", b" " * (max_payload_bytes(bus.settings.max_batch_readings) + 1))
    assert bus.error()[1]["error"] == "Batch too large"
    bus.publish("H1-MAIN", {"timestamp": at(0), "power_w": 1.0, "device_id": "H2-MAIN"})
    assert "topic names 'H1-MAIN'" in bus.error()[1]["details"][0]["message"]
    assert rows(factory, "SELECT count(*) FROM measurements")[0][0] == 0  # nothing of any of them

    bus.publish("H1-MAIN", {"timestamp": at(45), "power_w": 100.0})
    assert wait_rows(factory, 1) == 1  # still running
    assert bridge.stats["rejected"] == 5


def test_unknown_device_is_refused_and_the_rest_of_its_batch_commits(bus, run_bridge, factory):
    bridge = run_bridge()
    bridge.stop()  # the session stays: what follows is queued by the broker and arrives in one burst
    bus.publish("NO-SUCH-METER", {"timestamp": at(0), "power_w": 100.0})
    for minutes in range(0, 60, 15):
        bus.publish("H2-MAIN", {"timestamp": at(minutes), "power_w": 100.0})
    bridge = run_bridge()
    topic, body = bus.error()
    assert topic.endswith("/devices/NO-SUCH-METER/errors")
    assert body["details"] == [{"index": 0, "field": "device_id",
                                "message": "unknown device 'NO-SUCH-METER'; register it first"}]  # fmt: skip
    assert wait_rows(factory, 4) == 4
    assert bridge.stats["stored"] == 4


def test_a_reading_delivered_twice_is_stored_once(bus, run_bridge, factory, client, world):
    run_bridge()
    message = {"measurements": [{"timestamp": at(0), "power_w": 1000.0, "energy_wh": 250.0}]}
    bus.publish("H1-MAIN", message)
    bus.publish("H1-MAIN", message)
    bus.publish("H1-MAIN", {"measurements": [{"timestamp": at(0), "power_w": 1000.0, "energy_wh": 250.0},
                                             {"timestamp": at(15), "power_w": 1000.0, "energy_wh": 250.0}]})  # fmt: skip
    assert wait_rows(factory, 2) == 2
    time.sleep(0.3)
    assert rows(factory, "SELECT count(*) FROM measurements")[0][0] == 2
    hour = rows(factory, "SELECT consumption_wh FROM energy_rollups WHERE resolution = 'hour' AND "
                         "entity_kind = 'house' AND entity_id = :h", h=world.house1)  # fmt: skip
    assert hour == [(500.0,)]  # each reading counted once


def test_messages_published_while_down_arrive_after_restart_many_per_transaction(bus, run_bridge, factory):
    run_bridge().stop()
    n = 300
    infos = [bus.publish("H1-MAIN", {"timestamp": at(i), "power_w": 500.0 + i}, wait=False) for i in range(n)]
    for info in infos:
        info.wait_for_publish(10)
    bridge = run_bridge()
    assert wait_rows(factory, n) == n
    # one transaction stamps its rows with one xmin: the 300 messages took a few transactions
    transactions = rows(factory, "SELECT count(DISTINCT xmin::text) FROM measurements")[0][0]
    assert transactions <= 10, transactions
    assert bridge.stats["transactions"] == transactions
    bridge.stop()
    # every one was acknowledged after its commit: nothing is delivered again
    again = run_bridge()
    time.sleep(1.0)
    assert again.stats == {"stored": 0, "duplicates": 0, "rejected": 0, "transactions": 0}


def test_bridge_process_killed_before_its_commit_loses_nothing(bus, factory, pg_url, tmp_path):
    """`python -m dashboard mqtt-bridge`: SIGKILLed while its transaction waits (a table lock held here),
    the broker delivers the unacknowledged messages to the next run; SIGTERM stops it cleanly."""
    env = os.environ | {"DATABASE_URL": pg_url, "DATA_DIR": str(bus.settings.data_dir), "DEMO_DATA": "0",
                        "SECRET_KEY": bus.settings.secret_key, "MQTT_URL": f"mqtt://{HOST}:{PORT}",
                        "MQTT_TOPIC_PREFIX": bus.prefix, "MQTT_CLIENT_ID": bus.client_id}  # fmt: skip
    command = [sys.executable, "-m", "dashboard", "mqtt-bridge"]

    def healthy() -> bool:
        return subprocess.run([*command, "--check"], cwd=ROOT, env=env, capture_output=True).returncode == 0

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not check_heartbeat(bus.settings)[0]:
            assert proc.poll() is None and time.monotonic() < deadline, "the bridge process did not start"
            time.sleep(0.1)
        return proc

    proc = start()
    assert healthy()
    locker = create_engine(pg_url)
    with locker.connect() as conn:
        conn.execute(text("LOCK TABLE measurements IN ACCESS EXCLUSIVE MODE"))
        for minutes in range(0, 75, 15):
            bus.publish("H1-MAIN", {"timestamp": at(minutes), "power_w": 100.0, "energy_wh": 25.0})
        deadline = time.monotonic() + 10
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'measurements'::regclass"
        while conn.execute(text(waiting)).scalar() == 0:
            assert time.monotonic() < deadline, "the bridge never reached its insert"
            time.sleep(0.05)
        proc.kill()
        proc.wait(10)
        conn.rollback()
    locker.dispose()
    assert rows(factory, "SELECT count(*) FROM measurements")[0][0] == 0  # the transaction died with it

    heartbeat_path(bus.settings).unlink(missing_ok=True)  # the killed run's
    proc = start()
    try:
        assert wait_rows(factory, 5) == 5
        time.sleep(0.3)
        assert rows(factory, "SELECT count(*), count(DISTINCT ts) FROM measurements")[0] == (5, 5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err[-2000:]
    assert "MQTT bridge stopped" in err
    assert not healthy()  # a stopped bridge removes its heartbeat


def test_the_bridge_reconnects_when_the_broker_comes_back(mosquitto, app, world, pg_url, factory, tmp_path):
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(binary):
        service_missing("The mosquitto binary", "apt-get install mosquitto")
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} {HOST}\nallow_anonymous true\npersistence false\n")

    def broker() -> subprocess.Popen:
        proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(100):
            try:
                socket.create_connection((HOST, port), timeout=0.2).close()
                return proc
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the private mosquitto did not start")

    settings = make_settings(tmp_path, DATABASE_URL=pg_url, MQTT_URL=f"mqtt://{HOST}:{port}",
                             MQTT_TOPIC_PREFIX="p", MQTT_CLIENT_ID="reconnect")  # fmt: skip
    first = broker()
    bridge = MqttBridge(settings, factory, session_expiry_s=60).start()
    try:
        assert bridge.connected.wait(10)
        first.terminate()
        first.wait(10)
        deadline = time.monotonic() + 5
        while bridge.connected.is_set():
            assert time.monotonic() < deadline, "the bridge did not notice the broker went away"
            time.sleep(0.05)
        second = broker()
        try:
            assert bridge.connected.wait(15), "the bridge did not reconnect"
            assert bridge.subscribed.wait(10), "the bridge did not subscribe again"
            pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            pub.connect(HOST, port)
            pub.loop_start()
            pub.publish("p/devices/H2-MAIN/measurements", json.dumps({"timestamp": at(0), "power_w": 10.0}),
                        qos=1).wait_for_publish(5)  # fmt: skip
            pub.disconnect()
            pub.loop_stop()
            assert wait_rows(factory, 1) == 1
        finally:
            bridge.stop()
            second.terminate()
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()


def test_python_app_starts_the_bridge_thread_only_when_mqtt_url_is_set(bus, factory, app, pg_url, tmp_path):
    from app import start_mqtt_bridge

    assert start_mqtt_bridge(app.server, make_settings(tmp_path, DATABASE_URL=pg_url)) is None
    bridge = start_mqtt_bridge(app.server, bus.settings)
    try:
        assert bridge.subscribed.wait(10)
        bus.publish("H2-MAIN", {"timestamp": at(0), "power_w": 10.0})
        assert wait_rows(factory, 1) == 1
    finally:
        bridge.stop()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MQTT_URL": "http://127.0.0.1:1883"}, "MQTT_URL"),
        ({"MQTT_URL": "mqtt://"}, "MQTT_URL"),
        ({"MQTT_TOPIC_PREFIX": "a/+/b"}, "MQTT_TOPIC_PREFIX"),
        ({"MQTT_TOPIC_PREFIX": "/lead"}, "MQTT_TOPIC_PREFIX"),
        ({"MQTT_CA_FILE": "/no/such/ca.pem"}, "MQTT_CA_FILE"),
    ],
)
def test_mqtt_settings_refuse_what_cannot_work(tmp_path, env, named):
    with pytest.raises(ValueError, match=named):
        make_settings(tmp_path, **env)


def test_mqtts_url_gives_tls_credentials_and_the_default_port(tmp_path):
    from dashboard.mqtt_bridge import Broker

    broker = Broker.from_url(
        make_settings(tmp_path, MQTT_URL="mqtts://gw%40x:p%3Ass@broker.example").mqtt_url
    )
    assert broker == Broker("broker.example", 8883, True, "gw@x", "p:ss")
