"""gunicorn settings for CIM (docs/deploy.md): `gunicorn -c deploy/gunicorn.conf.py cim.config.wsgi:application`.

Every value can be overridden with GUNICORN_CMD_ARGS or the CIM_* variables read below.
"""

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
max_requests_jitter = 200
forwarded_allow_ips = os.environ.get("CIM_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = None  # CIM writes its own access line per request, as JSON, with ids and no query strings
errorlog = "-"
wsgi_app = "cim.config.wsgi:application"


def on_starting(server):
    # The folder through which the workers share their metrics must start empty.
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
