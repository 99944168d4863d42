"""A canary customer: unique strings in every place a customer's data lands, and a search of the whole database."""

import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from cim.activities.history_schemas import InteractionInput
from cim.activities.interactions import interaction_log
from cim.activities.models import BehaviourEvent
from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_update
from cim.customers.tests.factories import make_customer
from cim.ingest.models import CollectionForm, FormSubmission
from cim.ingest.sources import event_source_create
from cim.privacy.services import consent_record
from cim.service.services import ticket_create

CANARIES = {
    "name": "甄喵测试",
    "phone": "13912349876",
    "email": "canary.zq@example.org",
    "street": "梧桐巷88号喵苑",
    "notes": "canarynote-xyzzy",
    "interaction": "interaction-canary-plugh",
    "event": "event-canary-frob",
    "form": "form-canary-quux",
    "ticket": "ticket-canary-wibble",
    "attachment": "attachment-canary-zork",
}


def make_canary(admin_user):
    c = CANARIES
    customer = make_customer(
        admin_user,
        display_name=c["name"],
        phones=[{"number": c["phone"]}],
        emails=[{"address": c["email"]}],
        addresses=[{"province": "浙江省", "city": "杭州市", "street": c["street"]}],
    )
    # An edit, so the change history holds old and new values.
    customer_update(customer=customer, data=CustomerInput(display_name=c["name"], notes=c["notes"]), actor=admin_user)
    customer.refresh_from_db()
    interaction_log(
        customer=customer,
        data=InteractionInput(kind="call", subject="回访", body=c["interaction"]),
        actor=admin_user,
        files=[SimpleUploadedFile("note.txt", c["attachment"].encode())],
    )
    source, _key = event_source_create(name="网站", actor=admin_user)
    BehaviourEvent.objects.create(
        source=source,
        customer=customer,
        type="track",
        name="Viewed",
        user_id="u-canary",
        properties={"comment": c["event"], "name": c["name"]},
        message_id="m-1",
        occurred_at=customer.created_at,
        received_at=customer.created_at,
    )
    form = CollectionForm.objects.create(
        slug="canary",
        name="表单",
        title_zh="登记",
        title_en="Sign-up",
        consent_purpose="marketing",
        consent_text_zh="同意",
        consent_text_en="I agree",
        consent_version="v1",
    )
    submission = FormSubmission.objects.create(
        form=form,
        raw={"display_name": c["name"], "phone": c["phone"], "remark": c["form"]},
        ip="10.1.2.3",
        status=FormSubmission.Status.CONFIRMED,
        customer=customer,
    )
    consent_record(
        customer=customer,
        purpose="marketing",
        text="同意",
        text_version="v1",
        ip="10.1.2.3",
        submission=submission,
        actor=None,
    )
    ticket_create(customer=customer, subject="投诉", description=c["ticket"], channel="phone", actor=admin_user)
    return customer


def database_hits(strings) -> dict[str, list[str]]:
    """Every table and column (text, JSON, blobs, FTS5 segments) of the database that holds one of `strings`,
    as stored: plain and JSON-escaped (SQLite stores JSON with \\u escapes)."""
    forms = {s: {s, json.dumps(s)[1:-1]} for s in strings}
    hits: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor, include_views=False):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            columns = [d[0] for d in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    if isinstance(value, bytes | memoryview):
                        raw = bytes(value)
                        text = raw.decode("utf-8", "ignore")
                    else:
                        text = str(value)
                    for canary, variants in forms.items():
                        if any(v in text for v in variants):
                            hits.setdefault(canary, []).append(f"{table}.{column}")
    return hits
