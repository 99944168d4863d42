"""Importing interactions: a call centre's call log and another CRM's follow-up records, matched to customers."""

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.utils.translation import override
from hypothesis import given, settings
from hypothesis import strategies as st

from cim.activities.models import Interaction
from cim.customers.tests.factories import make_customer
from cim.ingest.interaction_import import MAX_MINUTES, InteractionPreparer, interaction_kind, parse_minutes
from cim.ingest.models import ImportJob, ImportRowError
from cim.ingest.services import import_job_create, import_run

CALL_LOG = [
    ["通话时间", "客户号码", "呼叫类型", "通话时长(秒)", "坐席", "通话结果", "备注"],
    ["2026-03-01 10:00:00", "138 1234 5678", "呼出", "332", "王芳", "已接通", "客户有意向购买"],
    ["2026/3/2 14:05", "13812345678", "呼入", "00:01:05", "wangfang", "未接通", ""],
    ["2026-03-03 09:00", "13900000000", "呼出", "60", "王芳", "接通", ""],
    ["2026-03-04 09:00", "13812345678", "呼出", "很久", "王芳", "接通", ""],
    ["2026-03-05 09:00", "13812345678", "呼出", "30", "李雷", "接通", ""],
    ["2026-03-06 09:00", "13812345678", "回拨", "30", "王芳", "客户要求下周再打", ""],
]


@pytest.fixture
def customer(admin_user):
    return make_customer(admin_user, display_name="赵敏", phones=[{"number": "13812345678"}])


@pytest.fixture
def agent(make_user):
    user = make_user("sales", "wangfang")
    user.first_name, user.last_name = "芳", "王"
    user.save(update_fields=["first_name", "last_name"])
    return user


def write_csv(path, rows, encoding="gb18030"):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def run(path, actor, *, dry_run=False):
    job = import_job_create(path=path, filename=path.name, actor=actor, kind="interactions")
    return job, import_run(job=job, actor=actor, dry_run=dry_run)


def test_a_call_centre_log_imports_its_calls_and_a_second_import_changes_nothing(tmp_path, customer, agent, admin_user):
    path = write_csv(tmp_path / "通话记录.csv", CALL_LOG)
    checked, predicted = run(path, admin_user, dry_run=True)
    assert checked.mapping == {
        "通话时间": "occurred_at", "客户号码": "phone", "呼叫类型": "direction", "通话时长(秒)": "duration",
        "坐席": "staff", "通话结果": "outcome", "备注": "body",
    }  # fmt: skip
    assert Interaction.objects.count() == 0
    with override("en"):
        job, counts = run(path, admin_user)
    assert (predicted.created, predicted.rejected) == (counts.created, counts.rejected) == (3, 3)

    first, second, third = customer.interactions.order_by("occurred_at")
    assert (first.kind, first.direction, first.duration_minutes, first.outcome) == ("call", "outbound", 6, "reached")
    assert first.occurred_at == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    assert first.body == "客户有意向购买" and first.logged_by == agent and list(first.staff.all()) == [agent]
    assert (second.direction, second.duration_minutes, second.outcome) == ("inbound", 2, "no_answer")
    # Words no rule knows are kept where a person reads them, not dropped.
    assert (third.direction, third.outcome) == ("", "")
    assert third.body == "呼叫类型: 回拨\n通话结果: 客户要求下周再打"
    problems = {e.row: (e.column, e.message) for e in ImportRowError.objects.filter(job=job)}
    assert problems[4][0] == "" and problems[5][0] == "通话时长(秒)" and problems[6] == ("坐席", "Unknown staff: 李雷.")

    _, again = run(path, admin_user)
    assert (again.created, again.unchanged, again.rejected) == (0, 3, 3)
    assert Interaction.objects.count() == 3


