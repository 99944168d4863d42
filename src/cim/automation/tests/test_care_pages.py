"""Care pages, API and CLI, per role: the calendar (scoped, per owner, holidays and make-up workdays marked), care
plans, the run, gifts on the customer page."""

import io
import json
from datetime import date

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import translation

from cim.accounts.roles import Role
from cim.automation.care import care_plan_create, gift_record
from cim.automation.models import CarePlan, Gift, MessageTemplate
from cim.customers.tests.factories import make_customer

ALL_ROLES = [r.value for r in Role]
CARERS = {Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING}
LOGGERS = {Role.ADMINISTRATOR, Role.MANAGER, Role.SALES, Role.SERVICE}


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def client_for(user, language="en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


@pytest.fixture
def birthdays(users, admin_user):
    """Two customers born on 3 December: one owned by the sales user, one by the administrator."""
    sales = users[Role.SALES]
    own = make_customer(admin_user, display_name="销售的客户", birthday=date(1990, 12, 3), owner_id=sales.pk)
    other = make_customer(admin_user, display_name="别人的客户", birthday=date(1985, 12, 3), owner_id=admin_user.pk)
    return own, other


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_role_sees_the_calendar_within_its_scope(users, birthdays, role):
    response = client_for(users[role]).get("/care/?month=2026-12")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-day="2026-12-03"' in text and "销售的客户" in text
    assert ("别人的客户" in text) == (role != Role.SALES)
    assert 'data-festival="christmas"' in text


def test_the_calendar_marks_holidays_make_up_workdays_and_lunar_festivals(admin_user):
    text = client_for(admin_user, "zh-hans").get("/care/?month=2026-02").content.decode()
    assert 'data-festival="spring_festival"' in text and 'data-festival="new_years_eve"' in text
    assert text.count('data-statutory="makeup_workday"') == 2  # Saturdays 14 and 28 February
    assert 'data-statutory="holiday"' in text
    assert "春节" in text


def test_the_calendar_filters_by_owner_and_lists_a_day(users, admin_user, birthdays):
    own, other = birthdays
    client = client_for(admin_user)
    text = client.get(f"/care/?month=2026-12&owner={users[Role.SALES].pk}").content.decode()
    assert own.display_name in text and other.display_name not in text
    day = client.get("/care/day/?day=2026-12-03&kind=birthday").content.decode()
    assert own.number in day and other.number in day
    assert client.get("/care/day/?day=nonsense&kind=birthday").status_code == 404
    assert client.get("/care/?month=garbage").status_code == 200  # this month instead


@pytest.mark.parametrize("role", ALL_ROLES)
def test_care_plans_need_care_manage(users, role):
    client = client_for(users[role])
    expected = 200 if role in CARERS else 403
    assert client.get("/care/plans/").status_code == expected
    assert client.get("/care/plans/new/").status_code == expected
    assert client.post("/care/plans/run/").status_code == (302 if role in CARERS else 403)


def test_a_plan_is_made_from_the_page_with_errors_per_field(admin_user):
    client = client_for(admin_user)
    template = MessageTemplate.objects.create(
        name="生日", channel="email", purpose="marketing", language="zh-hans", subject="生日快乐", body="祝福"
    )
    response = client.post(
        "/care/plans/new/",
        {"name": "生日祝福", "occasion": "birthday", "action": "greeting", "lead_days": "0", "priority": "normal"},
    )
    assert response.status_code == 200
    assert "Choose a greeting template" in response.content.decode()
    response = client.post(
        "/care/plans/new/",
        {
            "name": "生日祝福",
            "occasion": "birthday",
            "action": "greeting",
            "lead_days": "1",
            "templates": [template.pk],
            "priority": "normal",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    plan = CarePlan.objects.get()
    assert (plan.lead_days, list(plan.templates.all())) == (1, [template])
    edit = client.post(
        f"/care/plans/{plan.pk}/",
        {"name": "生日电话", "occasion": "birthday", "action": "call_task", "lead_days": "0", "priority": "high"},
    )
    assert edit.status_code == 302
    plan.refresh_from_db()
    assert (plan.name, plan.action, plan.is_active) == ("生日电话", "call_task", False)
    assert "生日电话" in client.get("/care/plans/").content.decode()


@pytest.mark.parametrize("role", ALL_ROLES)
def test_gifts_on_the_customer_page_per_role(users, admin_user, role):
    user = users[role]
    customer = make_customer(admin_user, display_name="矩阵客户", owner_id=user.pk)
    client = client_for(user)
    assert f"/care/customers/{customer.number}/gifts/" in client.get(f"/customers/{customer.number}/").content.decode()
    panel = client.get(f"/care/customers/{customer.number}/gifts/")
    assert panel.status_code == 200
    assert ('name="description"' in panel.content.decode()) == (role in LOGGERS)
    response = client.post(
        f"/care/customers/{customer.number}/gifts/",
        {
            "description": "月饼礼盒",
            "value": "288",
            "currency": "CNY",
            "occasion": "mid_autumn_festival",
            "given_on": "2026-09-20",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == (200 if role in LOGGERS else 403)
    assert Gift.objects.exists() == (role in LOGGERS)
    if role in LOGGERS:
        assert "月饼礼盒" in response.content.decode()
        assert "月饼礼盒" in client.get("/care/gifts/").content.decode()


def test_a_bad_gift_gets_its_errors_back(admin_user):
    customer = make_customer(admin_user, display_name="王芳")
    response = client_for(admin_user, "zh-hans").post(
        f"/care/customers/{customer.number}/gifts/",
        {"description": "礼物", "currency": "CNY", "occasion": "other", "given_on": "2099-01-01"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert 'class="invalid-feedback"' in response.content.decode()
    assert not Gift.objects.exists()


def test_gifts_are_scoped(users, admin_user):
    hidden = make_customer(admin_user, display_name="别人的客户", owner_id=admin_user.pk)
    gift_record(customer=hidden, description="茶叶", given_on=date(2026, 1, 1), actor=admin_user)
    sales = client_for(users[Role.SALES])
    assert "茶叶" not in sales.get("/care/gifts/").content.decode()
    assert sales.get(f"/care/customers/{hidden.number}/gifts/").status_code == 404


# --- API


def test_api_calendar_and_customers_of_a_day(api_client, users, birthdays):
    own, _other = birthdays
    client = api_client(users[Role.SALES])
    body = client.get("/api/v1/care/calendar?month=2026-02").json()
    feb = {d["day"]: d for d in body["days"]}
    assert body["month"] == "2026-02" and len(feb) == 28
    assert feb["2026-02-17"]["festivals"][0]["festival"] == "spring_festival"
    assert feb["2026-02-14"]["workday"] and feb["2026-02-14"]["statutory"][0]["kind"] == "makeup_workday"
    assert not feb["2026-02-16"]["workday"]
    december = {d["day"]: d for d in client.get("/api/v1/care/calendar?month=2026-12").json()["days"]}
    assert december["2026-12-03"]["customers"] == [
        {
            "kind": "birthday",
            "count": 1,
            "more": False,
            "customers": [{"number": own.number, "display_name": own.display_name}],
        }
    ]
    listed = client.get("/api/v1/care/customers?day=2026-12-03&kind=birthday").json()
    assert [c["number"] for c in listed["items"]] == [own.number]
    bad = client.get("/api/v1/care/calendar?month=2026-13")
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "month"


def test_api_plans_run_and_gifts(api_client, admin_user):
    client = api_client(admin_user)
    template = MessageTemplate.objects.create(
        name="中秋", channel="email", purpose="marketing", language="zh-hans", subject="中秋快乐", body="祝福"
    )
    bad = client.post(
        "/api/v1/care/plans", data={"name": "中秋", "occasion": "mid_autumn_festival"}, content_type="application/json"
    )
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "templates"
    made = client.post(
        "/api/v1/care/plans",
        data={"name": "中秋", "occasion": "mid_autumn_festival", "template_ids": [template.pk]},
        content_type="application/json",
    )
    assert made.status_code == 201 and made.json()["templates"][0]["id"] == template.pk
    plan_id = made.json()["id"]
    patched = client.patch(f"/api/v1/care/plans/{plan_id}", data={"lead_days": 2}, content_type="application/json")
    assert patched.json()["lead_days"] == 2
    missing = client.patch(
        f"/api/v1/care/plans/{plan_id}", data={"template_ids": [999999]}, content_type="application/json"
    )
    assert missing.status_code == 422 and missing.json()["details"][0]["field"] == "template_ids"
    runs = client.post("/api/v1/care/run", data={"day": "2026-09-23"}, content_type="application/json").json()
    assert runs[0]["plan_id"] == plan_id and runs[0]["occasion_day"] == "2026-09-25"
    customer = make_customer(admin_user, display_name="王芳")
    gift = client.post(
        f"/api/v1/customers/{customer.number}/gifts",
        data={"description": "月饼礼盒", "value": "288.00", "occasion": "mid_autumn_festival"},
        content_type="application/json",
    )
    assert gift.status_code == 201 and gift.json()["given_by"] == admin_user.username
    assert client.get(f"/api/v1/customers/{customer.number}/gifts").json()["items"][0]["description"] == "月饼礼盒"
    assert (
        client.get("/api/v1/care/gifts?occasion=mid_autumn_festival").json()["items"][0]["customer"]["number"]
        == customer.number
    )
    wrong = client.post(
        f"/api/v1/customers/{customer.number}/gifts",
        data={"description": "x", "occasion": "nameday"},
        content_type="application/json",
    )
    assert wrong.status_code == 422 and wrong.json()["details"][0]["field"] == "occasion"


# --- CLI


def test_cli_calendar_run_gifts_and_templates(admin_user):
    make_customer(admin_user, display_name="王芳", birthday=date(1990, 2, 14))
    out = io.StringIO()
    call_command("care", "calendar", "--month", "2026-02", "--json", stdout=out)
    report = json.loads(out.getvalue().splitlines()[-1])
    assert report["totals"]["birthday"] == 1
    assert {"kind": "makeup_workday", "name": "Spring Festival"} in report["days"][13]["statutory"]
    out = io.StringIO()
    call_command("care", "calendar", "--month", "2026-02", stdout=out)
    assert "2026-02-17" in out.getvalue() and "Spring Festival" in out.getvalue()
    out = io.StringIO()
    call_command("care", "templates", "--json", stdout=out)
    assert len(json.loads(out.getvalue())["created"]) == 10
    care_plan_create(name="情人节", occasion="valentines_day", action="call_task", actor=admin_user)
    out = io.StringIO()
    call_command("care", "run", "--day", "2026-02-14", "--json", stdout=out)
    assert json.loads(out.getvalue())["plans"][0]["customers"] == 1
    out = io.StringIO()
    call_command("care", "gifts", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"gifts": []}
    with pytest.raises(CommandError):
        call_command("care", "run", "--plan", "999999", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("care", "calendar", "--user", "nobody", stdout=io.StringIO())
