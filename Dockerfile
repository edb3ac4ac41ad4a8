# The app image: gunicorn serving the Dash UI, the REST API and the /aggregator endpoints; the same image
# runs the RQ workers, the MQTT bridge and the one-shot steps (docker-compose.yml gives each its command
# and its own healthcheck). The HEALTHCHECK below is the web server's: other services override it.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/data HOST=0.0.0.0 PORT=8050

RUN useradd --create-home --uid 10001 app && mkdir -p /data && chown app /data
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=app . .
USER app

EXPOSE 8050
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050/healthz', timeout=4)"
# gunicorn.conf.py (TLS when TLS_CERT_FILE/TLS_KEY_FILE are set); 2 workers per core is a good start:
# every worker is stateless (JWT, database, Redis, S3).
CMD ["sh", "-c", "exec gunicorn --config gunicorn.conf.py --workers ${WEB_WORKERS:-4} --bind 0.0.0.0:${PORT} --timeout 150 --access-logfile - wsgi:server"]
