"""What the tests that kill real processes share: free loopback ports, processes started in their own session
and SIGKILLed, waiting on a condition, and an SMTP server that counts what each recipient received."""

import collections
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from aiosmtpd.controller import Controller

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for(condition, seconds: float, what: str):
    """Poll `condition` until it gives something true, and return it; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return found


class Receiver:
    """aiosmtpd's handler: how many messages each recipient got."""

    def __init__(self):
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.counts.update(envelope.rcpt_tos)
        return "250 OK"

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())


# SMTP connections of a delivery worker: the most messages a killed worker can leave in doubt.
WINDOW = 4


@contextmanager
def mail_installation(tmp_path: Path):
    """A migrated SQLite installation whose email goes to a counting SMTP server on loopback, with short worker
    heartbeats and message leases so a killed worker's work is taken over within seconds: (env, receiver)."""
    receiver = Receiver()
    controller = Controller(receiver, hostname="127.0.0.1", port=free_port())
    controller.start()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cim.config.settings",
        "CIM_DATA_DIR": str(tmp_path / "data"),
        "CIM_WORKER_HEARTBEAT_SECONDS": "1",
        "CIM_EMAIL_HOST": "127.0.0.1",
        "CIM_EMAIL_PORT": str(controller.port),
        "CIM_EMAIL_USE_TLS": "false",
        "CIM_MESSAGE_QUIET_HOURS": "",
        "CIM_MESSAGE_CAPS": "",
        "CIM_MESSAGE_LEASE_SECONDS": "5",
        "CIM_EMAIL_CONNECTIONS": str(WINDOW),
    }
    env.pop("CIM_DATABASE_URL", None)
    try:
        subprocess.run([str(BIN / "cim"), "migrate", "--no-input", "-v0"], env=env, check=True, capture_output=True)
        yield env, receiver
    finally:
        controller.stop()


ENQUEUE_DELIVERY = """
import django
django.setup()
from cim.automation.tasks_messages import messages_deliver_task
messages_deliver_task.enqueue()
"""


def kill_mid_send_then_finish(env: dict, receiver: Receiver, tmp_path: Path, total: int) -> tuple[dict, set[str]]:
    """Start a worker on the queued messages, SIGKILL it a quarter of the way, let its lease run out and a second
    worker finish: (messages by status, numbers of the customers whose message waits for review)."""
    database = sqlite3.connect(tmp_path / "data" / "cim.sqlite3", timeout=30)
    try:
        first = start([str(BIN / "cim"), "worker", "--no-periodic"], env, tmp_path / "worker-1.log")
        wait_for(lambda: receiver.total() >= total // 4, 180, "a quarter of the messages")
        kill(first)
        assert receiver.total() < total, "every message went out before the kill"

        time.sleep(6)  # the killed worker's lease runs out
        subprocess.run([sys.executable, "-c", ENQUEUE_DELIVERY], env=env, check=True, capture_output=True)
        second = start([str(BIN / "cim"), "worker", "--no-periodic"], env, tmp_path / "worker-2.log")
        try:
            unsettled = "SELECT count(*) FROM automation_message WHERE status IN ('queued', 'sending')"
            wait_for(lambda: database.execute(unsettled).fetchone()[0] == 0, 300, "the second worker to finish")
        finally:
            kill(second)
        statuses = dict(database.execute("SELECT status, count(*) FROM automation_message GROUP BY status").fetchall())
        review = {
            row[0]
            for row in database.execute(
                "SELECT c.number FROM automation_message m JOIN customers_customer c ON c.id = m.customer_id "
                "WHERE m.status = 'review'"
            )
        }
    finally:
        database.close()
    return statuses, review


def assert_each_received_once(receiver: Receiver, statuses: dict, review: set[str], total: int) -> None:
    """Customers K000000… with addresses k0@example.com…: nobody got a message twice, everybody got theirs, except
    at most the window of messages in doubt (one per SMTP connection), which waits for review."""
    assert set(statuses) <= {"sent", "review"} and sum(statuses.values()) == total, statuses
    assert len(review) <= WINDOW, "more than one window of messages in doubt"
    doubtful = {f"k{int(number[1:])}@example.com" for number in review}
    assert max(receiver.counts.values()) == 1, "a recipient got a message twice"
    missing = {f"k{i}@example.com" for i in range(total)} - set(receiver.counts)
    assert missing <= doubtful, f"{len(missing)} recipients got nothing"
    assert receiver.total() >= total - len(doubtful)


# The start of a setup script run in the installation (`python -c`, argument: how many): customers K000000… with
# addresses k0@example.com… who consent to marketing, as `customers`.
CONSENTING_CUSTOMERS = """
import sys
import django
django.setup()
from cim.customers.models import Customer, Email
from cim.privacy.models import Consent
from cim.privacy.services import notice_sha256

n = int(sys.argv[1])
customers = Customer.objects.bulk_create([Customer(number=f"K{i:06d}", display_name=f"客户{i}") for i in range(n)])
Email.objects.bulk_create(
    [Email(customer=c, address=f"k{i}@example.com", is_primary=True) for i, c in enumerate(customers)]
)
text = "同意接收营销邮件"
Consent.objects.bulk_create(
    [Consent(customer=c, purpose="marketing", text=text, text_sha256=notice_sha256(text), text_version="1")
     for c in customers]
)
"""
