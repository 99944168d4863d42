"""SIGKILL a worker in the middle of sending 2,000 emails to a real SMTP server; another worker finishes the job.
Counted at the receiver: nobody gets a message twice, everybody gets theirs, except at most the window of messages
the killed worker had committed but not finished, which waits for review (docs/messages.md, exactly once)."""

import os
import subprocess
import sys

import pytest
from crashkit import CONSENTING_CUSTOMERS, assert_each_received_once, kill_mid_send_then_finish, mail_installation

MESSAGES = 2000

pytestmark = pytest.mark.skipif(bool(os.environ.get("CIM_DATABASE_URL")), reason="runs once, in the SQLite pass")

SETUP = (
    CONSENTING_CUSTOMERS
    + """
from cim.automation.messaging import messages_queue
from cim.automation.models import MessageTemplate

template = MessageTemplate.objects.create(
    name="大促", channel="email", purpose="marketing", subject="{{ customer.display_name }}，大促开始", body="全场九折"
)
result = messages_queue(customer_ids=[c.pk for c in customers], template=template, key_prefix="crash", actor=None)
assert result.queued == n, result
"""
)


def test_a_worker_killed_mid_send_sends_no_message_twice(tmp_path):
    with mail_installation(tmp_path) as (env, receiver):
        subprocess.run([sys.executable, "-c", SETUP, str(MESSAGES)], env=env, check=True, capture_output=True)
        statuses, review = kill_mid_send_then_finish(env, receiver, tmp_path, MESSAGES)
    assert_each_received_once(receiver, statuses, review, MESSAGES)
