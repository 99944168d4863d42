"""Message delivery rate: `messages_deliver` handing N emails to a real SMTP server (aiosmtpd on loopback), one
commit per window of messages before their DATA terminators (exactly once), beside the raw SMTP hand-off rate of
the same emails on one connection without any database work: `python bench/messages_bench.py --messages 10000`.

Builds a fresh SQLite database in bench/data/messages-N (or uses CIM_DATABASE_URL), N customers with an email and
a marketing consent, queues one message each, then times the delivery. Target ≥ 1,000 messages/s. Writes its
section of bench/RESULTS.md.
"""

import argparse
import os
import platform
import shutil
import smtplib
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    n = args.messages
    # The server in its own process: in this one, its event loop would wait for the interpreter lock at every
    # round trip and the measure would be of the lock, not of delivery.
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"]
    )
    time.sleep(2)
    data_dir = BENCH / "data" / f"messages-{n}"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    os.environ.update(
        CIM_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="cim.config.settings",
        CIM_EMAIL_HOST="127.0.0.1",
        CIM_EMAIL_PORT=str(port),
        CIM_EMAIL_USE_TLS="false",
        CIM_MESSAGE_QUIET_HOURS="",
        CIM_MESSAGE_CAPS="",
    )
    sys.path.insert(0, str(BENCH.parent / "src"))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from cim.automation.message_email import email_wire
    from cim.automation.messaging import messages_deliver, messages_queue
    from cim.automation.models import Message, MessageTemplate
    from cim.customers.models import Customer, Email
    from cim.privacy.models import Consent
    from cim.privacy.services import notice_sha256

    call_command("migrate", verbosity=0)
    customers = Customer.objects.bulk_create(
        [Customer(number=f"B{i:07d}", display_name=f"客户{i}") for i in range(n)], batch_size=5000
    )
    Email.objects.bulk_create(
        [Email(customer=c, address=f"b{i}@example.com", is_primary=True) for i, c in enumerate(customers)],
        batch_size=5000,
    )
    text = "同意接收营销邮件"
    Consent.objects.bulk_create(
        [
            Consent(customer=c, purpose="marketing", text=text, text_sha256=notice_sha256(text), text_version="1")
            for c in customers
        ],
        batch_size=5000,
    )
    template = MessageTemplate.objects.create(
        name="大促",
        channel="email",
        purpose="marketing",
        subject="{{ customer.display_name }}，大促开始",
        body="{{ customer.display_name }}您好：\n全场九折，欢迎光临。\n",
    )
    started = time.perf_counter()
    result = messages_queue(customer_ids=[c.pk for c in customers], template=template, key_prefix="bench", actor=None)
    queue_seconds = time.perf_counter() - started
    assert result.queued == n, result

    # The raw hand-off: the same emails, built the same way, on one SMTP connection, no database work (building
    # them first also loads the URL configuration, a one-time cost that is not delivery's).
    from cim.automation.messaging import Outgoing, Rendered

    sample = Message.objects.select_related("template").first()
    out = Outgoing(
        message=sample,
        address="raw@example.com",
        address_key="",
        rendered=Rendered("大促", "您好", ""),
        template=template,
    )
    payloads = [email_wire(out).data for _ in range(min(n, 2000))]
    smtp = smtplib.SMTP("127.0.0.1", port)
    started = time.perf_counter()
    for data in payloads:
        smtp.sendmail("noreply@localhost", ["raw@example.com"], data)
    raw_seconds = time.perf_counter() - started
    smtp.quit()

    started = time.perf_counter()
    run = messages_deliver(limit=n + 1)
    deliver_seconds = time.perf_counter() - started
    server.terminate()
    assert run.sent == n, run
    rate = n / deliver_seconds
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    engine = connection.vendor
    lines = [
        f"`bench/messages_bench.py --messages {n}`: {engine}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), load average {load} at the end. "
        f"aiosmtpd (Sink handler) on loopback in its own process; one worker, {settings.CIM_EMAIL_CONNECTIONS} SMTP "
        "connections (CIM_EMAIL_CONNECTIONS). Target ≥ 1,000 messages/s.",
        "",
        "| measure | messages | seconds | messages/s | met |",
        "|---|---:|---:|---:|:---:|",
        f"| messages_queue (consent, caps, addresses, insert) | {n:,} | {queue_seconds:.2f} "
        f"| {n / queue_seconds:,.0f} | |",
        f"| raw SMTP hand-off (smtplib.sendmail, one connection, no database) | {len(payloads):,} | {raw_seconds:.2f} "
        f"| {len(payloads) / raw_seconds:,.0f} | |",
        "| messages_deliver (render with tracking links, one commit per window of messages before their DATA "
        f"terminators) | {n:,} | "
        f"{deliver_seconds:.2f} | {rate:,.0f} | {'yes' if rate >= 1000 else 'no'} |",
    ]
    write_section("Message delivery", lines, args.results)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
