"""WSGI entry point: `gunicorn wsgi:server`. No background threads here (run the simulator and the
maintenance with `python -m dashboard simulate` / `prune-logs`, or the worker, as separate processes)."""

import gc

from app import create_app_or_exit
from pages._charts import warm_up

app = create_app_or_exit()
server = app.server
warm_up()  # plotly's lazy imports now, not in this worker's first callback
# Everything built so far lives as long as the worker: keep it out of the garbage collector's scans
# (docs/benchmarks.md, "Figures behind UI decisions").
gc.freeze()
