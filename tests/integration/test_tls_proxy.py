"""The compose stack's TLS proxy (deploy/nginx/templates/aggregator.conf.template) in front of the app,
run with Debian's nginx on a certificate made here: TLS 1.2+ only, HTTP redirected to HTTPS, the app sees
HTTPS (HSTS) and the client's own address from the proxy, and a client cannot pick its address by sending
X-Forwarded-For itself (5 failed logins lock it out whatever it claims)."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET
from tests.integration.test_tls import certificate, client_context, get  # noqa: F401 - a fixture
from tests.private_services import free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "nginx" / "templates" / "aggregator.conf.template"


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        message = "nginx is missing: `make proxy` installs Debian's nginx-light"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def render(template: str, values: dict[str, str]) -> str:
    """What the nginx image's envsubst does: only the named variables; nginx's own $host etc. stay."""
    return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def wait_for(port: int, proc: subprocess.Popen, log: Path, tls: ssl.SSLContext | None = None) -> None:
    for _ in range(240):
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if tls is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
            else:
                get(port, tls).read()
            return
        except (ConnectionError, OSError, http.client.HTTPException):
            time.sleep(0.25)
    raise AssertionError(log.read_text()[-3000:])


@pytest.fixture
def stack(certificate, tmp_path):  # noqa: F811 - the fixture imported above
    nginx = nginx_binary()
    cert_file, key_file = certificate
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(cert_file, certs / "fullchain.pem")
    shutil.copy(key_file, certs / "privkey.pem")
    app_port, https_port, http_port = free_port(), free_port(), free_port()
    env = os.environ | {"DATA_DIR": str(tmp_path / "data"), "DEMO_DATA": "0", "SECRET_KEY": TEST_SECRET,
                        "HOST": "127.0.0.1", "PORT": str(app_port), "TRUSTED_PROXIES": "1", "COOKIE_SECURE": "0",
                        "SIMULATOR_INTERVAL_S": "3600"}  # fmt: skip
    for name in ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT", "TLS_CERT_FILE", "TLS_KEY_FILE"):
        env.pop(name, None)
    app_log = tmp_path / "app.log"
    app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=app_log.open("wb"),
                           stderr=subprocess.STDOUT)  # fmt: skip
    site = render(TEMPLATE.read_text(), {"NGINX_HTTPS_PORT": str(https_port), "NGINX_HTTP_PORT": str(http_port),
                                         "NGINX_SERVER_NAME": "127.0.0.1", "AGGREGATOR_UPSTREAM": f"127.0.0.1:{app_port}",
                                         "NGINX_CERT_DIR": str(certs)})  # fmt: skip
    assert "${" not in site
    (tmp_path / "aggregator.conf").write_text(site)
    temp = tmp_path / "nginx-temp"
    temp.mkdir()
    (tmp_path / "nginx.conf").write_text(f"""
user root;
worker_processes 1;
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log;
events {{}}
http {{
    access_log {tmp_path}/nginx-access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {tmp_path}/aggregator.conf;
}}
""")
    nginx_log = tmp_path / "nginx.out"
    proxy = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                             stdout=nginx_log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(app_port, app, app_log)
        wait_for(https_port, proxy, nginx_log, client_context(cert_file, ssl.TLSVersion.TLSv1_2))
        yield {"https": https_port, "http": http_port, "cert": cert_file}
    finally:
        for proc in (proxy, app):
            proc.terminate()
            proc.wait(timeout=30)


def test_the_proxy_serves_tls_1_2_plus_only_and_the_app_sees_https(stack):
    tls12 = client_context(stack["cert"], ssl.TLSVersion.TLSv1_2)
    response = get(stack["https"], tls12)
    assert response.status == 200
    # COOKIE_SECURE=0 and no TLS in the app: HSTS only because the app believed X-Forwarded-Proto
    assert response.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"
    assert response.getheader("Server") == "nginx"  # no version
    page = get(stack["https"], tls12, "/login")
    assert page.status == 200 and "frame-ancestors 'none'" in page.getheader("Content-Security-Policy")
    with pytest.raises(ssl.SSLError):
        get(stack["https"], client_context(stack["cert"], ssl.TLSVersion.TLSv1_1))


def test_plain_http_is_redirected_to_https(stack):
    conn = http.client.HTTPConnection("127.0.0.1", stack["http"], timeout=5)
    conn.request("GET", "/api/v1/energy?resolution=day")
    response = conn.getresponse()
    assert response.status == 301
    assert (
        response.getheader("Location") == f"https://127.0.0.1:{stack['https']}/api/v1/energy?resolution=day"
    )


def test_a_client_cannot_choose_its_address_through_the_proxy(stack):
    """Five failed logins, each claiming another address: the proxy replaces X-Forwarded-For, so the app
    counts them all against this client, and the sixth try is throttled (429) even with a new claim."""
    tls12 = client_context(stack["cert"], ssl.TLSVersion.TLSv1_2)
    statuses = []
    for i in range(6):
        conn = http.client.HTTPSConnection("127.0.0.1", stack["https"], context=tls12, timeout=10)
        conn.request("POST", "/api/v1/auth/login", body='{"username": "nobody", "password": "wrong-password"}',
                     headers={"Content-Type": "application/json", "X-Forwarded-For": f"203.0.113.{i + 1}"})  # fmt: skip
        statuses.append(conn.getresponse().status)
    assert statuses == [401] * 5 + [429], statuses