def test_follow_up_records_of_another_crm_map_their_kinds_by_their_words(tmp_path, customer, admin_user):
    rows = [
        ["客户编号", "跟进方式", "跟进时间", "跟进内容", "客户联系人"],
        [customer.number, "电话回访", "2026-04-01 09:30", "回访满意度", "赵敏、张无忌"],
        [customer.number, "上门拜访", "2026-04-02 15:00", "送样品", ""],
        [customer.number, "微信沟通", "2026-04-03", "发了报价单", ""],
        [customer.number, "飞鸽传书", "2026-04-04", "", ""],
        [customer.number, "电话回访", "", "没有时间", ""],
    ]
    path = write_csv(tmp_path / "跟进记录.csv", rows, "utf-8-sig")
    out = io.StringIO()
    with override("en"):
        call_command("import", "interactions", str(path), "--json", stdout=out, stderr=io.StringIO())
    report = json.loads(out.getvalue().strip().splitlines()[-1])
    assert (report["created"], report["rejected"]) == (3, 2)
    kinds = list(customer.interactions.order_by("occurred_at").values_list("kind", "contacts"))
    assert kinds == [("call", ["赵敏", "张无忌"]), ("visit", []), ("wechat", [])]
    messages = set(ImportRowError.objects.values_list("message", flat=True))
    assert {"Unknown kind of interaction.", "Enter a time like 2024-05-01 13:05 or 2024/5/1."} == messages


def test_words_and_durations_as_exports_write_them():
    assert [interaction_kind(w) for w in ("call", "电话回访", "上门拜访", "微信电话", "Email", "note", "信鸽")] == [
        "call", "call", "visit", "wechat", "email", "note", ""
    ]  # fmt: skip
    assert [parse_minutes(t, in_seconds=False) for t in ("00:05:32", "5:32", "5分32秒", "1小时", "90", "5:75")] == [
        6, 6, 6, 60, 90, None
    ]  # fmt: skip
    assert [parse_minutes(t, in_seconds=True) for t in ("332", "0", "-3", "nan", "")] == [6, 0, None, None, None]


def test_importing_interactions_needs_the_right_to_import_history(tmp_path, users):
    from cim.accounts.roles import Role
    from cim.customers.services import PermissionDenied

    path = write_csv(tmp_path / "通话记录.csv", CALL_LOG)
    with pytest.raises(PermissionDenied):
        import_job_create(path=path, filename=path.name, actor=users[Role.MARKETING], kind="interactions")


def test_the_wizard_offers_interactions_to_those_who_may_import_them(tmp_path, users, customer):
    from django.test import Client

    from cim.accounts.roles import Role

    marketing = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    marketing.force_login(users[Role.MARKETING])
    assert "互动记录（通话、拜访、跟进记录）" not in marketing.get("/imports/").content.decode()
    manager = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    manager.force_login(users[Role.MANAGER])
    assert "互动记录（通话、拜访、跟进记录）" in manager.get("/imports/").content.decode()
    path = write_csv(tmp_path / "通话记录.csv", CALL_LOG[:3])
    with path.open("rb") as upload:
        page = manager.post("/imports/", {"file": upload, "kind": "interactions"}, follow=True).content.decode()
    assert '<option value="duration" selected>时长</option>' in page


@settings(max_examples=200, deadline=None)
@given(cells=st.dictionaries(st.sampled_from(CALL_LOG[0] + ["跟进方式", "主题"]), st.text(max_size=40)))
def test_any_cells_give_an_interaction_or_row_errors_never_an_exception(cells):
    mapping = {
        "通话时间": "occurred_at", "客户号码": "phone", "呼叫类型": "direction", "通话时长(秒)": "duration",
        "坐席": "staff", "通话结果": "outcome", "备注": "body", "跟进方式": "kind", "主题": "subject",
    }  # fmt: skip
    preparer = InteractionPreparer(ImportJob(mapping=mapping))
    number, errors, _keys, details, _staff, _contacts = preparer.prepare(2, cells)
    assert number == 2 and (errors or details)
    if details:
        assert details[0] in Interaction.Kind.values and (details[3] is None or 0 <= details[3] <= MAX_MINUTES)
