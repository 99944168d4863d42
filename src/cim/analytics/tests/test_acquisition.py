"""CAC and historical CLV per acquisition channel: known answers on hand-built customers, orders and costs; the
cost services' checks and audit; the page, the API and the CLI."""

import json
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils.translation import override

from cim.accounts.roles import ROLE_PERMISSIONS, Perm, Role
from cim.activities.history_schemas import OrderInput, RefundInput
from cim.activities.orders import order_create, order_refund
from cim.analytics.acquisition import (
    CostFileError,
    acquisition_cost_delete,
    acquisition_cost_set,
    acquisition_costs_import,
    acquisition_report,
    period_parse,
)
from cim.analytics.models import AcquisitionCost
from cim.audit.models import AuditEvent, FieldChange
from cim.customers.tests.factories import make_customer

SHANGHAI = ZoneInfo("Asia/Shanghai")
JAN, FEB = date(2025, 1, 1), date(2025, 2, 1)


def buy(customer, actor, when: str, amount: str):
    at = datetime.fromisoformat(when).replace(tzinfo=SHANGHAI)
    data = OrderInput(ordered_at=at, lines=[{"name": "茶", "unit_price": amount}])
    return order_create(customer=customer, data=data, actor=actor)


@pytest.fixture
def shop(admin_user):
    """Seven customers acquired in January–February 2025 through four channels, a lead who never bought and a
    customer of December; costs for two channels."""
    customer = lambda name, channel="": make_customer(admin_user, display_name=name, source_channel=channel or None)  # noqa: E731
    a, b, c = customer("甲", "website"), customer("乙", "website"), customer("丙", "website")
    buy(a, admin_user, "2025-01-10 10:00", "100")
    buy(a, admin_user, "2025-03-05 10:00", "50")  # later orders count towards CLV
    order_refund(order=buy(b, admin_user, "2025-01-20 10:00", "250"), data=RefundInput(amount="100"), actor=admin_user)
    buy(c, admin_user, "2025-02-01 00:30", "300")  # still January in UTC: February where the business is
    d, e = customer("丁", "wechat"), customer("戊", "wechat")
    buy(d, admin_user, "2025-01-15 10:00", "80")
    order_refund(order=buy(e, admin_user, "2025-01-25 10:00", "999"), data=RefundInput(), actor=admin_user)
    buy(e, admin_user, "2025-02-20 10:00", "40")  # a fully refunded order is no purchase: acquired in February
    buy(customer("己", "referral"), admin_user, "2025-01-05 10:00", "500")
    buy(customer("庚"), admin_user, "2025-01-07 10:00", "60")
    customer("辛", "website")  # a lead: never bought, never acquired
    buy(customer("壬", "website"), admin_user, "2024-12-31 23:30", "1000")  # December, outside the period
    acquisition_cost_set(channel="website", month="2025-01", amount="600", actor=admin_user)
    acquisition_cost_set(channel="website", month=date(2025, 2, 14), amount=Decimal("300"), actor=admin_user)
    acquisition_cost_set(channel="wechat", month="2025-01", amount="100", actor=admin_user)
    acquisition_cost_set(channel="app", month="2024-12", amount="999", actor=admin_user)  # outside the period
    return {"b": b}


def figures(report):
    return {row.channel: row for row in [*report.channels, report.total]}


def test_known_cac_clv_and_ratio_per_channel(shop):
    report = acquisition_report(start=JAN, end=FEB)
    rows = figures(report)
    assert [row.channel for row in report.channels] == ["website", "wechat", "referral", "unknown"]

    website = rows["website"]  # 甲 (100 + 50), 乙 (250 − 100 refunded), 丙 300; costs 600 + 300
    assert (website.customers, website.orders, website.cost) == (3, 4, 900.0)
    assert (website.cac, website.clv, website.orders_per_customer, website.ratio) == (300.0, 200.0, 1.33, 0.67)

    wechat = rows["wechat"]  # 丁 80, 戊 40 (the refunded 999 is no purchase); cost 100
    assert (wechat.customers, wechat.cac, wechat.clv, wechat.ratio) == (2, 50.0, 60.0, 1.2)

    for channel, clv in (("referral", 500.0), ("unknown", 60.0)):  # no costs: no CAC, not 0
        assert (rows[channel].customers, rows[channel].cost, rows[channel].clv) == (1, None, clv)
        assert rows[channel].cac is None and rows[channel].ratio is None

    total = rows["all"]  # blended: every cost ÷ every customer acquired, the unknown channel too
    assert (total.customers, total.cost, total.revenue) == (7, 1000.0, 1280.0)
    assert (total.cac, total.clv, total.ratio) == (142.86, 182.86, 1.28)


