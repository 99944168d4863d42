"""The service pages for every role, and the journeys: open a ticket from a customer, reply, note, wait, resolve,
escalate and assign from its page; the ticket lists with their SLA counts; survey results; SLA settings."""

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cim.accounts.roles import Perm, Role, has_perm
from cim.customers.tests.factories import make_customer
from cim.service.models import SlaPolicy, Survey, Ticket
from cim.service.services import ticket_create, ticket_reply
from cim.service.surveys import survey_answer, survey_send
from cim.service.tests.conftest import at

pytestmark = pytest.mark.django_db
ALL_ROLES = [r.value for r in Role]


def client_for(user, language="en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


@pytest.fixture
def ticket(clock, customer, agent):
    return ticket_create(customer=customer, subject="洗衣机漏水", channel="phone", priority="urgent", actor=agent)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_pages_by_role(users, ticket, role):
    user = users[role]
    client = client_for(user)
    handles = has_perm(user, Perm.TICKET_HANDLE)
    reads_surveys = has_perm(user, Perm.SURVEY_MANAGE) or has_perm(user, Perm.PERFORMANCE_VIEW)
    expected = {
        reverse("service:ticket_list"): 200,
        reverse("service:my_tickets"): 200,
        reverse("service:ticket_detail", args=[ticket.number]): 200,
        reverse("service:ticket_create") + f"?customer={ticket.customer.number}": 200 if handles else 403,
        reverse("service:survey_report"): 200 if reads_surveys else 403,
        reverse("service:sla_settings"): 200 if has_perm(user, Perm.SETTINGS_MANAGE) else 403,
    }
    for url, status in expected.items():
        assert client.get(url).status_code == status, (role, url)
    posts = ["ticket_message", "ticket_transition", "ticket_assign", "ticket_escalate"]
    for name in posts:
        response = client.post(reverse(f"service:{name}", args=[ticket.number]), {"body": "x", "status": "in_progress"})
        assert (response.status_code == 403) == (not handles), (role, name)
    detail = client.get(reverse("service:ticket_detail", args=[ticket.number])).content.decode()
    assert ("Send reply" in detail) == handles
    assert ("Send survey" in detail) == has_perm(user, Perm.SURVEY_MANAGE)


def test_pages_need_a_login(ticket):
    for url in (reverse("service:ticket_list"), reverse("service:ticket_detail", args=[ticket.number])):
        response = Client().get(url)
        assert response.status_code == 302 and "/login" in response["Location"]


def test_tickets_outside_the_scope_are_not_found(clock, admin_user, agent, users, other_team, make_user):
    seller = make_user(Role.SALES, "north-seller", team=other_team)
    outsider = make_customer(admin_user, display_name="别组客户", team_id=other_team.pk, owner_id=seller.pk)
    hidden = ticket_create(customer=outsider, subject="外组", channel="email", team=other_team, actor=admin_user)
    sales = client_for(users["sales"])
    assert sales.get(reverse("service:ticket_detail", args=[hidden.number])).status_code == 404
    assert hidden.number not in sales.get(reverse("service:ticket_list")).content.decode()
    # Given to the agent's team, the ticket becomes theirs to see, though the customer is another team's.
    assert client_for(agent).get(reverse("service:ticket_detail", args=[hidden.number])).status_code == 404
    Ticket.objects.filter(pk=hidden.pk).update(team=agent.team)
    assert client_for(agent).get(reverse("service:ticket_detail", args=[hidden.number])).status_code == 200


def test_a_ticket_from_open_to_resolved_through_its_page(clock, customer, agent, django_capture_on_commit_callbacks):
    client = client_for(agent)
    form_page = client.get(reverse("service:ticket_create") + f"?customer={customer.number}")
    assert customer.display_name in form_page.content.decode()
    response = client.post(
        reverse("service:ticket_create"),
        {
            "customer": customer.number,
            "subject": "冰箱不制冷",
            "description": "买了三天就坏了",
            "channel": "phone",
            "category": "complaint",
            "priority": "high",
            "assignee": agent.pk,
        },
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/service/tickets/{ticket.number}/"
    assert (ticket.assignee, ticket.priority, ticket.first_response_due) == (agent, "high", at("2026-03-09 11:00"))
    url = response["Location"]

    client.post(reverse("service:ticket_message", args=[ticket.number]), {"kind": "note", "body": "先联系售后网点"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("service:ticket_message", args=[ticket.number]),
            {"kind": "reply", "body": "师傅明天上门", "email_customer": "on", "then": "waiting"},
        )
    ticket.refresh_from_db()
    assert ticket.status == "waiting" and ticket.first_responded_at == clock.now
    assert mail.outbox[-1].body == "师傅明天上门"
    page = client.get(url).content.decode()
    assert page.index("先联系售后网点") < page.index("师傅明天上门")
    assert 'data-kind="note"' in page and 'data-kind="reply"' in page and "not visible to the customer" in page
    assert 'data-sla="paused"' in page and 'data-sla="met"' in page

    response = client.post(reverse("service:ticket_transition", args=[ticket.number]), {"status": "resolved"})
    assert "Choose how the ticket was resolved" in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("service:ticket_transition", args=[ticket.number]),
            {"status": "resolved", "resolution_code": "fixed"},
        )
    ticket.refresh_from_db()
    assert ticket.status == "resolved" and Survey.objects.filter(ticket=ticket).exists()
    page = client.get(url).content.decode()
    assert "Fixed" in page and "Reopened" in page  # the transition left
    assert client.post(reverse("service:ticket_transition", args=[ticket.number]), {"status": "new"}).status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "resolved"


def test_escalate_and_assign_from_the_page(clock, ticket, agent, users, other_team):
    client = client_for(users["manager"])
    client.post(
        reverse("service:ticket_escalate", args=[ticket.number]), {"reason": "客户投诉到总部", "team": other_team.pk}
    )
    ticket.refresh_from_db()
    assert ticket.escalation_level == 1 and ticket.team == other_team
    client.post(reverse("service:ticket_escalate", args=[ticket.number]), {"reason": ""})
    assert Ticket.objects.get(pk=ticket.pk).escalation_level == 1
    client.post(reverse("service:ticket_assign", args=[ticket.number]), {"assignee": agent.pk})
    ticket.refresh_from_db()
    assert ticket.assignee == agent and ticket.team == agent.team
    client.post(reverse("service:ticket_assign", args=[ticket.number]), {"assignee": users["sales"].pk})
    assert Ticket.objects.get(pk=ticket.pk).assignee == agent  # not someone who handles tickets: refused


def test_the_list_filters_and_counts_breaches(clock, customer, agent, users):
    late = ticket_create(customer=customer, subject="迟到的", channel="phone", priority="urgent", actor=agent)
    answered = ticket_create(customer=customer, subject="已答复", channel="web", priority="urgent", actor=agent)
    ticket_reply(ticket=answered, body="好", actor=agent)
    ticket_create(customer=customer, subject="我的", channel="email", priority="low", assignee=agent, actor=agent)
    clock.set("2026-03-09 10:45")
    client = client_for(agent)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("service:ticket_list"))
    for n in range(20):
        ticket_create(customer=customer, subject=f"批量{n}", channel="api", priority="low", actor=agent)
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("service:ticket_list")).content.decode()
    assert len(many) == len(few)  # the page's queries do not grow with its rows
    assert 'data-count="first_response_breached">1<' in page and "迟到的" in page
    page = client.get(reverse("service:ticket_list") + "?breached=true").content.decode()
    assert "迟到的" in page and "已答复" not in page and "批量" not in page
    page = client.get(reverse("service:ticket_list") + "?channel=web&priority=urgent").content.decode()
    assert "已答复" in page and "迟到的" not in page
    page = client.get(reverse("service:my_tickets")).content.decode()
    assert "我的" in page and "迟到的" not in page
    page = client.get(reverse("service:ticket_list") + "?q=" + late.number).content.decode()
    assert "迟到的" in page and "已答复" not in page
    page = client.get(reverse("service:ticket_list") + f"?customer={customer.number}&status=bogus").content.decode()
    assert "Ignored the filter" in page and "迟到的" in page
    partial = client.get(
        reverse("service:ticket_list") + "?breached=true", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="ticket-results"
    )
    assert partial.content.decode().startswith('<div id="ticket-results">')


