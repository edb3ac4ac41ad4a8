"""The stack's Mosquitto configuration for real: deploy/mosquitto/mosquitto.conf and its ACL file, run by
Debian's mosquitto on spare ports (only the paths, ports and certificate swapped for the test's), with a
password file made by mosquitto_passwd. A gateway publishes its own devices' readings and nothing else,
reads only its own devices' errors; the bridge reads every reading and writes errors; nobody gets in
without a password; the compose file's healthcheck command passes against it."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import service_missing
from tests.integration.test_tls import certificate  # noqa: F401 - a fixture
from tests.private_services import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
ACL = ROOT / "deploy" / "mosquitto" / "acl"
PASSWORDS = {"bridge": "bridge-pw-1", "gateway-house-1": "gw1-pw-1", "gateway-house-2": "gw2-pw-1"}


def binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if found is None:
        service_missing(name, "install Debian's mosquitto and mosquitto-clients")
    return found


def render(conf: str, values: dict[str, str]) -> str:
    """The repo's config with each `key value` line whose key is in values given the test's value."""
    lines = []
    for line in conf.splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            port = line.split()[1]
            lines.append(f"listener {values['listener ' + port]} 127.0.0.1")
        elif key in values:
            lines.append(f"{key} {values[key]}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def broker(tmp_path_factory, certificate):  # noqa: F811 - the fixture imported above
    mosquitto, passwd = binary("mosquitto"), binary("mosquitto_passwd")
    binary("mosquitto_pub"), binary("mosquitto_sub")
    folder = tmp_path_factory.mktemp("mosquitto")
    password_file = folder / "passwd"
    password_file.touch(mode=0o600)
    for user, password in PASSWORDS.items():
        subprocess.run([passwd, "-b", str(password_file), user, password], check=True, timeout=30)
    port, tls_port = free_port(), free_port()
    cert, key = certificate
    conf = folder / "mosquitto.conf"
    conf.write_text(
        render(CONF.read_text(), {
            "listener 1883": str(port), "listener 8883": str(tls_port), "password_file": str(password_file),
            "acl_file": str(ACL), "certfile": str(cert), "keyfile": str(key),
            "persistence_location": f"{folder}/", "log_dest": f"file {folder}/log",
        }) + f"user {getpass.getuser()}\n"  # as whoever runs the test (root would switch to `mosquitto`)
    )  # fmt: skip
    proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if not wait_port(port, 10) or not wait_port(tls_port, 5):
            proc.kill()
            raise AssertionError(
                f"mosquitto did not start: {proc.communicate(timeout=5)[0].decode()[-2000:]}"
            )
        yield {"port": port, "tls_port": tls_port, "cafile": str(cert), "log": folder / "log"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def auth(user: str, password: str | None = None) -> list[str]:
    return ["-u", user, "-P", password or PASSWORDS[user]]


class Subscriber:
    """mosquitto_sub printing `topic payload` lines, until `count` messages or `seconds` pass."""

    def __init__(self, broker, user: str, topic: str, count: int, seconds: int = 10):
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker["port"]), *auth(user), "-q", "1", "-v",
             "-t", topic, "-C", str(count), "-W", str(seconds), "-i", f"test-{user}-{time.monotonic_ns()}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(0.5)  # subscribed before anything is published (the broker keeps no retained message)

    def lines(self) -> list[str]:
        out, _err = self.proc.communicate(timeout=30)
        return out.splitlines()


def publish(broker, user: str, topic: str, payload: str, password: str | None = None) -> int:
    return subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker["port"]), *auth(user, password), "-q", "1",
         "-t", topic, "-m", payload],
        capture_output=True, timeout=30,
    ).returncode  # fmt: skip


def test_a_gateway_publishes_its_own_devices_readings_and_no_others(broker):
    bridge = Subscriber(broker, "bridge", "aggregator/devices/+/measurements", count=2)
    # H2-MAIN belongs to gateway-house-2: dropped by the broker; the last message proves delivery went on
    assert publish(broker, "gateway-house-1", "aggregator/devices/H1-MAIN/measurements", "first") == 0
    publish(broker, "gateway-house-1", "aggregator/devices/H2-MAIN/measurements", "forged")
    publish(broker, "gateway-house-1", "aggregator/devices/H1-PV/measurements", "last")
    assert bridge.lines() == [
        "aggregator/devices/H1-MAIN/measurements first",
        "aggregator/devices/H1-PV/measurements last",
    ]


def test_a_gateway_reads_only_its_own_errors_and_no_readings(broker):
    own_errors = Subscriber(broker, "gateway-house-1", "aggregator/devices/+/errors", count=1)
    readings = Subscriber(broker, "gateway-house-1", "aggregator/devices/+/measurements", count=1, seconds=3)
    bridge = Subscriber(broker, "bridge", "aggregator/devices/+/measurements", count=1)
    publish(broker, "bridge", "aggregator/devices/H2-MAIN/errors", '{"error": "for house 2"}')
    publish(broker, "bridge", "aggregator/devices/H1-MAIN/errors", '{"error": "for house 1"}')
    publish(broker, "gateway-house-2", "aggregator/devices/H2-MAIN/measurements", "house 2 reading")
    assert own_errors.lines() == ['aggregator/devices/H1-MAIN/errors {"error": "for house 1"}']
    assert bridge.lines() == ["aggregator/devices/H2-MAIN/measurements house 2 reading"]
    assert readings.lines() == []  # waited 3 s after subscribing: the reading reached the bridge only


def test_the_bridge_cannot_publish_readings_and_a_gateway_cannot_publish_errors(broker):
    bridge = Subscriber(broker, "bridge", "aggregator/devices/+/measurements", count=1)
    errors = Subscriber(broker, "gateway-house-1", "aggregator/devices/+/errors", count=1)
    publish(broker, "bridge", "aggregator/devices/H1-MAIN/measurements", "from the bridge")
    publish(broker, "gateway-house-1", "aggregator/devices/H1-MAIN/errors", "self-made error")
    publish(broker, "gateway-house-1", "aggregator/devices/H1-MAIN/measurements", "real")
    publish(broker, "bridge", "aggregator/devices/H1-MAIN/errors", "real error")
    assert bridge.lines() == ["aggregator/devices/H1-MAIN/measurements real"]
    assert errors.lines() == ["aggregator/devices/H1-MAIN/errors real error"]


@pytest.mark.parametrize("user,password", [("gateway-house-1", "wrong"), ("nobody", "x"), (None, None)])
def test_no_login_no_access(broker, user, password):
    args = ["-u", user, "-P", password] if user else []
    result = subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker["port"]), *args, "-t",
         "aggregator/devices/H1-MAIN/measurements", "-m", "x"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert "not authorised" in (result.stderr + result.stdout).lower()


def test_gateways_connect_over_tls(broker):
    bridge = Subscriber(broker, "bridge", "aggregator/devices/+/measurements", count=1)
    result = subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker["tls_port"]), "--cafile", broker["cafile"],
         *auth("gateway-house-2"), "-q", "1", "-t", "aggregator/devices/H2-MAIN/measurements", "-m", "tls"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert bridge.lines() == ["aggregator/devices/H2-MAIN/measurements tls"]


def test_the_compose_healthcheck_passes_against_it_and_fails_with_a_wrong_password(broker):
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["mosquitto"]
    kind, command = service["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    shell = re.sub(r"-p 1883\b", f"-p {broker['port']}", command.replace("$$", "$"))
    assert f"-p {broker['port']}" in shell
    env = os.environ | {"MQTT_BRIDGE_PASSWORD": PASSWORDS["bridge"]}
    assert subprocess.run(["sh", "-c", shell], env=env, timeout=30).returncode == 0
    env["MQTT_BRIDGE_PASSWORD"] = "wrong"
    assert subprocess.run(["sh", "-c", shell], env=env, timeout=30, capture_output=True).returncode != 0
