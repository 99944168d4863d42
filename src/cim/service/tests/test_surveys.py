"""Satisfaction surveys: sending by email and SMS, the public page on a phone, answers stored on the customer and
the ticket, and links that cannot be reused, forged, altered, replaced or used after they expire."""

import json
import re
from datetime import timedelta

import pytest
from django.core import mail, signing
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import translation

from cim.activities.timeline import timeline_page
from cim.audit.models import AuditEvent
from cim.customers.services import PermissionDenied
from cim.customers.tests.factories import make_customer
from cim.service.models import Survey
from cim.service.services import ticket_create
from cim.service.surveys import Outcome, survey_answer, survey_from_token, survey_send

pytestmark = pytest.mark.django_db
LINK = re.compile(r"https://cim\.example\.com(/s/[^/\s]+/)")


@pytest.fixture
def ticket(clock, customer, agent):
    return ticket_create(customer=customer, subject="退款没到账", channel="wechat", actor=agent)


@pytest.fixture
def send(django_capture_on_commit_callbacks, agent):
    """Send a survey and return (survey, the path of the link it sent)."""

    def send(**fields):
        fields.setdefault("kind", "csat")
        fields.setdefault("channel", "email")
        with django_capture_on_commit_callbacks(execute=True):
            survey = survey_send(actor=agent, **fields)
        survey.refresh_from_db()
        return survey, LINK.search(mail.outbox[-1].body).group(1)

    return send


def phone() -> Client:
    return Client(HTTP_USER_AGENT="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)", HTTP_ACCEPT_LANGUAGE="en")


def test_the_link_works_once_and_the_answer_lands_on_customer_and_ticket(clock, customer, ticket, send):
    survey, path = send(customer=customer, ticket=ticket)
    assert survey.sent_at is not None and survey.team == ticket.team
    client = phone()
    page = client.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="viewport"' in html and "How satisfied are you" in html and ticket.number in html
    assert html.count('name="score"') == 5 and "Very satisfied" in html
    assert "no-store" in page["Cache-Control"] or "max-age=0" in page["Cache-Control"]

    answered = client.post(path, {"score": "4", "comment": "处理很快，谢谢！"}, REMOTE_ADDR="203.0.113.9")
    assert answered.status_code == 200 and "Thank you" in answered.content.decode()
    survey.refresh_from_db()
    assert (survey.score, survey.comment, survey.answer_ip) == (4, "处理很快，谢谢！", "203.0.113.9")
    assert survey.answered_at == clock.now
    assert list(customer.surveys.values_list("score", flat=True)) == [4]
    assert list(ticket.surveys.values_list("score", flat=True)) == [4]
    assert AuditEvent.objects.filter(action="survey.answer", target_id=str(survey.pk), actor=None).count() == 1

    again = client.post(path, {"score": "1", "comment": "改主意了"})
    assert again.status_code == 410 and "already been answered" in again.content.decode()
    assert client.get(path).status_code == 410
    survey.refresh_from_db()
    assert (survey.score, survey.comment) == (4, "处理很快，谢谢！")
    assert AuditEvent.objects.filter(action="survey.answer").count() == 1


def test_a_real_browser_round_trip_passes_the_csrf_check(clock, customer, ticket, send):
    _survey, path = send(customer=customer, ticket=ticket)
    browser = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    page = browser.get(path).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert browser.post(path, {"score": "5"}).status_code == 403  # no token: refused
    answered = browser.post(path, {"score": "5", "csrfmiddlewaretoken": token}, HTTP_ORIGIN="http://testserver")
    assert answered.status_code == 200 and "Thank you" in answered.content.decode()


def test_a_double_submit_records_once(clock, customer, ticket, send):
    survey, path = send(customer=customer, ticket=ticket)
    token = path.split("/")[2]
    first = survey_answer(token=token, score=5)
    second = survey_answer(token=token, score=1)
    assert (first[1], second[1]) == (Outcome.ANSWERED, Outcome.USED)
    assert Survey.objects.get(pk=survey.pk).score == 5


def test_forged_and_altered_links_are_refused(clock, customer, ticket, send):
    survey, path = send(customer=customer, ticket=ticket)
    token = path.split("/")[2]
    forged = [
        signing.dumps({"s": survey.pk, "n": "guessed"}, salt="cim.service.survey-link"),  # right key, wrong nonce
        signing.dumps({"s": survey.pk, "n": "x"}, salt="another-salt"),
        signing.dumps({"s": survey.pk, "n": "x"}, salt="cim.service.survey-link", key="not-our-secret-key" * 3),
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # altered signature
        token.replace(
            token.split(":")[0], signing.b64_encode(json.dumps({"s": survey.pk + 1, "n": "x"}).encode()).decode()
        ),
        "nonsense",
        "",
        "a" * 300,
        "é%00<script>",
    ]
    client = phone()
    for bad in forged:
        assert survey_from_token(bad) == (None, Outcome.INVALID), bad
        if bad and "/" not in bad:
            response = client.post(f"/s/{bad}/", {"score": "5"})
            assert response.status_code == 404, bad
            assert "not valid" in response.content.decode()
    assert Survey.objects.get(pk=survey.pk).answered_at is None


def test_a_renewed_link_replaces_the_old_one(clock, customer, ticket, send):
    survey, old = send(customer=customer, ticket=ticket)
    again, new = send(customer=customer, ticket=ticket, channel="email")
    assert again.pk == survey.pk and old != new
    assert AuditEvent.objects.filter(action="survey.renew").count() == 1
    assert phone().get(old).status_code == 404
    assert phone().post(new, {"score": "3"}).status_code == 200
    with pytest.raises(ValidationError):
        send(customer=customer, ticket=ticket)  # answered: not sent again


