"""Scheduled reports: audited services, once per period (also when a worker dies), XLSX and PDF files, e-mail, and
the page, API and CLI."""

import io
import json
from datetime import date, datetime, timedelta

import openpyxl
import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone, translation
from django.utils.translation import override

from cim.accounts.roles import Role
from cim.analytics import reports
from cim.analytics.dashboard import DashboardFilter
from cim.analytics.models import ReportSchedule
from cim.analytics.reports import ReportError, report_build
from cim.analytics.schedules import (
    period_of,
    report_schedule_create,
    report_schedule_delete,
    report_schedule_send,
    report_schedule_update,
    report_schedules_send_due,
)
from cim.analytics.tests.test_dashboard import buy
from cim.audit.models import AuditEvent
from cim.customers.tests.factories import make_customer

JANUARY = DashboardFilter(period="custom", start=date(2026, 1, 1), end=date(2026, 1, 31))
MONDAY = timezone.make_aware(datetime(2026, 11, 30, 9))


def schedule_data(**fields) -> dict:
    data = {
        "name": "月度看板",
        "report": "dashboard",
        "format": "xlsx",
        "frequency": "daily",
        "recipients": "boss@example.com; Ops@Example.com",
        "language": "en",
        "filters": {"from": "2026-01-01", "to": "2026-01-31"},
    }
    return {**data, **fields}


CREATED = sorted(["name", "report", "format", "frequency", "recipients", "language", "filters"])


@pytest.fixture
def orders(admin_user):
    customer = make_customer(admin_user, display_name="甲", source_channel="website")
    buy(customer, admin_user, "2026-01-05", "100")
    buy(customer, admin_user, "2026-01-20", "50")
    return customer


def client_for(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_services_validate_normalise_and_audit(admin_user):
    schedule = report_schedule_create(data=schedule_data(), actor=admin_user)
    assert schedule.recipients == ["boss@example.com", "ops@example.com"]
    assert schedule.filters == {"period": "custom", "from": "2026-01-01", "to": "2026-01-31"}
    assert schedule.owner == admin_user
    report_schedule_update(schedule=schedule, data={"frequency": "weekly", "name": "月度看板"}, actor=admin_user)
    report_schedule_update(schedule=schedule, data={"frequency": "weekly"}, actor=admin_user)  # no change
    schedule_id = schedule.pk
    report_schedule_delete(schedule=schedule, actor=admin_user)
    events = AuditEvent.objects.filter(target_type="analytics.reportschedule", target_id=str(schedule_id))
    assert [(e.action, e.fields) for e in events.order_by("id")] == [
        (
            "report_schedule.create",
            sorted(["name", "report", "format", "frequency", "recipients", "language", "filters"]),
        ),
        ("report_schedule.update", ["frequency"]),
        ("report_schedule.delete", ["name", "report"]),
    ]
    with override("en"), pytest.raises(ValidationError) as error:
        report_schedule_create(
            data=schedule_data(recipients="not-an-address", report="horoscope", filters={"period": "custom"}),
            actor=admin_user,
        )
    assert set(error.value.message_dict) == {"recipients", "report", "filters"}
    assert not ReportSchedule.objects.exists()


def test_periods_of_each_frequency():
    assert period_of("daily", MONDAY) == "2026-11-30"
    assert period_of("weekly", MONDAY) == "2026-W49"
    assert period_of("weekly", MONDAY + timedelta(days=6)) == "2026-W49"
    assert period_of("monthly", MONDAY + timedelta(days=1)) == "2026-12"


def test_due_reports_are_mailed_once_per_period(admin_user, orders):
    daily = report_schedule_create(data=schedule_data(), actor=admin_user)
    weekly = report_schedule_create(data=schedule_data(name="周报", frequency="weekly"), actor=admin_user)
    report_schedule_create(data=schedule_data(name="停了", is_active=False), actor=admin_user)

    assert report_schedules_send_due(now=MONDAY) == 2
    assert report_schedules_send_due(now=MONDAY + timedelta(hours=1)) == 0  # the next hourly round
    assert len(mail.outbox) == 2
    message = mail.outbox[0]
    assert message.to == ["boss@example.com", "ops@example.com"]
    assert message.subject == "月度看板: Dashboard KPIs"  # in the schedule's language
    ((filename, content, mimetype),) = message.attachments
    assert filename == "cim-dashboard-20260131.xlsx" and mimetype.endswith("spreadsheetml.sheet")
    assert openpyxl.load_workbook(io.BytesIO(content)).worksheets[0]["A1"].value == "Dashboard KPIs"
    daily.refresh_from_db()
    assert (daily.last_period, daily.last_sent_at, daily.last_error) == ("2026-11-30", MONDAY, "")

    assert report_schedules_send_due(now=MONDAY + timedelta(days=1)) == 1  # the daily one only
    weekly.refresh_from_db()
    assert weekly.last_period == "2026-W49"
    assert len(mail.outbox) == 3


def test_a_claimed_period_is_never_sent_twice(admin_user, orders):
    schedule = report_schedule_create(data=schedule_data(), actor=admin_user)
    stale = ReportSchedule.objects.get(pk=schedule.pk)
    assert report_schedule_send(schedule=schedule, now=MONDAY)
    assert not report_schedule_send(schedule=stale, now=MONDAY)  # a second worker holding the old row
    # A worker that claimed the next day and died before sending: that day is not sent again.
    ReportSchedule.objects.filter(pk=schedule.pk).update(last_period="2026-12-01")
    assert report_schedules_send_due(now=MONDAY + timedelta(days=1)) == 0
    assert len(mail.outbox) == 1


def test_a_failure_gives_the_period_back(admin_user, orders, monkeypatch, settings, tmp_path):
    schedule = report_schedule_create(data=schedule_data(format="pdf"), actor=admin_user)
    settings.CIM_PDF_FONT = ""
    monkeypatch.setattr(reports, "FONT_DIRS", (str(tmp_path),))
    with translation.override("en"):  # the error is kept in the language of the run
        assert report_schedules_send_due(now=MONDAY) == 0
    schedule.refresh_from_db()
    assert schedule.last_period == "" and "No font with Chinese characters" in schedule.last_error
    assert not mail.outbox
    monkeypatch.undo()
    assert report_schedules_send_due(now=MONDAY + timedelta(hours=1)) == 1
    schedule.refresh_from_db()
    assert schedule.last_error == "" and mail.outbox[0].attachments[0][0].endswith(".pdf")


def test_xlsx_holds_the_figures(orders):
    built = report_build(report="dashboard", format="xlsx", filters=JANUARY, language="en")
    book = openpyxl.load_workbook(io.BytesIO(built.content))
    figures = {row[0]: row[1] for row in book.worksheets[0].iter_rows(min_row=5, values_only=True)}
    assert figures["Revenue (net of refunds)"] == 150
    assert figures["Active customers (ordered)"] == 1
    assert figures["Repeat-purchase rate"] == 1.0
    assert figures["Value at risk"] is None  # churn risk not computed
    assert book.worksheets[0]["A1"].value == "Dashboard KPIs"
    assert book.worksheets[0]["A2"].value == "2026-01-01 to 2026-01-31"


def test_cohort_pdf_is_written_with_a_chinese_font(orders):
    built = report_build(report="cohorts", format="pdf", filters=JANUARY, language="en")
    assert built.content.startswith(b"%PDF")
    assert b"/Title (Cohort retention)" in built.content
    assert b"/FontFile2" in built.content  # the CJK font is embedded, so Chinese text shows
    zh = report_build(report="rfm", format="pdf", filters=JANUARY, language="zh-hans")
    assert zh.content.startswith(b"%PDF") and zh.filename.endswith(".pdf")


def test_no_chinese_font_is_a_clear_error(monkeypatch, settings, tmp_path):
    settings.CIM_PDF_FONT = ""
    monkeypatch.setattr(reports, "FONT_DIRS", (str(tmp_path),))
    with override("en"), pytest.raises(ReportError, match="apt-get install fonts-wqy-microhei"):
        reports.render_pdf(reports.Document(title="客户", subtitle=""))


def test_schedules_page_creates_edits_downloads_and_deletes(users):
    client = client_for(users[Role.ANALYST])
    form = {
        "name": "周报",
        "report": "cohorts",
        "format": "xlsx",
        "frequency": "weekly",
        "recipients": "a@example.com\nb@example.com",
        "language": "zh-hans",
        "is_active": "on",
        "period": "year",
    }
    bad = client.post("/analytics/reports/", {**form, "recipients": "nobody"})
    assert bad.status_code == 200 and "is not an e-mail address" in bad.content.decode()
    assert client.post("/analytics/reports/", form).status_code == 302
    schedule = ReportSchedule.objects.get()
    assert schedule.recipients == ["a@example.com", "b@example.com"] and schedule.filters == {"period": "year"}
    assert "周报" in client.get("/analytics/reports/").content.decode()
    edited = client.post(f"/analytics/reports/{schedule.pk}/", {**form, "frequency": "monthly", "period": "90d"})
    assert edited.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.frequency, schedule.filters) == ("monthly", {"period": "90d"})
    download = client.get(f"/analytics/reports/{schedule.pk}/download/")
    assert download.status_code == 200 and download["Content-Disposition"].endswith('.xlsx"')
    assert client.post(f"/analytics/reports/{schedule.pk}/delete/").status_code == 302
    assert not ReportSchedule.objects.exists()
    assert client_for(users[Role.SALES]).get("/analytics/reports/").status_code == 403


