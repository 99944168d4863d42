"""SIGKILL the worker in the middle of a campaign to 1,500 recipients on a real SMTP server; a new worker finishes
it. Counted at the receiver: nobody gets the campaign twice, everybody gets it, except at most the one message the
killed worker had committed but not finished (left for review, docs/messages.md); the campaign ends `sent`."""

import collections
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

BIN = Path(sys.executable).parent
MESSAGES = 1500

pytestmark = pytest.mark.skipif(bool(os.environ.get("CIM_DATABASE_URL")), reason="runs once, in the SQLite pass")

SETUP = """
import sys
import django
django.setup()
from cim.automation.campaigns import campaign_create
from cim.customers.models import Customer, Email
from cim.privacy.models import Consent
from cim.privacy.services import notice_sha256
from cim.segments.models import Segment, SegmentMember

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
segment = Segment.objects.create(name="会员", kind="static", size=n)
SegmentMember.objects.bulk_create([SegmentMember(segment=segment, customer=c, added_at=c.created_at)
                                   for c in customers])
variant = {"subject": "{{ customer.display_name }}，大促开始", "body": "全场九折 https://shop.example.com/"}
print(campaign_create(actor=None, name="大促", segment=segment, variants=[variant]).pk)
"""

ENQUEUE = """
import django
django.setup()
from cim.automation.tasks_messages import messages_deliver_task
messages_deliver_task.enqueue()
"""


class Receiver:
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_worker_killed_mid_campaign_sends_nobody_the_campaign_twice(tmp_path):
    receiver = Receiver()
    controller = Controller(receiver, hostname="127.0.0.1", port=_free_port())
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
    }
    env.pop("CIM_DATABASE_URL", None)
    try:
        subprocess.run([str(BIN / "cim"), "migrate", "--no-input", "-v0"], env=env, check=True, capture_output=True)
        made = subprocess.run(
            [sys.executable, "-c", SETUP, str(MESSAGES)], env=env, check=True, capture_output=True, text=True
        )
        campaign = made.stdout.strip().splitlines()[-1]
        cim = str(BIN / "cim")
        subprocess.run([cim, "createuser", "mkt", "--role", "marketing", "--password", "x" * 20], env=env, check=True)
        # The start queues the campaign's step; the worker queues the messages, then delivers them.
        subprocess.run([cim, "campaigns", "start", campaign, "--user", "mkt"], env=env, check=True, capture_output=True)
        database = sqlite3.connect(tmp_path / "data" / "cim.sqlite3", timeout=30)

        first = _start([str(BIN / "cim"), "worker", "--no-periodic"], env, tmp_path / "worker-1.log")
        _wait(lambda: receiver.total() >= MESSAGES // 4, 180, "a quarter of the messages")
        _kill(first)
        cut_at = receiver.total()
        assert cut_at < MESSAGES, "every message went out before the kill"

        time.sleep(6)  # the killed worker's lease runs out
        subprocess.run([sys.executable, "-c", ENQUEUE], env=env, check=True, capture_output=True)
        second = _start([str(BIN / "cim"), "worker", "--no-periodic"], env, tmp_path / "worker-2.log")
        try:
            unsettled = "SELECT count(*) FROM automation_message WHERE status IN ('queued', 'sending')"
            _wait(lambda: database.execute(unsettled).fetchone()[0] == 0, 300, "the second worker to finish")
        finally:
            _kill(second)
        subprocess.run([cim, "campaigns", "advance"], env=env, check=True, capture_output=True)  # the minute job
        status = database.execute("SELECT status FROM automation_campaign WHERE id = ?", [campaign]).fetchone()[0]
        statuses = dict(database.execute("SELECT status, count(*) FROM automation_message GROUP BY status").fetchall())
        review = {
            row[0]
            for row in database.execute(
                "SELECT c.number FROM automation_message m JOIN customers_customer c ON c.id = m.customer_id "
                "WHERE m.status = 'review'"
            )
        }
        database.close()
    finally:
        controller.stop()

    assert status == "sent"
    assert set(statuses) <= {"sent", "review"} and sum(statuses.values()) == MESSAGES, statuses
    assert len(review) <= 1, "more than one message in doubt"
    doubtful = {f"k{int(number[1:])}@example.com" for number in review}
    assert max(receiver.counts.values()) == 1, "a recipient got a message twice"
    missing = {f"k{i}@example.com" for i in range(MESSAGES)} - set(receiver.counts)
    assert missing <= doubtful, f"{len(missing)} recipients got nothing"
    assert receiver.total() >= MESSAGES - len(doubtful)