def test_monthly_history_gives_the_cac_trend(shop):
    history = [(h.month, h.channel, h.customers, h.cost, h.cac) for h in acquisition_report(start=JAN, end=FEB).history]
    assert history == [
        (JAN, "website", 2, 600.0, 300.0),
        (JAN, "wechat", 1, 100.0, 100.0),
        (JAN, "referral", 1, None, None),
        (JAN, "unknown", 1, None, None),
        (FEB, "website", 1, 300.0, 300.0),
        (FEB, "wechat", 1, None, None),
    ]


def test_a_refund_lowers_clv_and_a_margin_scales_it(shop, admin_user):
    before = figures(acquisition_report(start=JAN, end=FEB))["website"].clv
    order_refund(order=shop["b"].orders.get(), data=RefundInput(amount="60"), actor=admin_user)
    cache.clear()  # the cohorts are cached for minutes
    after = figures(acquisition_report(start=JAN, end=FEB, margin=0.5))["website"]
    assert (before, after.revenue, after.clv, after.ratio) == (200.0, 540.0, 90.0, 0.3)  # (150 + 90 + 300) / 3 × ½


def test_costs_without_customers_give_no_cac_and_an_empty_period_no_rows(shop):
    december = figures(acquisition_report(start=date(2024, 12, 1), end=date(2024, 12, 1)))
    assert (december["app"].customers, december["app"].cost, december["app"].cac) == (0, 999.0, None)
    assert december["website"].clv == 1000.0
    empty = acquisition_report(start=date(2030, 1, 1), end=date(2030, 3, 1))
    assert empty.channels == [] and empty.total.cac is None and empty.total.clv is None


def test_costs_in_two_currencies_are_not_added(shop, admin_user):
    acquisition_cost_set(channel="website", month="2025-02", amount="40", currency="usd", actor=admin_user)
    website = figures(acquisition_report(start=JAN, end=FEB))["website"]
    assert (website.cost, website.cac, sorted(website.currencies)) == (None, None, ["CNY", "USD"])


