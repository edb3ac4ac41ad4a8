# The app image: gunicorn serving the Dash UI, the REST API and the /aggregator endpoints.
# The same image runs the RQ worker (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/data HOST=0.0.0.0 PORT=8050

RUN useradd --create-home --uid 10001 app && mkdir -p /data && chown app /data
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=app . .
USER app

EXPOSE 8050
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8050/healthz'); sys.exit(0)"
# 2 workers per core is a good start; every worker is stateless (JWT, database, Redis, S3).
CMD ["sh", "-c", "gunicorn --workers ${WEB_WORKERS:-4} --bind 0.0.0.0:${PORT} --timeout 150 --access-logfile - wsgi:server"]
