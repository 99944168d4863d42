"""The import API: upload, map, dry run, import and read the rejected rows, as a script does it."""

import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django_tasks_db.models import DBTaskResult

from cim.accounts.roles import Role
from cim.audit.models import AuditEvent
from cim.customers.models import Customer
from cim.ingest.models import ImportJob, ImportMapping

CSV = "客户姓名,手机号码,备注\n张三,13812345678,老客户\n李四,12345,\n王五,13900001111,\n".encode("gb18030")


def _upload(client, content=CSV, name="客户.csv", **fields):
    return client.post("/api/v1/imports", {"file": SimpleUploadedFile(name, content), **fields})


def _run_queued_task():
    task = DBTaskResult.objects.filter(status="READY", task_path__endswith=".import_job_run").get()
    task.task.call(**task.args_kwargs["kwargs"])
    task.delete()  # run here, not by a worker


def test_a_script_uploads_dry_runs_imports_and_reads_the_rejected_rows(api_client, admin_user):
    client = api_client(admin_user)
    created = _upload(client, source="crm")
    assert created.status_code == 201, created.content
    job = created.json()
    assert job["status"] == "uploaded" and job["file_format"] == "csv" and job["encoding"] == "gb18030"
    assert job["mapping"] == {"客户姓名": "display_name", "手机号码": "phones", "备注": "notes"}

    dry = client.post(f"/api/v1/imports/{job['id']}/run", {"dry_run": True}, content_type="application/json")
    assert dry.status_code == 202 and dry.json()["status"] == "queued"
    _run_queued_task()
    checked = client.get(f"/api/v1/imports/{job['id']}").json()
    assert checked["status"] == "checked" and checked["dry_run_counts"]["created"] == 2
    assert Customer.objects.count() == 0

    client.post(f"/api/v1/imports/{job['id']}/run", {}, content_type="application/json")
    _run_queued_task()
    done = client.get(f"/api/v1/imports/{job['id']}").json()
    assert done["status"] == "done" and (done["counts"]["created"], done["counts"]["rejected"]) == (2, 1)
    assert set(Customer.objects.values_list("display_name", flat=True)) == {"张三", "王五"}

    errors = client.get(f"/api/v1/imports/{job['id']}/errors?limit=1").json()
    assert errors["items"] == [{"row": 3, "column": "手机号码", "reason": errors["items"][0]["reason"]}]
    assert "12345" not in errors["items"][0]["reason"] and errors["next_cursor"] is None
    assert AuditEvent.objects.filter(action="import.errors_export", note="dry_run=False api").exists()

    again = client.post(f"/api/v1/imports/{job['id']}/run", {}, content_type="application/json")
    assert again.status_code == 422 and again.json()["details"][0]["field"] == "status"
    assert [j["id"] for j in client.get("/api/v1/imports").json()] == [job["id"]]


def test_the_mapping_is_given_changed_and_saved_with_errors_per_field(api_client, admin_user):
    client = api_client(admin_user)
    mapping = {"客户姓名": "display_name", "手机号码": "phones_work", "备注": ""}
    job = _upload(client, mapping=json.dumps(mapping, ensure_ascii=False)).json()
    assert job["mapping"] == mapping
    url = f"/api/v1/imports/{job['id']}/mapping"

    wrong = client.put(url, {"mapping": {"客户姓名": "nickname"}}, content_type="application/json")
    assert wrong.status_code == 422 and wrong.json()["details"][0]["field"] == "mapping"
    assert "nickname" in wrong.json()["details"][0]["message"]

    fixed = client.put(
        url,
        {"mapping": {"客户姓名": "display_name", "备注": "notes"}, "save_as": "CRM"},
        content_type="application/json",
    )
    assert fixed.status_code == 200 and fixed.json()["mapping"] == {"客户姓名": "display_name", "备注": "notes"}
    assert ImportMapping.objects.get(name="CRM").mapping == fixed.json()["mapping"]
    reused = _upload(client, saved_mapping="CRM").json()
    assert reused["mapping"] == fixed.json()["mapping"]
    fields = {f["name"] for f in client.get("/api/v1/imports/fields?kind=orders").json()}
    assert {"order_number", "unit_price", "phone"} <= fields


def test_bad_files_and_bad_fields_are_refused_per_field_in_the_users_language(api_client, admin_user):
    client = api_client(admin_user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    empty = _upload(client, content=b"")
    assert empty.status_code == 422 and empty.json()["details"] == [
        {"field": "file", "code": "invalid", "message": "文件是空的。"}
    ]
    unmapped = _upload(client, content="金额,日期\n1,2024-01-01\n".encode())
    assert unmapped.status_code == 422 and unmapped.json()["details"][0]["field"] == "mapping"
    not_json = _upload(client, mapping="{")
    assert not_json.status_code == 422 and not_json.json()["details"][0]["field"] == "mapping"
    unknown = _upload(client, saved_mapping="无此映射")
    assert unknown.json()["details"] == [
        {"field": "saved_mapping", "code": "invalid", "message": "没有以这个名称保存的映射。"}
    ]
    assert _upload(client, kind="contacts").status_code == 422
    assert ImportJob.objects.count() == 0


def test_imports_are_seen_by_their_owner_and_administrators_and_orders_need_the_right(api_client, users, admin_user):
    marketing = api_client(users[Role.MARKETING])
    job = _upload(marketing).json()
    assert api_client(admin_user).get(f"/api/v1/imports/{job['id']}").status_code == 200
    assert api_client(users[Role.MANAGER]).get(f"/api/v1/imports/{job['id']}").status_code == 404
    orders = _upload(marketing, content=b"order_no,phone,price\nA1,13812345678,5\n", kind="orders")
    assert orders.status_code == 403 and orders.json()["code"] == "permission_denied"
    assert api_client(users[Role.SALES]).get("/api/v1/imports").status_code == 403