def test_set_upserts_normalises_the_month_and_audits_fields_not_values(admin_user):
    cost = acquisition_cost_set(
        channel="wechat", month=date(2026, 3, 17), amount="1200.5", note="朋友圈", actor=admin_user
    )
    assert (cost.month, cost.amount, cost.currency, cost.created_by) == (
        date(2026, 3, 1),
        Decimal("1200.50"),
        "CNY",
        admin_user,
    )
    again = acquisition_cost_set(channel="wechat", month="2026-03", amount="1300", note="朋友圈", actor=admin_user)
    assert again.pk == cost.pk and AcquisitionCost.objects.get().amount == Decimal("1300.00")
    acquisition_cost_set(
        channel="wechat", month="2026-03", amount="1300.00", note="朋友圈", actor=admin_user
    )  # unchanged
    assert acquisition_cost_delete(channel="wechat", month="2026-03-09", actor=admin_user) is True
    assert acquisition_cost_delete(channel="wechat", month="2026-03", actor=admin_user) is False
    events = list(AuditEvent.objects.filter(target_type="analytics.acquisitioncost").order_by("pk"))
    assert [(e.action, e.target_id, e.fields) for e in events] == [
        ("acquisition_cost.create", str(cost.pk), ["amount", "channel", "currency", "month", "note"]),
        ("acquisition_cost.update", str(cost.pk), ["amount"]),
        ("acquisition_cost.delete", str(cost.pk), ["channel", "month"]),
    ]
    assert not FieldChange.objects.filter(event__in=events).exists()


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        ({"channel": "tiktok"}, {"channel": "Select one of: website, mini_program"}),
        ({"month": "2026-13"}, {"month": "Enter a month as YYYY-MM."}),
        ({"month": "三月"}, {"month": "Enter a month as YYYY-MM."}),
        ({"amount": "-1"}, {"amount": "The amount cannot be negative."}),
        ({"amount": "abc"}, {"amount": "Enter an amount, like 1200.50."}),
        ({"amount": ""}, {"amount": "Enter an amount, like 1200.50."}),
        ({"amount": "1.005"}, {"amount": "Enter at most two decimal places."}),
        ({"amount": "1e20"}, {"amount": "The amount is too large."}),
        ({"currency": "元"}, {"currency": "Enter a three-letter currency code, like CNY."}),
        ({"note": "长" * 201}, {"note": "Enter at most 200 characters."}),
        (
            {"channel": "", "month": "", "amount": "-5"},
            {"channel": "Select one of", "month": "Enter a month", "amount": "cannot be negative"},
        ),
    ],
)
def test_cost_errors_name_each_field(admin_user, values, errors):
    data = {"channel": "website", "month": "2026-03", "amount": "10", "currency": "CNY", "note": "", **values}
    with override("en"), pytest.raises(ValidationError) as raised:
        acquisition_cost_set(**data, actor=admin_user)
    found = raised.value.message_dict
    assert set(found) == set(errors)
    for name, text in errors.items():
        assert text in found[name][0]
    assert not AcquisitionCost.objects.exists()


def test_cost_errors_are_in_the_users_language(admin_user):
    with override("zh-hans"), pytest.raises(ValidationError) as raised:
        acquisition_cost_set(channel="website", month="2026-03", amount="-1", actor=admin_user)
    assert raised.value.message_dict["amount"]  # a message in Chinese once the lead translates it


def test_period_defaults_and_errors():
    first, last = period_parse("", "2026-06")
    assert (first, last) == (date(2025, 7, 1), date(2026, 6, 1))
    with override("en"), pytest.raises(ValidationError) as raised:
        period_parse("2026-06", "2026-01")
    assert raised.value.message_dict == {"to": ["The period ends before it starts."]}
    with pytest.raises(ValidationError) as raised:
        period_parse("2026/06", "x")
    assert set(raised.value.message_dict) == {"from", "to"}


def test_csv_import_is_all_or_nothing_with_errors_per_line(admin_user):
    bad = "channel,month,amount\nwebsite,2026-01,100\ntiktok,2026-02,-3\nwechat,2026-01,50\nwechat,2026-01,60\n"
    with override("en"), pytest.raises(CostFileError) as raised:
        acquisition_costs_import(text=bad, actor=admin_user)
    assert [(e.row, e.field) for e in raised.value.errors] == [(3, "channel"), (3, "amount"), (5, "month")]
    assert "line 4" in raised.value.errors[2].message
    assert not AcquisitionCost.objects.exists()
    with pytest.raises(CostFileError) as raised:
        acquisition_costs_import(text="channel,amount\nwebsite,1\n", actor=admin_user)
    assert [(e.row, e.field) for e in raised.value.errors] == [(1, "month")]

    good = "\ufeffChannel,Month,Amount,Currency,Note\nwebsite,2026-01,100,cny,搜索广告\nwechat,2026-01-31,50.5,,\n"
    assert acquisition_costs_import(text=good, actor=admin_user) == 2
    saved = sorted(AcquisitionCost.objects.values_list("channel", "month", "amount", "currency", "note"))
    assert saved == [
        ("website", date(2026, 1, 1), Decimal("100.00"), "CNY", "搜索广告"),
        ("wechat", date(2026, 1, 1), Decimal("50.50"), "CNY", ""),
    ]


# --- API ----------------------------------------------------------------------------------------------------


