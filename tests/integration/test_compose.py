"""docker-compose.yml without a Docker engine: valid against the Compose Specification's JSON schema
(vendor/compose-spec), every image pinned, every secret from .env.example, every service healthchecked and
started only after what it needs is healthy, every command and healthcheck naming something its image has;
then the stack's own start commands run outside containers: the init step, gunicorn with
gunicorn.conf.py (/healthz, /readyz, its healthcheck) and one worker of each kind (their healthchecks pass
while they run and fail once they stop)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml

from tests.conftest import CHEAP_HASHING, TEST_SECRET, fresh_pg_database
from tests.integration.test_tls import certificate  # noqa: F401 - a fixture
from tests.private_services import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "vendor" / "compose-spec" / "compose-spec.json"
APP_IMAGE = "aggregator-web-app"
BIN = Path(sys.executable).parent

# What each third-party image runs: its entrypoint's arguments and the binaries it ships (from the
# images' own Dockerfiles: nginx and postgres are Debian-based, redis ships its CLI, minio/minio bundles
# `mc` beside `minio` (its entrypoint), eclipse-mosquitto is Alpine with the clients, grafana-oss Alpine
# with busybox `wget`). `sh` is in all of them.
THIRD_PARTY = {
    "nginx": {"entrypoint_args": set(), "binaries": {"sh", "curl", "nginx"}},
    "postgres": {"entrypoint_args": set(), "binaries": {"sh", "pg_isready", "postgres"}},
    "redis": {"entrypoint_args": set(), "binaries": {"sh", "redis-server", "redis-cli", "grep"}},
    "minio/minio": {"entrypoint_args": {"server"}, "binaries": {"sh", "minio", "mc"}},
    "eclipse-mosquitto": {"entrypoint_args": set(),
                          "binaries": {"sh", "mosquitto", "mosquitto_passwd", "mosquitto_sub", "touch", "chown",
                                       "chmod"}},
    "grafana/grafana-oss": {"entrypoint_args": set(), "binaries": {"sh", "wget", "grafana"}},
}  # fmt: skip
# `python -m dashboard` subcommands the stack names that other branches of issue 14 add: until they land
# here the check is an expected failure that says so; once they exist it is checked like any other.
AWAITED: dict[str, str] = {}  # commands another branch brings (none now)


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


VAR = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ${V}, ${V:-default}, ${V-default}, ${V:?error}, ${V?error}; $$ is a $."""

    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.groups()
        value = env.get(name)
        if op in (":-", ":?") and not value or op in ("-", "?") and value is None:
            if op.endswith("?"):
                raise ValueError(f"{name}: {arg}")
            return arg
        return value or ""

    return VAR.sub(one, text)


def compose(env: dict[str, str] | None = None) -> dict:
    """docker-compose.yml as Compose sees it with these variables (default: .env.example's, secrets
    filled), its YAML anchors and merges resolved."""
    if env is None:
        required = {m.group(1) for m in VAR.finditer(COMPOSE.read_text()) if m.group(2) == ":?"}
        env = {k: v or (f"secret-{k.lower()}" if k in required else v) for k, v in env_example().items()}
    return yaml.safe_load(interpolate(COMPOSE.read_text(), env))


def services() -> dict[str, dict]:
    return compose()["services"]


def raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def is_ours(service: dict) -> bool:
    return service["image"].split(":")[0] == APP_IMAGE


def one_shot(service: dict) -> bool:
    return service.get("restart") == "no" and service.get("healthcheck") == {"disable": True}


# ---- the file itself --------------------------------------------------------------------------------


def test_valid_against_the_compose_specification_schema():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(
        schema, format_checker=jsonschema.Draft201909Validator.FORMAT_CHECKER
    )
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(raw())]
    assert errors == []
    # the schema catches what Compose would refuse: a misspelt key, a wrong condition
    broken = raw()
    broken["services"]["app"]["healthcheck"]["tset"] = broken["services"]["app"]["healthcheck"].pop("test")
    broken["services"]["worker"]["depends_on"] = {"redis": {"condition": "service_ready"}}
    assert len(list(validator.iter_errors(broken))) == 2


def test_every_image_is_pinned_and_ours_is_tagged_and_built():
    for name, service in services().items():
        image = service.get("image", "")
        repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        assert tag and tag != "latest" and not tag.startswith("$"), f"{name}: pin a version, not {image!r}"
        assert re.search(r"\d", tag), f"{name}: {image} is not a version"
        if repo == APP_IMAGE:
            assert service.get("build") == ".", f"{name}: our image is built from the repository"
    ours = raw()["x-app"]["image"]
    assert re.fullmatch(r"aggregator-web-app:\$\{APP_VERSION:-\d+\.\d+\.\d+\}", ours)


