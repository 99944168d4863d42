"""SIGKILL the worker in the middle of a campaign to 1,500 recipients on a real SMTP server; a new worker finishes
it. Counted at the receiver: nobody gets the campaign twice, everybody gets it, except at most the window of messages
the killed worker had committed but not finished (left for review, docs/messages.md); the campaign ends `sent`."""

import os
import sqlite3
import subprocess
import sys

import pytest
from crashkit import BIN, CONSENTING_CUSTOMERS, assert_each_received_once, kill_mid_send_then_finish, mail_installation

MESSAGES = 1500

pytestmark = pytest.mark.skipif(bool(os.environ.get("CIM_DATABASE_URL")), reason="runs once, in the SQLite pass")

SETUP = (
    CONSENTING_CUSTOMERS
    + """
from cim.automation.campaigns import campaign_create
from cim.segments.models import Segment, SegmentMember

segment = Segment.objects.create(name="会员", kind="static", size=n)
SegmentMember.objects.bulk_create([SegmentMember(segment=segment, customer=c, added_at=c.created_at)
                                   for c in customers])
variant = {"subject": "{{ customer.display_name }}，大促开始", "body": "全场九折 https://shop.example.com/"}
print(campaign_create(actor=None, name="大促", segment=segment, variants=[variant]).pk)
"""
)


def test_a_worker_killed_mid_campaign_sends_nobody_the_campaign_twice(tmp_path):
    with mail_installation(tmp_path) as (env, receiver):
        made = subprocess.run(
            [sys.executable, "-c", SETUP, str(MESSAGES)], env=env, check=True, capture_output=True, text=True
        )
        campaign = made.stdout.strip().splitlines()[-1]
        cim = str(BIN / "cim")
        subprocess.run([cim, "createuser", "mkt", "--role", "marketing", "--password", "x" * 20], env=env, check=True)
        # The start queues the campaign's step; the worker queues the messages, then delivers them.
        subprocess.run([cim, "campaigns", "start", campaign, "--user", "mkt"], env=env, check=True, capture_output=True)
        statuses, review = kill_mid_send_then_finish(env, receiver, tmp_path, MESSAGES)
        subprocess.run([cim, "campaigns", "advance"], env=env, check=True, capture_output=True)  # the minute job
        with sqlite3.connect(tmp_path / "data" / "cim.sqlite3") as database:
            status = database.execute("SELECT status FROM automation_campaign WHERE id = ?", [campaign]).fetchone()[0]
    assert status == "sent"
    assert_each_received_once(receiver, statuses, review, MESSAGES)