def test_api_figures_for_a_period(shop, api_client, users):
    response = api_client(users[Role.ANALYST]).get("/api/v1/analytics/acquisition?from=2025-01&to=2025-02")
    assert response.status_code == 200
    data = response.json()
    website = next(row for row in data["channels"] if row["channel"] == "website")
    assert (website["cac"], website["clv"], website["ratio"]) == (300.0, 200.0, 0.67)
    referral = next(row for row in data["channels"] if row["channel"] == "referral")
    assert (referral["cac"], referral["ratio"]) == (None, None)
    assert (data["start"], data["end"], data["total"]["customers"]) == ("2025-01-01", "2025-02-01", 7)
    assert data["history"][0] == {
        "month": "2025-01-01", "channel": "website", "label": "Website", "customers": 2, "cost": 600.0, "cac": 300.0
    }  # fmt: skip


def test_api_period_and_margin_errors_are_per_field(api_client, users):
    client = api_client(users[Role.ANALYST])
    response = client.get("/api/v1/analytics/acquisition?from=2025-13&to=2025-02")
    assert response.status_code == 422
    assert [(d["field"], d["message"]) for d in response.json()["details"]] == [("from", "Enter a month as YYYY-MM.")]
    response = client.get("/api/v1/analytics/acquisition?margin=1.5")
    assert [d["field"] for d in response.json()["details"]] == ["margin"]


def test_api_costs_put_get_list_delete(api_client, users):
    client = api_client(users[Role.MARKETING])
    url = "/api/v1/analytics/acquisition-costs/wechat/2026-03"
    response = client.put(url, {"amount": "1200.50", "note": "朋友圈广告"}, content_type="application/json")
    assert response.status_code == 200
    assert response.json() | {"updated_at": None} == {
        "channel": "wechat",
        "month": "2026-03",
        "amount": "1200.50",
        "currency": "CNY",
        "note": "朋友圈广告",
        "created_by": "marketing-user",
        "updated_at": None,
    }
    response = client.put(url, {"amount": 900}, content_type="application/json")
    assert (response.status_code, response.json()["amount"], response.json()["note"]) == (200, "900.00", "")
    assert client.get(url).json()["amount"] == "900.00"
    listed = client.get("/api/v1/analytics/acquisition-costs?from=2026-01&to=2026-12").json()
    assert [(c["channel"], c["month"]) for c in listed] == [("wechat", "2026-03")]
    assert client.get("/api/v1/analytics/acquisition-costs?from=2026-04&to=2026-12").json() == []
    assert client.delete(url).status_code == 204
    assert client.delete(url).status_code == 404
    assert client.get(url).status_code == 404


def test_api_cost_errors(api_client, users):
    client = api_client(users[Role.ANALYST])
    response = client.put(
        "/api/v1/analytics/acquisition-costs/tiktok/2026-3x", {"amount": "-1"}, content_type="application/json"
    )
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["details"]} == {"channel", "month", "amount"}
    assert not AcquisitionCost.objects.exists()


def test_api_costs_are_read_only_without_analytics_manage(api_client, users, monkeypatch):
    monkeypatch.setitem(ROLE_PERMISSIONS, Role.ANALYST, ROLE_PERMISSIONS[Role.ANALYST] - {Perm.ANALYTICS_MANAGE})
    client = api_client(users[Role.ANALYST])
    assert client.get("/api/v1/analytics/acquisition-costs").status_code == 200
    url = "/api/v1/analytics/acquisition-costs/wechat/2026-03"
    assert client.put(url, {"amount": "1"}, content_type="application/json").status_code == 403
    assert client.delete(url).status_code == 403


# --- Page ---------------------------------------------------------------------------------------------------