def test_every_variable_is_in_env_example_and_no_secret_has_a_value_there():
    example = env_example()
    used = {m.group(1) for m in VAR.finditer(COMPOSE.read_text()) if m.group(1)}
    assert used - set(example) == set(), "add these to .env.example"
    required = {m.group(1) for m in VAR.finditer(COMPOSE.read_text()) if m.group(2) == ":?"}
    assert {"SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINIO_ROOT_PASSWORD", "MQTT_BRIDGE_PASSWORD",
            "GRAFANA_ADMIN_PASSWORD", "GRAFANA_DB_PASSWORD"} <= required  # fmt: skip
    assert {k: example[k] for k in required if example[k]} == {}, "no real secret in .env.example"
    assert example["DATA_ENCRYPTION_KEY"] == ""
    # as copied, unfilled, the stack refuses to start and names the missing secret
    with pytest.raises(ValueError, match="set .* in .env"):
        compose(example)


def test_every_service_is_healthchecked_and_waits_for_what_it_needs():
    all_services = services()
    for name, service in all_services.items():
        check = service.get("healthcheck") or {}
        if one_shot(service):
            continue
        assert check.get("test") and not check.get("disable"), f"{name} needs its own healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL")
    for name, service in all_services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on with conditions"
        for target, rule in depends.items():
            condition = rule["condition"]
            if (name, target) == ("proxy", "grafana"):  # a failing Grafana must not keep the app unserved
                assert condition == "service_started"
            elif condition == "service_healthy":
                assert not one_shot(all_services[target]) and all_services[target]["healthcheck"]["test"]
            else:
                assert condition == "service_completed_successfully" and one_shot(all_services[target]), (
                    f"{name} -> {target}: wait for service_healthy"
                )
    for name, service in all_services.items():  # everything of ours runs after the migrations (init)
        if is_ours(service) and name != "init":
            assert service["depends_on"]["init"] == {"condition": "service_completed_successfully"}
            assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert all_services["proxy"]["depends_on"]["app"] == {"condition": "service_healthy"}
    assert set(all_services["app"]["depends_on"]) >= {"postgres", "redis", "minio"}
    assert all_services["mqtt-bridge"]["depends_on"]["mosquitto"] == {"condition": "service_healthy"}


def test_grafana_gets_every_variable_its_provisioning_reads():
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    lines = [line for f in provisioning.rglob("*.yaml") for line in f.read_text().splitlines()]
    wanted = {
        m.group(1)
        for line in lines
        if not line.lstrip().startswith("#")
        for m in VAR.finditer(line)
        if m.group(1)
    }
    assert wanted >= {"GRAFANA_DB_HOST", "GRAFANA_DB_PASSWORD"}
    given = services()["grafana"]["environment"]
    assert wanted <= set(given), f"grafana lacks {sorted(wanted - set(given))}"
    assert given["GRAFANA_DB_USER"] == "aggregator_grafana"  # the role grafana-role makes by default


def test_only_the_proxy_and_the_mqtt_tls_listener_are_published():
    published = {name: s["ports"] for name, s in services().items() if s.get("ports")}
    assert published == {"proxy": ["443:443", "80:80", "3443:3443"], "mosquitto": ["8883:8883"]}


def command_words(test: list[str]) -> list[list[str]]:
    """The commands in a healthcheck or command: CMD's list, or each of a shell line's commands."""
    if test[0] == "CMD":
        return [test[1:]]
    shell = test[1] if test[0] == "CMD-SHELL" else test[2] if test[:2] == ["sh", "-c"] else None
    if shell is None:
        return [test]
    parts = re.split(r"&&|\|\||\||;", shell)
    commands = []
    for part in parts:
        words = shlex.split(part.split(">")[0])
        while words and (re.match(r"\w+=", words[0]) or words[0] == "exec"):  # VAR=value, exec
            words = words[1:]
        if words:
            commands.append(words)
    return commands


def third_party_cases():
    for name, service in services().items():
        if is_ours(service):
            continue
        repo = service["image"].rsplit(":", 1)[0]
        if service.get("command"):
            yield name, repo, service["command"]
        yield name, repo, service["healthcheck"]["test"]


@pytest.mark.parametrize("name,repo,command", list(third_party_cases()))
def test_third_party_commands_name_their_images_binaries(name, repo, command):
    known = THIRD_PARTY[repo]
    if command[0] in known["entrypoint_args"]:
        return
    for words in command_words(command):
        assert words[0] in known["binaries"], f"{name}: {words[0]!r} is not known in {repo}"


def our_cases():
    for name, service in services().items():
        if is_ours(service):
            yield name, "command", service["command"]
            if not one_shot(service):
                yield name, "healthcheck", service["healthcheck"]["test"][1:]


