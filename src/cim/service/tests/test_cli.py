"""`cim tickets sla-check` and `cim surveys report`: the same work as the worker and the report page, for scripts."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from cim.service.models import Ticket
from cim.service.services import ticket_create
from cim.service.surveys import survey_answer, survey_send

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, dict]:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    lines = out.getvalue().strip().splitlines()
    return out.getvalue(), json.loads(lines[-1]) if "--json" in args else {}


def test_sla_check_escalates_once(clock, customer, agent):
    ticket = ticket_create(customer=customer, subject="没人回", channel="phone", priority="urgent", actor=agent)
    clock.set("2026-03-09 14:30")
    assert run("tickets", "sla-check", "--json")[1] == {"first_response": 1, "resolution": 1}
    assert Ticket.objects.get(pk=ticket.pk).escalation_level == 2
    output, _ = run("tickets", "sla-check")
    assert output.strip() == "0 ticket(s) escalated for a late first response, 0 for a late resolution."


def test_surveys_report(clock, customer, agent, issued):
    ticket = ticket_create(customer=customer, subject="问卷", channel="phone", actor=agent)
    for kind, channel, score in (("csat", "email", 4), ("nps", "sms", 6)):
        survey = survey_send(customer=customer, kind=kind, channel=channel, ticket=ticket, actor=agent)
        survey_answer(token=issued[survey.pk], score=score)
    _, report = run("surveys", "report", "--by", "team", "--json")
    assert report["by"] == "team" and report["rows"][0]["label"] == agent.team.name
    assert report["total"]["csat"] == 100.0 and report["total"]["nps"] == -100.0
    _, by_channel = run("surveys", "report", "--json", "--by", "channel", "--kind", "nps")
    assert [(r["key"], r["nps_answers"]) for r in by_channel["rows"]] == [("sms", 1)]
    output, _ = run("surveys", "report", "--since", "2026-03-01")
    assert "2026-03" in output and output.strip().endswith("2 answer(s): CSAT 100%, NPS -100.")
    _, none = run("surveys", "report", "--json", "--until", "2026-02-28")
    assert none["rows"] == [] and none["total"]["csat_answers"] == 0


def test_surveys_report_refuses_bad_dates():
    with pytest.raises(CommandError):
        run("surveys", "report", "--since", "yesterday")
