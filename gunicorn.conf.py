"""gunicorn's configuration, read automatically by `gunicorn wsgi:server` run from the repository root
(and by the Dockerfile's command). Command-line flags override what is set here.

HTTPS when TLS_CERT_FILE and TLS_KEY_FILE are set (PEM files), with TLS 1.0 and 1.1 refused; HSTS then
goes out on every answer (dashboard/http_headers.py). Without them gunicorn serves plain HTTP, for a
TLS-terminating proxy in front.
"""

import os
import ssl

_cert, _key = os.environ.get("TLS_CERT_FILE") or None, os.environ.get("TLS_KEY_FILE") or None
if bool(_cert) != bool(_key):
    raise SystemExit("Set both TLS_CERT_FILE and TLS_KEY_FILE to serve HTTPS, or neither")
if _cert:
    certfile, keyfile = _cert, _key


def ssl_context(conf, default_ssl_context_factory):
    context = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