@pytest.mark.parametrize("name,what,command", list(our_cases()))
def test_our_commands_exist_in_the_repository(name, what, command):
    """python -m dashboard SUB: the subcommand and its flags exist (--help answers); python -m jobs.worker
    KIND and app.py --prepare: known kinds and flags; gunicorn: its config and app; python -c: compiles.
    (Each is also run below.)"""
    from dashboard.__main__ import build_parser
    from jobs.worker import WORKER_ARGS

    if command[0] == "gunicorn":
        assert (BIN / "gunicorn").exists()
        assert (ROOT / command[command.index("--config") + 1]).exists() and command[-1] == "wsgi:server"
        return
    assert command[0] == "python", f"{name}: run the image's python"
    if command[1] == "-c":
        compile(command[2], f"{name} {what}", "exec")
    elif command[1] == "app.py":
        assert command[2:] == ["--prepare"]
    elif command[1:3] == ["-m", "jobs.worker"]:
        args = command[3:]
        assert (args[1:] if args[0] == "--check" else args) and set(args) - {"--check"} <= set(WORKER_ARGS)
    elif command[1:3] == ["-m", "dashboard"]:
        sub, flags = command[3], [a for a in command[4:] if a.startswith("--")]
        choices = next(a for a in build_parser()._actions if a.dest == "command").choices
        if sub not in choices:
            if sub in AWAITED:
                pytest.xfail(f"`python -m dashboard {sub}` comes with {AWAITED[sub]}, not merged here yet")
            pytest.fail(f"{name}: no `python -m dashboard {sub}`")
        result = subprocess.run([sys.executable, "-m", "dashboard", sub, "--help"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode == 0, result.stderr
        for flag in flags:
            assert flag in result.stdout, f"`python -m dashboard {sub}` has no {flag}"
    else:
        pytest.fail(f"{name}: unknown command {command}")


def test_the_dockerfile_pins_its_base_runs_unprivileged_and_serves_with_gunicorn_conf():
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "--config gunicorn.conf.py" in text and "/healthz" in text
    assert ".env" in (ROOT / ".dockerignore").read_text().split()  # secrets never baked into the image


def test_the_proxy_templates_pass_nginx_t(tmp_path, certificate):  # noqa: F811 - the fixture imported above
    from tests.integration.test_tls_proxy import nginx_binary, render

    nginx = nginx_binary()
    cert, key = certificate
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "fullchain.pem").write_bytes(cert.read_bytes())
    (tmp_path / "certs" / "privkey.pem").write_bytes(key.read_bytes())
    env = services()["proxy"]["environment"] | {"NGINX_CERT_DIR": str(tmp_path / "certs")}
    env |= {k: str(free_port()) for k in ("NGINX_HTTPS_PORT", "NGINX_HTTP_PORT", "GRAFANA_HTTPS_PORT")}
    env |= {"AGGREGATOR_UPSTREAM": "127.0.0.1:1", "GRAFANA_UPSTREAM": "127.0.0.1:2"}  # no DNS here
    included = []
    for template in sorted((ROOT / "deploy" / "nginx" / "templates").glob("*.template")):
        out = tmp_path / template.name.removesuffix(".template")
        out.write_text(render(template.read_text(), env))
        assert "${" not in out.read_text(), f"{template.name}: a variable the proxy service does not set"
        included.append(f"include {out};")
    assert len(included) == 2
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\nevents {{}}\n"
                    f"http {{ access_log off; client_body_temp_path {tmp_path}; {' '.join(included)} }}\n")  # fmt: skip
    result = subprocess.run([nginx, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr


# ---- the start commands, outside containers -----------------------------------------------------------


def local(command: list[str]) -> list[str]:
    """A container command run here: the venv's python and gunicorn."""
    if command[0] == "python":
        return [sys.executable, *command[1:]]
    if command[0] == "gunicorn":
        return [str(BIN / "gunicorn"), *command[1:]]
    return command


@pytest.fixture
def stack_env(redis_url, s3_settings, tmp_path):
    """The services' environment from the compose file, pointed at this machine's PostgreSQL (a fresh
    database), Redis (the test's index) and the test S3 server."""
    with fresh_pg_database("aggcompose") as pg:
        env = {
            k: str(v) for k, v in services()["app"]["environment"].items()
        }  # Compose passes numbers as text
        env |= {
            "DATABASE_URL": pg, "REDIS_URL": redis_url, "S3_ENDPOINT": s3_settings.s3_endpoint,
            "S3_ACCESS_KEY": s3_settings.s3_access_key, "S3_SECRET_KEY": s3_settings.s3_secret_key,
            "S3_BUCKET": s3_settings.s3_bucket, "SECRET_KEY": TEST_SECRET, "DATA_DIR": str(tmp_path),
        } | CHEAP_HASHING  # fmt: skip
        yield os.environ | env


def run(command: list[str], env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(local(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_stack_commands_start_and_their_healthchecks_follow_them(stack_env, tmp_path):
    started = time.monotonic()
    all_services = services()
    prepared = run(all_services["init"]["command"], stack_env, timeout=120)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    assert "Prepared: database migrated, object store ready" in prepared.stdout

    port = free_port()
    command = list(all_services["app"]["command"])
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    command[command.index("--workers") + 1] = "2"
    log = (tmp_path / "gunicorn.log").open("w")
    procs = [subprocess.Popen(local(command), cwd=ROOT, env=stack_env, stdout=log, stderr=subprocess.STDOUT)]
    workers = {}
    try:
        for name, kind in (("worker", "training"), ("forecast-worker", "forecast")):
            workers[kind] = subprocess.Popen(local(all_services[name]["command"]), cwd=ROOT, env=stack_env,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            procs.append(workers[kind])
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):
            assert procs[0].poll() is None, (tmp_path / "gunicorn.log").read_text()[-3000:]
            try:
                if requests.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.25)
        assert requests.get(base + "/healthz", timeout=5).json() == {"status": "ok"}
        ready = requests.get(base + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        health = list(all_services["app"]["healthcheck"]["test"][1:])
        health[-1] = health[-1].replace("127.0.0.1:8050", f"127.0.0.1:{port}")
        assert run(health, stack_env).returncode == 0
        assert (
            run(["python", "-c", health[-1].replace(str(port), str(free_port()))], stack_env).returncode != 0
        )

        checks = {kind: all_services[name]["healthcheck"]["test"][1:]
                  for name, kind in (("worker", "training"), ("forecast-worker", "forecast"))}  # fmt: skip
        for kind, check in checks.items():
            for _ in range(120):
                result = run(check, stack_env)
                if result.returncode == 0:
                    break
                time.sleep(0.5)
            assert result.returncode == 0, f"{kind}: {result.stderr}"
            assert f"{kind} worker" in result.stdout
        for kind, proc in workers.items():
            stop(proc)
            result = run(checks[kind], stack_env)
            assert result.returncode == 1 and f"no {kind} worker" in result.stderr
    finally:
        for proc in procs:
            stop(proc)
        log.close()
    assert time.monotonic() - started < 120


def test_the_init_step_seeds_the_demo_once_when_demo_data_is_1(stack_env):
    from sqlalchemy import create_engine, text

    init = services()["init"]["command"]
    env = stack_env | {"DEMO_DATA": "1", "DEMO_DAYS": "14"}
    first = run(init, env, timeout=180)
    assert first.returncode == 0, first.stderr[-3000:]
    assert re.search(r"admin +username admin +password \S+", first.stdout)
    engine = create_engine(env["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            houses = conn.execute(text("SELECT count(*) FROM houses")).scalar()
        assert houses == 20
        again = run(init, env, timeout=180)  # a restart of the stack: no second seed, the same logins
        assert again.returncode == 0, again.stderr[-3000:]
        assert re.search(r"admin +username admin +password \S+", again.stdout).group(0) in first.stdout
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM houses")).scalar() == 20
    finally:
        engine.dispose()
    assert "demo" not in run(init, stack_env | {"DEMO_DATA": "0"}).stdout.split("Prepared")[-1]


def test_a_killed_workers_leftover_registration_is_not_healthy(stack_env):
    """A container killed outright (OOM, kill -9) leaves its worker registered in Redis with a heartbeat
    still young: the healthcheck also wants the worker's process alive."""
    from redis import Redis
    from rq.worker import Worker

    command = services()["worker"]["command"]
    check = services()["worker"]["healthcheck"]["test"][1:]
    supervisor = subprocess.Popen(local(command), cwd=ROOT, env=stack_env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
    connection = Redis.from_url(stack_env["REDIS_URL"])
    try:
        for _ in range(120):
            if run(check, stack_env).returncode == 0:
                break
            time.sleep(0.5)
        [worker] = [w for w in Worker.all(connection=connection) if w.name.endswith(".training-0.1")]
        os.kill(supervisor.pid, signal.SIGKILL)
        supervisor.wait()
        os.killpg(worker.pid, signal.SIGKILL)  # the rq worker leads its own process group
        time.sleep(0.5)
        assert connection.exists(worker.key)  # still registered, its heartbeat seconds old
        result = run(check, stack_env)
        assert result.returncode == 1 and "stale" in result.stderr and worker.name in result.stderr
    finally:
        stop(supervisor)
        connection.flushdb()
        connection.close()
