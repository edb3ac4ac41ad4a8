"""HTTPS from the app itself: `python app.py` and `gunicorn wsgi:server` (gunicorn.conf.py) with
TLS_CERT_FILE and TLS_KEY_FILE, on a self-signed certificate made here. TLS 1.2 answers (with HSTS and no
server banner detail); a client that offers at most TLS 1.1 is refused by the server."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashboard.http_headers import tls_context
from tests.conftest import TEST_SECRET
from tests.private_services import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_file, key_file


def client_context(cert_file: Path, max_version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cert_file)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.0/1.1: the server must refuse
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = max_version
    return context


def get(port: int, context: ssl.SSLContext, path: str = "/healthz") -> http.client.HTTPResponse:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    conn.request("GET", path)
    return conn.getresponse()


COMMANDS = {
    "app.py": lambda port: [sys.executable, "app.py"],
    "gunicorn": lambda port: [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        "1",
        "-b",
        f"127.0.0.1:{port}",
        "wsgi:server",
    ],
}


@pytest.mark.parametrize("server", sorted(COMMANDS))
def test_https_with_tls_1_2_and_hsts_and_tls_1_1_refused(server, certificate, pg_url, tmp_path):
    cert_file, key_file = certificate
    port = free_port()
    env = os.environ | {"DATABASE_URL": pg_url, "DATA_DIR": str(tmp_path), "DEMO_DATA": "0", "SECRET_KEY": TEST_SECRET,
                        "PORT": str(port), "TLS_CERT_FILE": str(cert_file), "TLS_KEY_FILE": str(key_file),
                        "SIMULATOR_INTERVAL_S": "3600"}  # fmt: skip
    env.pop("REDIS_URL", None)
    env.pop("S3_ENDPOINT", None)
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        COMMANDS[server](port), cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    tls12 = client_context(cert_file, ssl.TLSVersion.TLSv1_2)
    try:
        for _ in range(240):
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                response = get(port, tls12)
                break
            except (ConnectionError, OSError):
                time.sleep(0.25)
        else:
            raise AssertionError(log.read_text()[-3000:])
        assert response.status == 200
        assert response.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"
        server_header = response.getheader("Server") or ""
        assert "Werkzeug" not in server_header and "Python" not in server_header and "/" not in server_header
        page = get(port, tls12, "/login")
        assert page.status == 200 and "frame-ancestors 'none'" in page.getheader("Content-Security-Policy")

        with pytest.raises(ssl.SSLError):
            get(port, client_context(cert_file, ssl.TLSVersion.TLSv1_1))
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):  # plain HTTP: no page
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            assert conn.getresponse().status >= 400
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_tls_context_refuses_tls_1_0_and_1_1(certificate):
    context = tls_context(*map(str, certificate))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_tls_settings_come_in_pairs_of_real_files(certificate, tmp_path):
    from tests.conftest import make_settings

    cert_file, key_file = certificate
    settings = make_settings(tmp_path, TLS_CERT_FILE=str(cert_file), TLS_KEY_FILE=str(key_file))
    assert (settings.tls_cert_file, settings.tls_key_file) == (str(cert_file), str(key_file))
    with pytest.raises(ValueError, match="both TLS_CERT_FILE and TLS_KEY_FILE"):
        make_settings(tmp_path, TLS_CERT_FILE=str(cert_file))
    with pytest.raises(ValueError, match="TLS_KEY_FILE: .* is not a readable file"):
        make_settings(tmp_path, TLS_CERT_FILE=str(cert_file), TLS_KEY_FILE=str(tmp_path / "missing.pem"))
