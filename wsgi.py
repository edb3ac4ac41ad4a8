"""WSGI entry point: `gunicorn wsgi:server`. No background threads here (run the simulator and the
maintenance with `python -m dashboard simulate` / `prune-logs`, or the worker, as separate processes)."""

from app import create_app

app = create_app()
server = app.server
