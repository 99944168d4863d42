"""The service API beyond the role matrix: what each operation does, its errors, scope and query counts."""

from datetime import datetime

import pytest
from django.core import mail

from cim.accounts.roles import Role
from cim.customers.tests.factories import make_customer
from cim.service.models import SlaPolicy, Survey, Ticket
from cim.service.services import ticket_create, ticket_reply
from cim.service.surveys import survey_answer, survey_send
from cim.service.tests.conftest import at

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_client, agent):
    return api_client(agent)


def post(client, path, body):
    return client.post(f"/api/v1{path}", data=body, content_type="application/json")


def test_open_read_and_work_a_ticket(clock, api, customer, agent):
    response = post(
        api,
        "/tickets",
        {
            "customer": customer.number.lower(),
            "subject": "发票开错了",
            "channel": "email",
            "category": "billing",
            "priority": "high",
            "assignee": agent.username,
            "opened_at": "2026-03-06T17:30:00+08:00",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    number = body["number"]
    assert number == "T-2026-000001" and body["customer"]["number"] == customer.number
    assert body["assignee"] == agent.username and body["team"]["name"] == agent.team.name
    # Friday 17:30 + one business hour: Monday 09:30, so already missed at 10:00.
    assert datetime.fromisoformat(body["first_response_due"]) == at("2026-03-09 09:30")
    assert body["sla"] == {"first_response": "breached", "resolution": "running"}
    assert body["messages"] == [] and body["surveys"] == []

    reply = post(api, f"/tickets/{number}/replies", {"body": "已重开发票", "status": "waiting"})
    assert reply.status_code == 201 and reply.json()["kind"] == "reply"
    assert post(api, f"/tickets/{number}/notes", {"body": "财务已确认"}).json()["kind"] == "note"
    detail = api.get(f"/api/v1/tickets/{number}").json()
    assert detail["status"] == "waiting" and detail["sla"]["resolution"] == "paused"
    assert [m["kind"] for m in detail["messages"]] == ["reply", "note"]

    bad = post(api, f"/tickets/{number}/transition", {"status": "resolved"})
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "resolution_code"
    done = post(api, f"/tickets/{number}/transition", {"status": "resolved", "resolution_code": "fixed"})
    assert done.status_code == 200 and done.json()["status"] == "resolved"
    assert done.json()["surveys"][0]["kind"] == "csat"
    wrong = post(api, f"/tickets/{number}/transition", {"status": "new"})
    assert wrong.status_code == 422 and wrong.json()["code"] == "validation_error"


def test_assign_and_escalate(clock, api, customer, agent, users, other_team):
    number = ticket_create(customer=customer, subject="安装预约", channel="web", actor=agent).number
    unknown = post(api, f"/tickets/{number}/assign", {"assignee": "nobody"})
    assert unknown.status_code == 422 and unknown.json()["details"][0]["field"] == "assignee"
    refused = post(api, f"/tickets/{number}/assign", {"assignee": users[Role.SALES].username})
    assert refused.status_code == 422
    assigned = post(api, f"/tickets/{number}/assign", {"assignee": agent.username, "team_id": other_team.pk})
    assert assigned.json()["assignee"] == agent.username and assigned.json()["team"]["id"] == other_team.pk
    escalated = post(api, f"/tickets/{number}/escalate", {"reason": "VIP 客户", "team_id": agent.team_id})
    body = escalated.json()
    assert escalated.status_code == 200 and body["escalation_level"] == 1 and body["team"]["id"] == agent.team_id
    assert body["assignee"] == agent.username
    assert "VIP 客户" in body["messages"][0]["body"]


def test_errors_are_clear(clock, api, customer, agent):
    assert api.get("/api/v1/tickets/T-2026-999999").status_code == 404
    assert api.get("/api/v1/tickets/T-2026-999999").json()["code"] == "not_found"
    response = post(api, "/tickets", {"customer": "C0000", "subject": "x", "channel": "phone"})
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "customer"
    response = post(api, "/tickets", {"customer": customer.number, "subject": "", "channel": "fax"})
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["details"]} == {"subject", "channel"}
    assert not Ticket.objects.exists()


def test_lists_filter_paginate_and_keep_to_the_scope(
    clock, api_client, api, customer, agent, users, admin_user, other_team, make_user, django_assert_max_num_queries
):
    seller = make_user(Role.SALES, "north-seller", team=other_team)
    elsewhere = make_customer(admin_user, display_name="华北客户", team_id=other_team.pk, owner_id=seller.pk)
    for n in range(5):
        ticket_create(customer=customer, subject=f"第{n}单", channel="phone", actor=agent)
    hidden = ticket_create(customer=elsewhere, subject="外组工单", channel="phone", team=other_team, actor=admin_user)
    with django_assert_max_num_queries(5):  # with whether the team receives shares, which the list then leaves out
        first = api.get("/api/v1/tickets?limit=3").json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = api.get(f"/api/v1/tickets?limit=3&cursor={first['next_cursor']}").json()
    numbers = [t["number"] for t in first["items"] + rest["items"]]
    assert len(numbers) == 5 and hidden.number not in numbers
    assert len(api_client(admin_user).get("/api/v1/tickets").json()["items"]) == 6
    assert api.get(f"/api/v1/tickets/{hidden.number}").status_code == 404
    assert api.get("/api/v1/tickets?status=closed").json()["items"] == []
    assert api.get("/api/v1/tickets?assignee=bogus").status_code == 422
    clock.set("2026-03-09 14:01")
    counts = api.get("/api/v1/tickets/sla").json()
    assert counts["total"] == 5 and counts["first_response"]["breached"] == 5
    assert len(api.get("/api/v1/tickets?breached=true&sort=due").json()["items"]) == 5


def test_sla_policies(api_client, admin_user, agent):
    policies = api_client(agent).get("/api/v1/sla-policies").json()
    assert [p["priority"] for p in policies] == ["urgent", "high", "normal", "low"]
    admin = api_client(admin_user)
    response = admin.patch(
        "/api/v1/sla-policies/low", data={"resolution_minutes": 4000}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["resolution_minutes"] == 4000
    assert SlaPolicy.objects.get(priority="low").first_response_minutes == 480
    bad = admin.patch("/api/v1/sla-policies/low", data={"resolution_minutes": 10}, content_type="application/json")
    assert bad.status_code == 422
    assert admin.patch("/api/v1/sla-policies/asap", data={}, content_type="application/json").status_code == 422


def test_surveys_send_list_and_report(
    clock, api_client, api, customer, agent, users, django_capture_on_commit_callbacks
):
    ticket = ticket_create(customer=customer, subject="满意度", channel="phone", actor=agent)
    ticket_reply(ticket=ticket, body="好", actor=agent)
    with django_capture_on_commit_callbacks(execute=True):
        sent = post(
            api, "/surveys", {"customer": customer.number, "kind": "nps", "channel": "email", "ticket": ticket.number}
        )
    assert sent.status_code == 201, sent.content
    assert sent.json()["ticket"] == ticket.number and sent.json()["answered_at"] is None
    token = mail.outbox[-1].body.split("/s/")[1].split("/")[0]
    survey_answer(token=token, score=10, comment="推荐")
    with django_capture_on_commit_callbacks(execute=True):
        survey_send(customer=customer, kind="csat", channel="email", order_id=77, actor=agent)
    no_ticket = post(api, "/surveys", {"customer": customer.number, "kind": "csat", "channel": "sms", "ticket": "T-1"})
    assert no_ticket.status_code == 422 and no_ticket.json()["details"][0]["field"] == "ticket"

    analyst = api_client(users[Role.ANALYST])
    answers = analyst.get("/api/v1/surveys").json()["items"]
    assert [(a["kind"], a["score"], a["comment"]) for a in answers] == [("nps", 10, "推荐")]
    assert len(analyst.get("/api/v1/surveys?answered=false").json()["items"]) == 1
    report = analyst.get("/api/v1/surveys/report?by=channel").json()
    assert report["by"] == "channel" and report["rows"][0]["key"] == "email"
    assert report["total"]["nps"] == 100.0 and report["total"]["promoters"] == 1 and report["total"]["csat"] is None
    assert analyst.get("/api/v1/surveys/report?by=planet").status_code == 422
    assert Survey.objects.count() == 2
