"""Ticket services: numbers, SLA deadlines in business hours, the status workflow, the paused clock, replies and
notes, assignment, escalation (by hand and by the SLA check, once), breach counts, and the audit trail."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from cim.audit.models import AuditEvent
from cim.core.schedule import PERIODIC, periodic_enqueue_due
from cim.customers.services import PermissionDenied
from cim.customers.tests.factories import make_customer
from cim.service import sla
from cim.service.models import SlaPolicy, Survey, Ticket
from cim.service.services import (
    sla_policy_update,
    ticket_assign,
    ticket_create,
    ticket_escalate,
    ticket_note,
    ticket_reply,
    ticket_transition,
    tickets_escalate_overdue,
)
from cim.service.tasks import tickets_sla_check
from cim.service.tests.conftest import at

pytestmark = pytest.mark.django_db


def open_ticket(customer, actor, **fields) -> Ticket:
    fields.setdefault("subject", "快递三天未到")
    fields.setdefault("channel", "phone")
    return ticket_create(customer=customer, actor=actor, **fields)


def actions(ticket) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_type="service.ticket", target_id=str(ticket.pk))
        .values_list("action", flat=True)
        .order_by("id")
    )


def test_numbers_run_per_year_and_deadlines_follow_the_priority(clock, customer, agent):
    ticket = open_ticket(customer, agent, priority="normal", category="complaint", description="箱子破了，")
    assert ticket.number == "T-2026-000001"
    assert ticket.description == "箱子破了，"  # Chinese punctuation kept as typed
    assert ticket.status == "new" and ticket.team == agent.team and ticket.created_by == agent
    assert ticket.first_response_due == at("2026-03-09 14:00")  # 4 business hours
    assert ticket.resolution_due == at("2026-03-12 10:00")  # 3 business days
    assert open_ticket(customer, agent).number == "T-2026-000002"
    clock.set("2027-01-04 10:00")
    assert open_ticket(customer, agent).number == "T-2027-000001"
    assert actions(ticket) == ["ticket.create"]


def test_deadlines_cross_the_spring_festival(clock, customer, agent):
    clock.set("2026-02-13 17:00")  # the Friday before the holiday
    urgent = open_ticket(customer, agent, priority="urgent")
    assert urgent.first_response_due == at("2026-02-13 17:30")
    assert urgent.resolution_due == at("2026-02-14 12:00")  # the make-up Saturday
    clock.set("2026-02-14 17:00")
    high = open_ticket(customer, agent, priority="high")
    assert high.first_response_due == at("2026-02-14 18:00")
    assert high.resolution_due == at("2026-02-24 17:00")  # one business day, the holiday skipped


def test_a_policy_around_the_clock(clock, customer, agent, admin_user):
    policy = SlaPolicy.objects.get(priority="urgent")
    sla_policy_update(policy=policy, actor=admin_user, business_hours_only=False, first_response_minutes=15)
    clock.set("2026-03-07 23:00")  # Saturday night
    ticket = open_ticket(customer, agent, priority="urgent")
    assert ticket.first_response_due == at("2026-03-07 23:15")
    assert ticket.resolution_due == at("2026-03-08 03:00")
    assert not ticket.sla_business_hours


def test_opened_at_starts_the_clocks_when_the_customer_got_in_touch(clock, customer, agent):
    ticket = open_ticket(customer, agent, opened_at=at("2026-03-06 17:00"))
    assert ticket.created_at == at("2026-03-06 17:00")
    assert ticket.first_response_due == at("2026-03-09 12:00")
    with pytest.raises(ValidationError):
        open_ticket(customer, agent, opened_at=at("2026-03-10 10:00"))


@pytest.mark.parametrize(
    ("field", "value"),
    [("subject", "  "), ("channel", "fax"), ("priority", "whenever"), ("category", "x"), ("subject", "长" * 201)],
)
def test_invalid_tickets_are_refused(clock, customer, agent, field, value):
    with pytest.raises(ValidationError) as error:
        open_ticket(customer, agent, **{field: value})
    assert field in error.value.message_dict
    assert not Ticket.objects.exists()


def test_roles_without_ticket_handling_cannot_write(clock, customer, agent, users):
    with pytest.raises(PermissionDenied):
        open_ticket(customer, users["sales"])
    ticket = open_ticket(customer, agent)
    for call in (
        lambda: ticket_reply(ticket=ticket, body="好", actor=users["analyst"]),
        lambda: ticket_note(ticket=ticket, body="好", actor=users["marketing"]),
        lambda: ticket_transition(ticket=ticket, status="in_progress", actor=users["auditor"]),
        lambda: ticket_assign(ticket=ticket, assignee=agent, actor=users["sales"]),
        lambda: ticket_escalate(ticket=ticket, reason="急", actor=users["sales"]),
    ):
        with pytest.raises(PermissionDenied):
            call()
    ticket.refresh_from_db()
    assert ticket.status == "new" and not ticket.messages.exists()


def test_workflow_allows_only_its_transitions(clock, customer, agent):
    ticket = open_ticket(customer, agent)
    with pytest.raises(ValidationError) as error:
        ticket_transition(ticket=ticket, status="reopened", actor=agent)
    assert "status" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        ticket_transition(ticket=ticket, status="resolved", actor=agent)
    assert "resolution_code" in error.value.message_dict
    assert Ticket.objects.get(pk=ticket.pk).status == "new"

    ticket_transition(ticket=ticket, status="in_progress", actor=agent)
    ticket_transition(ticket=ticket, status="resolved", resolution_code="fixed", actor=agent)
    assert (ticket.status, ticket.resolution_code, ticket.resolved_at) == ("resolved", "fixed", clock.now)
    assert ticket.first_responded_at == clock.now  # resolving stops the first-response clock too
    with pytest.raises(ValidationError):
        ticket_transition(ticket=ticket, status="in_progress", actor=agent)
    ticket_transition(ticket=ticket, status="reopened", actor=agent)
    assert (ticket.status, ticket.reopened_count, ticket.resolved_at, ticket.resolution_code) == (
        "reopened",
        1,
        None,
        "",
    )
    ticket_transition(ticket=ticket, status="closed", resolution_code="no_response", actor=agent)
    assert ticket.closed_at == clock.now and ticket.resolved_at == clock.now
    for status in ("reopened", "in_progress", "new"):
        with pytest.raises(ValidationError):
            ticket_transition(ticket=ticket, status=status, actor=agent)
    assert ticket_transition(ticket=ticket, status="closed", actor=agent).status == "closed"  # no change, no error
    assert actions(ticket).count("ticket.transition") == 4


def test_a_reply_stops_the_first_response_clock_and_a_note_does_not(
    clock, customer, agent, django_capture_on_commit_callbacks
):
    ticket = open_ticket(customer, agent)
    clock.advance(minutes=30)
    ticket_note(ticket=ticket, body="先查物流", actor=agent)
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None and ticket.status == "new"
    clock.advance(minutes=30)
    with django_capture_on_commit_callbacks(execute=True):
        message = ticket_reply(ticket=ticket, body="您好，已为您加急处理。", actor=agent)
    assert ticket.first_responded_at == at("2026-03-09 11:00")
    assert ticket.status == "in_progress"
    assert message.kind == "reply" and message.author == agent
    reply = mail.outbox[-1]
    assert reply.to == ["xiaoming@example.com"] and ticket.number in reply.subject
    assert reply.body == "您好，已为您加急处理。"
    message.refresh_from_db()
    assert message.emailed_at is not None
    clock.advance(hours=1)
    ticket_reply(ticket=ticket, body="补充说明", actor=agent, email_customer=False)
    assert Ticket.objects.get(pk=ticket.pk).first_responded_at == at("2026-03-09 11:00")
    assert [m.kind for m in ticket.messages.all()] == ["note", "reply", "reply"]
    assert actions(ticket) == ["ticket.create", "ticket.note", "ticket.reply", "ticket.transition", "ticket.reply"]


def test_empty_messages_and_replies_on_closed_tickets_are_refused(clock, customer, agent):
    ticket = open_ticket(customer, agent)
    with pytest.raises(ValidationError):
        ticket_note(ticket=ticket, body=" \n ", actor=agent)
    ticket_transition(ticket=ticket, status="closed", resolution_code="duplicate", actor=agent)
    with pytest.raises(ValidationError):
        ticket_reply(ticket=ticket, body="还在吗", actor=agent)
    ticket_note(ticket=ticket, body="客户又来电，已告知", actor=agent)
    assert ticket.messages.count() == 1


def test_waiting_on_the_customer_pauses_the_resolution_clock(clock, customer, agent):
    ticket = open_ticket(customer, agent)  # Monday 10:00, resolution due Thursday 10:00
    clock.set("2026-03-09 11:00")
    ticket_reply(ticket=ticket, body="请提供订单号", actor=agent, status="waiting")
    assert ticket.status == "waiting" and ticket.sla_paused_at == clock.now
    clock.set("2026-03-13 10:00")  # Friday: past the original deadline, but the clock stood still
    assert sla.ticket_clocks(ticket, now=clock.now)["resolution"].state == sla.PAUSED
    assert not Ticket.objects.filter(sla.breached(clock.now)).exists()
    clock.set("2026-03-11 11:00")  # back on Wednesday: 1,560 business minutes were left
    ticket_transition(ticket=ticket, status="in_progress", actor=agent)
    assert ticket.sla_paused_at is None
    assert ticket.resolution_due == at("2026-03-16 10:00")


def test_a_deadline_missed_before_waiting_stays_missed(clock, customer, agent):
    ticket = open_ticket(customer, agent, priority="urgent")  # resolution due 14:00
    clock.set("2026-03-09 15:00")
    ticket_transition(ticket=ticket, status="waiting", actor=agent)
    assert Ticket.objects.filter(sla.resolution_breached(clock.now), pk=ticket.pk).exists()
    clock.set("2026-03-10 10:00")
    ticket_transition(ticket=ticket, status="resolved", resolution_code="fixed", actor=agent)
    assert ticket.resolution_due == at("2026-03-09 14:00")
    assert sla.ticket_clocks(ticket, now=clock.now)["resolution"].state == sla.BREACHED


def test_reopening_gives_back_the_time_that_was_left(clock, customer, agent):
    ticket = open_ticket(customer, agent)  # resolution due Thursday 10:00
    clock.set("2026-03-10 10:00")
    ticket_transition(ticket=ticket, status="resolved", resolution_code="fixed", actor=agent)
    clock.set("2026-03-13 10:00")  # two business days (1,080 minutes) were left at resolution
    ticket_transition(ticket=ticket, status="reopened", actor=agent)
    assert ticket.resolution_due == at("2026-03-17 10:00")
    assert sla.ticket_clocks(ticket, now=clock.now)["resolution"].state == sla.RUNNING


def test_assignment_checks_the_assignee_and_tells_them(
    clock, customer, agent, users, other_team, django_capture_on_commit_callbacks
):
    manager = users["manager"]
    ticket = open_ticket(customer, manager)
    with pytest.raises(ValidationError) as error:
        ticket_assign(ticket=ticket, assignee=users["sales"], actor=manager)
    assert "assignee" in error.value.message_dict
    with django_capture_on_commit_callbacks(execute=True):
        ticket_assign(ticket=ticket, assignee=agent, actor=manager)
    assert ticket.assignee == agent and ticket.team == agent.team
    assert mail.outbox[-1].to == ["agent@example.com"] and ticket.number in mail.outbox[-1].subject
    ticket_assign(ticket=ticket, assignee=agent, team=other_team, actor=manager)
    assert ticket.team == other_team
    ticket_assign(ticket=ticket, assignee=agent, team=other_team, actor=manager)  # nothing changes
    ticket_assign(ticket=ticket, assignee=None, actor=manager)
    assert ticket.assignee is None and ticket.team == other_team
    event = AuditEvent.objects.filter(action="ticket.assign").order_by("id").first()
    assert {c.field: (c.old_value, c.new_value) for c in event.changes.all()} == {"assignee_id": ("", str(agent.pk))}
    assert actions(ticket).count("ticket.assign") == 3


def test_escalation_by_hand(clock, customer, agent, users, other_team, django_capture_on_commit_callbacks):
    manager = users["manager"]
    manager.email = "manager@example.com"
    manager.save(update_fields=["email"])
    ticket = open_ticket(customer, agent, assignee=agent)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_escalate(ticket=ticket, reason="客户要求主管回电", actor=agent)
    assert (ticket.escalation_level, ticket.escalated_at) == (1, clock.now)
    note = ticket.messages.get()
    assert note.kind == "note" and "客户要求主管回电" in note.body
    assert set(mail.outbox[-1].to) == {"agent@example.com", "manager@example.com"}
    ticket_escalate(ticket=ticket, reason="二线", team=other_team, actor=agent)
    assert ticket.team == other_team and ticket.escalation_level == 2
    ticket_escalate(ticket=ticket, reason="三线", actor=agent)
    with pytest.raises(ValidationError):
        ticket_escalate(ticket=ticket, reason="四线", actor=agent)
    with pytest.raises(ValidationError):
        ticket_escalate(ticket=ticket, reason=" ", actor=agent)
    assert Ticket.objects.get(pk=ticket.pk).escalation_level == 3


def test_the_sla_check_escalates_each_missed_deadline_once(
    clock, customer, agent, settings, django_capture_on_commit_callbacks
):
    settings.LANGUAGE_CODE = "en"  # the language staff emails are written in
    late = open_ticket(customer, agent, assignee=agent, priority="urgent")  # response 10:30, resolution 14:00
    answered = open_ticket(customer, agent, assignee=agent, priority="urgent")
    ticket_reply(ticket=answered, body="收到", actor=agent)
    fine = open_ticket(customer, agent, priority="low")
    clock.set("2026-03-09 10:31")
    with django_capture_on_commit_callbacks(execute=True):
        run = tickets_escalate_overdue()
    assert (run.first_response, run.resolution) == (1, 0)
    late.refresh_from_db()
    assert (late.escalation_level, late.response_escalated_at, late.escalated_at) == (1, clock.now, clock.now)
    assert mail.outbox[-1].to == ["agent@example.com"] and "first-response" in mail.outbox[-1].subject
    sent = len(mail.outbox)

    assert tickets_escalate_overdue() == type(run)(0, 0)  # idempotent: run again, nothing more
    clock.advance(minutes=5)
    assert tickets_escalate_overdue() == type(run)(0, 0)
    assert len(mail.outbox) == sent
    clock.set("2026-03-09 14:01")
    run = tickets_escalate_overdue()
    assert (run.first_response, run.resolution) == (0, 2)
    late.refresh_from_db()
    answered.refresh_from_db()
    fine.refresh_from_db()
    assert (late.escalation_level, answered.escalation_level, fine.escalation_level) == (2, 1, 0)
    assert tickets_escalate_overdue(now=clock.now) == type(run)(0, 0)
    assert actions(late).count("ticket.sla_escalate") == 2


def test_waiting_and_resolved_tickets_are_not_escalated(clock, customer, agent):
    waiting = open_ticket(customer, agent, priority="urgent")
    ticket_reply(ticket=waiting, body="请补充照片", actor=agent, status="waiting")
    done = open_ticket(customer, agent, priority="urgent")
    ticket_transition(ticket=done, status="resolved", resolution_code="answered", actor=agent)
    clock.set("2026-03-10 17:00")
    assert tickets_escalate_overdue() == type(tickets_escalate_overdue())(0, 0)


def test_breach_counts_agree_with_each_ticket_clock(clock, customer, agent):
    on_time = open_ticket(customer, agent, priority="urgent")  # response due 10:30, resolution 14:00
    late_reply = open_ticket(customer, agent, priority="urgent")
    silent = open_ticket(customer, agent, priority="urgent")
    clock.set("2026-03-09 10:20")
    ticket_reply(ticket=on_time, body="好的", actor=agent)
    clock.set("2026-03-09 10:45")
    ticket_reply(ticket=late_reply, body="抱歉久等", actor=agent)
    ticket_transition(ticket=late_reply, status="resolved", resolution_code="fixed", actor=agent)
    risky = open_ticket(customer, agent, priority="high")  # response due 11:45: at risk at 11:00
    later = open_ticket(customer, agent, priority="low")
    clock.set("2026-03-09 11:00")

    counts = sla.sla_counts(Ticket.objects.all(), now=clock.now)
    assert counts["first_response"] == {"met": 1, "breached": 2, "open": 2, "at_risk": 1}
    assert counts["resolution"] == {"met": 1, "breached": 0, "open": 4, "at_risk": 0}
    assert (counts["breached"], counts["at_risk"], counts["total"]) == (2, 1, 5)
    breached = set(Ticket.objects.filter(sla.breached(clock.now)).values_list("pk", flat=True))
    at_risk = set(Ticket.objects.filter(sla.at_risk(clock.now)).values_list("pk", flat=True))
    assert breached == {late_reply.pk, silent.pk} and at_risk == {risky.pk}
    for ticket in Ticket.objects.all():
        states = {clock_.state for clock_ in sla.ticket_clocks(ticket, now=clock.now).values()}
        assert (sla.BREACHED in states) == (ticket.pk in breached), ticket.number
        assert (sla.AT_RISK in states) == (ticket.pk in at_risk), ticket.number
    assert later.pk not in breached | at_risk


def test_resolving_sends_a_satisfaction_survey(clock, customer, agent, settings, django_capture_on_commit_callbacks):
    ticket = open_ticket(customer, agent)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_transition(ticket=ticket, status="resolved", resolution_code="fixed", actor=agent)
    survey = Survey.objects.get()
    assert (survey.ticket, survey.customer, survey.kind, survey.channel) == (ticket, customer, "csat", "email")
    assert survey.team == ticket.team and survey.sent_at is not None
    assert "https://cim.example.com/s/" in mail.outbox[-1].body and mail.outbox[-1].to == ["xiaoming@example.com"]
    # Reopened and resolved again: the customer is not asked twice.
    ticket_transition(ticket=ticket, status="reopened", actor=agent)
    ticket_transition(ticket=ticket, status="resolved", resolution_code="fixed", actor=agent)
    assert Survey.objects.count() == 1


def test_no_survey_when_switched_off_for_spam_or_without_contacts(clock, customer, agent, settings, admin_user):
    settings.CIM_SURVEY_AFTER_TICKET = False
    ticket_transition(ticket=open_ticket(customer, agent), status="resolved", resolution_code="fixed", actor=agent)
    settings.CIM_SURVEY_AFTER_TICKET = True
    ticket_transition(ticket=open_ticket(customer, agent), status="resolved", resolution_code="invalid", actor=agent)
    unreachable = make_customer(admin_user, display_name="无联系方式")
    ticket_transition(ticket=open_ticket(unreachable, agent), status="resolved", resolution_code="fixed", actor=agent)
    assert not Survey.objects.exists()
    phone_only = make_customer(admin_user, display_name="只有电话", phones=[{"number": "13900001111"}])
    ticket_transition(ticket=open_ticket(phone_only, agent), status="resolved", resolution_code="fixed", actor=agent)
    assert Survey.objects.get().channel == "sms"


def test_sla_policy_update_is_checked_and_audited(admin_user, users):
    policy = SlaPolicy.objects.get(priority="normal")
    with pytest.raises(PermissionDenied):
        sla_policy_update(policy=policy, actor=users["manager"], first_response_minutes=60)
    with pytest.raises(ValidationError):
        sla_policy_update(policy=policy, actor=admin_user, resolution_minutes=10)
    policy.refresh_from_db()
    assert (policy.first_response_minutes, policy.resolution_minutes) == (240, 1620)
    sla_policy_update(policy=policy, actor=admin_user, first_response_minutes=120)
    assert SlaPolicy.objects.get(priority="normal").first_response_minutes == 120
    event = AuditEvent.objects.get(action="sla_policy.update")
    assert [(c.field, c.old_value, c.new_value) for c in event.changes.all()] == [
        ("first_response_minutes", "240", "120")
    ]


def test_default_policies_are_seeded():
    rows = {p.priority: (p.first_response_minutes, p.resolution_minutes) for p in SlaPolicy.objects.all()}
    assert rows == {"urgent": (30, 240), "high": (60, 540), "normal": (240, 1620), "low": (480, 2700)}


def test_the_worker_runs_the_sla_check_every_five_minutes(clock, customer, agent):
    queued = periodic_enqueue_due()
    assert "cim.service.tasks.tickets_sla_check" in queued
    assert PERIODIC["cim.service.tasks.tickets_sla_check"].every == timedelta(minutes=5)
    ticket = open_ticket(customer, agent, priority="urgent")
    clock.set("2026-03-09 10:31")
    assert tickets_sla_check.call() == {"first_response": 1, "resolution": 0}
    assert Ticket.objects.get(pk=ticket.pk).response_escalated_at == clock.now