def test_expired_links_are_refused(clock, customer, ticket, send, settings):
    settings.CIM_SURVEY_DAYS = 7
    survey, path = send(customer=customer, ticket=ticket)
    assert survey.expires_at == clock.now + timedelta(days=7)
    clock.advance(days=7)
    response = phone().post(path, {"score": "5"})
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert Survey.objects.get(pk=survey.pk).answered_at is None


def test_scores_outside_the_range_are_refused(clock, customer, ticket, send):
    _csat, csat_path = send(customer=customer, ticket=ticket)
    nps, nps_path = send(customer=customer, ticket=ticket, kind="nps")
    client = phone()
    for path, bad in ((csat_path, "0"), (csat_path, "6"), (csat_path, ""), (csat_path, "abc"), (nps_path, "11")):
        response = client.post(path, {"score": bad})
        assert response.status_code == 422 and "Please choose a score" in response.content.decode(), (path, bad)
    assert not Survey.objects.filter(answered_at__isnull=False).exists()
    page = client.get(nps_path).content.decode()
    assert page.count('name="score"') == 11 and "recommend" in page
    assert client.post(nps_path, {"score": "0"}).status_code == 200
    assert Survey.objects.get(pk=nps.pk).score == 0


def test_the_page_speaks_chinese_and_english(clock, customer, ticket, send):
    _survey, path = send(customer=customer, ticket=ticket)
    chinese = Client(HTTP_ACCEPT_LANGUAGE="zh-hans").get(path)
    assert chinese["Content-Language"] == "zh-hans" and '<html lang="zh-hans">' in chinese.content.decode()
    english = Client(HTTP_ACCEPT_LANGUAGE="zh-hans").get(path + "?lang=en")
    assert english["Content-Language"] == "en" and "How satisfied" in english.content.decode()


def test_answers_are_rate_limited_per_network(clock, customer, admin_user, agent, send, settings):
    settings.CIM_SURVEY_RATE_PER_IP = "2/h"
    paths = []
    for n in range(3):
        other = make_customer(admin_user, display_name=f"客户{n}", emails=[{"address": f"c{n}@example.com"}])
        paths.append(send(customer=other)[1])
    client = phone()
    assert client.post(paths[0], {"score": "5"}, REMOTE_ADDR="198.51.100.7").status_code == 200
    assert client.post(paths[1], {"score": "5"}, REMOTE_ADDR="198.51.100.7").status_code == 200
    limited = client.post(paths[2], {"score": "5"}, REMOTE_ADDR="198.51.100.7")
    assert limited.status_code == 429 and limited["Retry-After"]
    assert client.post(paths[2], {"score": "5"}, REMOTE_ADDR="192.0.2.1").status_code == 200


def test_sms_surveys_go_to_the_primary_phone(
    clock, customer, agent, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.CIM_SMS_BACKEND = "cim.ingest.sms.FileSmsSender"
    settings.CIM_SMS_FILE = tmp_path / "sms.jsonl"
    with django_capture_on_commit_callbacks(execute=True):
        survey = survey_send(customer=customer, kind="nps", channel="sms", order_id=9001, actor=agent)
    message = json.loads(settings.CIM_SMS_FILE.read_text(encoding="utf-8"))
    assert message["to"] == "+8613812345678" and "https://cim.example.com/s/" in message["text"]
    assert (survey.order_id, survey.ticket, survey.team) == (9001, None, None)
    path = LINK.search(message["text"]).group(1)
    assert "9001" in phone().get(path).content.decode()


def test_sending_checks_its_inputs(clock, customer, ticket, agent, admin_user, users):
    nobody = make_customer(admin_user, display_name="无邮箱")
    with pytest.raises(ValidationError) as error:
        survey_send(customer=nobody, kind="csat", channel="email", actor=agent)
    assert "channel" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        survey_send(customer=nobody, kind="csat", channel="email", ticket=ticket, actor=agent)
    with pytest.raises(ValidationError):
        survey_send(customer=customer, kind="ces", channel="email", actor=agent)
    with pytest.raises(PermissionDenied):
        survey_send(customer=customer, kind="csat", channel="email", actor=users["sales"])
    assert not Survey.objects.exists()


def test_a_failed_delivery_leaves_the_survey_unsent(
    clock, customer, agent, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "cim.service.tests.test_surveys.BrokenBackend"
    with django_capture_on_commit_callbacks(execute=True):
        survey = survey_send(customer=customer, kind="csat", channel="email", actor=agent)
    survey.refresh_from_db()
    assert survey.sent_at is None


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("SMTP server unreachable")


def test_the_timeline_shows_tickets_and_answers(clock, customer, ticket, send):
    _survey, path = send(customer=customer, ticket=ticket)
    clock.advance(hours=1)
    phone().post(path, {"score": "5", "comment": "满意"})
    with translation.override("en"):
        page = timeline_page(customer_id=customer.pk, kinds=["ticket", "survey"])
    assert [entry.kind for entry in page.entries] == ["survey", "ticket"]
    survey_entry, ticket_entry = page.entries
    assert ticket.number in ticket_entry.title and ticket_entry.url == f"/service/tickets/{ticket.number}/"
    assert "New" in [str(b) for b in ticket_entry.badges]
    assert "5" in survey_entry.title and survey_entry.detail == "满意"
    second = timeline_page(customer_id=customer.pk, kinds=["ticket", "survey"], before=survey_entry.cursor, limit=1)
    assert [entry.kind for entry in second.entries] == ["ticket"]