def test_schedule_api_crud(api_client, users):
    client = api_client(users[Role.MARKETING])
    body = {**schedule_data(), "recipients": ["a@example.com"]}
    created = client.post("/api/v1/analytics/report-schedules", json.dumps(body), content_type="application/json")
    assert created.status_code == 201, created.content
    schedule_id = created.json()["id"]
    assert created.json()["filters"] == {"period": "custom", "from": "2026-01-01", "to": "2026-01-31"}
    url = f"/api/v1/analytics/report-schedules/{schedule_id}"
    patched = client.patch(url, json.dumps({"format": "pdf"}), content_type="application/json")
    assert patched.json()["format"] == "pdf"
    wrong = client.patch(url, json.dumps({"recipients": ["x"]}), content_type="application/json")
    assert wrong.status_code in (400, 422) and wrong.json()["code"]
    assert [row["id"] for row in client.get("/api/v1/analytics/report-schedules").json()] == [schedule_id]
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404


def test_cli_builds_a_report_now(admin_user, orders, tmp_path, capsys):
    schedule = report_schedule_create(data=schedule_data(), actor=admin_user)
    target = tmp_path / "now.xlsx"
    call_command("analytics", "report", "月度看板", "--to", str(target), "--send", "--json")
    data = json.loads(capsys.readouterr().out)
    assert data == {"schedule": schedule.pk, "file": str(target), "bytes": target.stat().st_size, "sent": True}
    assert openpyxl.load_workbook(target).worksheets[0]["A1"].value == "Dashboard KPIs"
    assert len(mail.outbox) == 1
    schedule.refresh_from_db()
    assert schedule.last_period == ""  # built on demand: the schedule's own period is still to be sent