def login(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_page_shows_the_figures_and_is_linked_from_analytics(shop, users):
    client = login(users[Role.ANALYST])
    assert 'href="/analytics/acquisition/"' in client.get("/analytics/").content.decode()
    response = client.get("/analytics/acquisition/?from=2025-01&to=2025-02")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-channel="website"' in page and 'id="acquisition-data"' in page and 'id="cost-form"' in page
    report = response.context["report"]
    assert figures(report)["website"].cac == 300.0
    assert [c.channel for c in response.context["costs"]] == ["website", "website", "wechat"]


def test_page_enters_changes_and_removes_costs(users):
    client = login(users[Role.MANAGER])
    url = "/analytics/acquisition/?from=2026-01&to=2026-03"
    form = {"channel": "website", "month": "2026-02", "amount": "500", "currency": "CNY", "note": ""}
    response = client.post(url, form)
    assert response.status_code == 302 and response["Location"].endswith("?from=2026-01&to=2026-03")
    assert AcquisitionCost.objects.get().amount == Decimal("500.00")
    edit = client.get(url + "&channel=website&month=2026-02")
    assert edit.context["form"].initial["amount"] == Decimal("500.00")
    client.post(url, {**form, "amount": "650"})
    assert AcquisitionCost.objects.get().amount == Decimal("650.00")
    client.post(url, {"action": "delete", "channel": "website", "month": "2026-02"})
    assert not AcquisitionCost.objects.exists()


def test_page_shows_errors_next_to_the_fields(users):
    client = login(users[Role.MANAGER])
    response = client.post(
        "/analytics/acquisition/", {"channel": "website", "month": "2026-13", "amount": "-1", "currency": "CNY"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "month": ["Enter a month as YYYY-MM."],
        "amount": ["The amount cannot be negative."],
    }
    assert not AcquisitionCost.objects.exists()
    bad_period = client.get("/analytics/acquisition/?from=2026-13&margin=2")
    assert bad_period.context["period_errors"] == {
        "from": ["Enter a month as YYYY-MM."],
        "margin": ["Enter a gross margin between 0 and 1, like 0.35."],
    }
    assert client.get("/analytics/acquisition/?margin=0.4").context["report"].margin == 0.4


def test_page_is_read_only_without_analytics_manage_and_closed_without_view(users, monkeypatch):
    monkeypatch.setitem(ROLE_PERMISSIONS, Role.ANALYST, ROLE_PERMISSIONS[Role.ANALYST] - {Perm.ANALYTICS_MANAGE})
    client = login(users[Role.ANALYST])
    page = client.get("/analytics/acquisition/")
    assert page.status_code == 200 and page.context["form"] is None and 'id="cost-form"' not in page.content.decode()
    form = {"channel": "website", "month": "2026-02", "amount": "500", "currency": "CNY"}
    assert client.post("/analytics/acquisition/", form).status_code == 403
    assert login(users[Role.SALES]).get("/analytics/acquisition/").status_code == 403
    assert not AcquisitionCost.objects.exists()


# --- CLI ----------------------------------------------------------------------------------------------------


def test_cli_sets_a_cost_and_prints_the_figures(shop, capsys):
    call_command(
        "analytics", "cac", "--from", "2025-01", "--to", "2025-02", "--set", "referral", "2025-01", "250", "--json"
    )
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    referral = next(row for row in data["channels"] if row["channel"] == "referral")
    assert (data["saved"], referral["cac"], referral["clv"], referral["ratio"]) == (1, 250.0, 500.0, 2.0)
    call_command("analytics", "cac", "--from", "2025-01", "--to", "2025-02")
    assert "Website: 3 new, CAC 300.00, CLV 200.00, CLV:CAC 0.7" in capsys.readouterr().out


def test_cli_costs_file_all_or_nothing(admin_user, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("channel,month,amount\nwebsite,2026-01,100\nwebsite,2026-02,x\n", encoding="utf-8")
    with override("en"), pytest.raises(CommandError, match=r"1 errors in .*bad\.csv; no cost was saved"):
        call_command("analytics", "cac", "--costs", str(bad))
    assert "bad.csv:3: amount: Enter an amount" in capsys.readouterr().err
    assert not AcquisitionCost.objects.exists()
    good = tmp_path / "good.csv"
    good.write_text("channel,month,amount,currency\nwebsite,2026-01,100,CNY\nwechat,2026-02,20,CNY\n", encoding="utf-8")
    call_command("analytics", "cac", "--costs", str(good), "--from", "2026-01", "--to", "2026-02", "--json")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["saved"] == 2
    assert AcquisitionCost.objects.count() == 2
    with pytest.raises(CommandError, match="amount"):
        call_command("analytics", "cac", "--set", "website", "2026-01", "-5")
