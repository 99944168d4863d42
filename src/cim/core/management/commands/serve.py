import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

WORKER = [sys.executable, "-m", "django", "worker"]


class Command(BaseCommand):
    help = "Serve CIM with gunicorn; --with-worker also runs one background task worker and stops it with the server."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
        parser.add_argument("--with-worker", action="store_true", help="also run `cim worker` alongside")

    def handle(self, *args, host: str, port: int, workers: int, with_worker: bool, **options):
        if not Path(settings.STATIC_ROOT).is_dir():
            self.stderr.write(f"No static files in {settings.STATIC_ROOT}: run `cim collectstatic` first.")
        # Children inherit DJANGO_SETTINGS_MODULE and CIM_* from this process, so they see the same settings.
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "cim.config.wsgi:application",
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(workers),
                "--graceful-timeout",
                "10",
            ]
        )
        worker = subprocess.Popen(WORKER) if with_worker else None
        self.stdout.write(self.style.SUCCESS(f"CIM is running at http://{host}:{port}/") + "  (Ctrl-C to stop)")
        # SIGTERM (systemd, docker stop) takes the same path as Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while server.poll() is None:
                if worker is not None and worker.poll() is not None:
                    self.stderr.write(f"The background worker stopped (exit {worker.returncode}); restarting it.")
                    worker = subprocess.Popen(WORKER)
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("Stopping…")
        finally:
            for process in (worker, server):
                _stop(process)
        if server.returncode not in (0, -signal.SIGTERM, -signal.SIGINT):
            raise CommandError(f"gunicorn exited with status {server.returncode}.")
        self.stdout.write("Stopped.")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop(process: subprocess.Popen | None) -> None:
    """Ask a child to finish its current work, and kill it if it has not within 15 seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
