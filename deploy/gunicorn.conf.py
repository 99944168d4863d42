"""gunicorn settings for CIM (docs/deploy.md): `gunicorn -c deploy/gunicorn.conf.py cim.config.wsgi:application`.

Every value can be overridden with GUNICORN_CMD_ARGS or the CIM_* variables read below.
"""

import gc
import os
import shutil
from pathlib import Path

from prometheus_client import multiprocess

bind = os.environ.get("CIM_BIND", "unix:/run/cim/gunicorn.sock")
# Two per core is gunicorn's rule of thumb for a mostly database-bound app.
workers = int(os.environ.get("CIM_WEB_WORKERS", str(2 * (os.cpu_count() or 1))))
worker_class = "sync"
timeout = int(os.environ.get("CIM_WEB_TIMEOUT", "120"))  # exports and imports of large files
graceful_timeout = 30
max_requests = 2000  # recycle workers now and then: long-lived processes collect fragments
# Import CIM once, in the master, and fork the workers from it: a worker then starts at once (importing takes
# 3 s of CPU, which a recycled worker took from the busy ones) and the workers share the imported code's memory.
# Code changes therefore need a restart (docs/deploy.md), not a reload.
preload_app = True
max_requests_jitter = 200
forwarded_allow_ips = os.environ.get("CIM_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = None  # CIM writes its own access line per request, as JSON, with ids and no query strings
errorlog = "-"
wsgi_app = "cim.config.wsgi:application"


# The folder through which the workers share their metrics: it must exist when the master imports CIM (whose
# metrics open their files at import), and start empty (on_starting runs after that import, once, not on reloads).
METRICS_FOLDER = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if METRICS_FOLDER:
    Path(METRICS_FOLDER).mkdir(parents=True, exist_ok=True)


def on_starting(server):
    if METRICS_FOLDER:
        shutil.rmtree(METRICS_FOLDER, ignore_errors=True)
        Path(METRICS_FOLDER).mkdir(parents=True)


def pre_fork(server, worker):
    # Keep what the import made (450,000 objects) out of the workers' garbage collections: a full collection
    # scanned it all, 140 ms during which the worker answered nobody. The pages stay shared after the fork, too.
    gc.freeze()


def child_exit(server, worker):
    if METRICS_FOLDER:
        multiprocess.mark_process_dead(worker.pid)
