"""A local stand-in for Open-Meteo: serves the recorded bodies in tests/api/open_meteo/ on 127.0.0.1, records
what it was asked, and can answer an error, a body that is not JSON, or too late."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).resolve().parent / "api" / "open_meteo"
BODIES = {"/v1/forecast": "forecast.json", "/v1/archive": "archive.json"}


class OpenMeteoServer:
    def __init__(self):
        self.requests: list[tuple[str, dict]] = []  # (path, {param: value})
        self.mode = "ok"  # ok | 500 | 400 | not-json | slow
        self.slow_s = 3.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                url = urlparse(self.path)
                server.requests.append((url.path, {k: v[0] for k, v in parse_qs(url.query).items()}))
                if server.mode == "slow":
                    time.sleep(server.slow_s)
                if server.mode in ("500", "400") or url.path not in BODIES:
                    status, body = (400, (FIXTURES / "error.json").read_bytes()) if server.mode == "400" else (
                        500, b'{"error": true, "reason": "internal"}')  # fmt: skip
                elif server.mode == "not-json":
                    status, body = 200, b"<html>maintenance</html>"
                else:
                    status, body = 200, (FIXTURES / BODIES[url.path]).read_bytes()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def log_message(self, *args):  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def forecast_url(self) -> str:
        return self.base + "/v1/forecast"

    @property
    def archive_url(self) -> str:
        return self.base + "/v1/archive"

    def __enter__(self) -> OpenMeteoServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())