def test_survey_results_page(clock, customer, ticket, agent, users, django_capture_on_commit_callbacks):
    for kind, score in (("csat", 5), ("nps", 3)):
        with django_capture_on_commit_callbacks(execute=True):
            survey_send(customer=customer, kind=kind, channel="email", ticket=ticket, actor=agent)
        token = mail.outbox[-1].body.split("/s/")[1].split("/")[0]
        survey_answer(token=token, score=score, comment="评价" + kind)
    page = client_for(users["analyst"]).get(reverse("service:survey_report") + "?by=team").content.decode()
    assert 'id="total-csat">100.0%' in page and 'id="total-nps">-100.0' in page
    assert "评价csat" in page and str(agent.team) in page
    assert 'id="survey-chart-data"' in page and "echarts" in page


def test_sla_settings_page(admin_user):
    client = client_for(admin_user)
    page = client.get(reverse("service:sla_settings")).content.decode()
    assert 'id="special-days"' in page and "02-14 Spring Festival · workday" in page
    data = {}
    for policy in SlaPolicy.objects.all():
        data[f"{policy.priority}-first_response_minutes"] = policy.first_response_minutes
        data[f"{policy.priority}-resolution_minutes"] = policy.resolution_minutes
        data[f"{policy.priority}-business_hours_only"] = "on"
    data["urgent-first_response_minutes"] = 20
    data["low-business_hours_only"] = ""
    assert client.post(reverse("service:sla_settings"), data).status_code == 302
    assert SlaPolicy.objects.get(priority="urgent").first_response_minutes == 20
    assert not SlaPolicy.objects.get(priority="low").business_hours_only
    data["high-resolution_minutes"] = 1
    response = client.post(reverse("service:sla_settings"), data)
    assert response.status_code == 200 and SlaPolicy.objects.get(priority="high").resolution_minutes == 540


def test_the_customer_page_shows_the_service_panel(clock, customer, ticket, users):
    url = reverse("customers:detail", args=[customer.number])
    page = client_for(users["service"]).get(url).content.decode()
    panel = page[page.index('id="service-panel"') :]
    assert ticket.number in panel and 'data-count="open">1<' in panel
    assert f"/service/tickets/new/?customer={customer.number}" in panel
    panel = client_for(users["analyst"]).get(url).content.decode()
    assert 'id="service-panel"' in panel and "/service/tickets/new/" not in panel
