"""Collection forms: building, submitting, SMS and email verification, abuse limits, matching, consent, pages, CLI."""

import json
import logging
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from cim.accounts.roles import Role
from cim.audit.models import AuditEvent
from cim.customers.models import Customer
from cim.customers.services import PermissionDenied
from cim.customers.tests.factories import make_customer
from cim.ingest.collection import (
    MAX_ATTEMPTS,
    FormInput,
    Outcome,
    collection_form_create,
    collection_form_update,
    field_item,
    form_submission_receive,
    submission_step_token,
    verification_check_code,
)
from cim.ingest.models import CollectionForm, FormSubmission, VerificationChallenge
from cim.privacy.models import Consent
from cim.quality.models import DuplicateCandidate

pytestmark = pytest.mark.django_db

PHONE = "138 0013 8000"
E164 = "+8613800138000"


@pytest.fixture(autouse=True)
def _fresh_limits_and_outbox(settings, tmp_path):
    """Rate-limit counters live in the cache: each test starts at zero. Text messages go to a file per test."""
    cache.clear()
    settings.CIM_SMS_BACKEND = "cim.ingest.sms.FileSmsSender"
    settings.CIM_SMS_FILE = tmp_path / "sms-outbox.jsonl"
    yield
    cache.clear()


@pytest.fixture
def sms_outbox(settings):
    def read() -> list[dict]:
        path = settings.CIM_SMS_FILE
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []

    return read


def last_code(sms_outbox) -> str:
    return re.search(r"\b(\d{6})\b", sms_outbox()[-1]["text"]).group(1)


def form_input(**overrides) -> FormInput:
    values = {
        "slug": "spring-fair",
        "name": "春季展会",
        "title_zh": "春季展会登记",
        "title_en": "Spring fair sign-up",
        "consent_purpose": "marketing",
        "consent_text_zh": "我同意接收活动与产品信息。",
        "consent_text_en": "I agree to receive news about events and products.",
        "consent_version": "2025-01",
        "fields": [field_item("display_name", True), field_item("phone", True), field_item("company", False)],
        "verify": "sms",
    }
    return FormInput(**{**values, **overrides})


@pytest.fixture
def sms_form(admin_user):
    return collection_form_create(data=form_input(), actor=admin_user)


@pytest.fixture
def email_form(admin_user):
    fields = [field_item("display_name", True), field_item("email", True)]
    return collection_form_create(data=form_input(slug="newsletter", fields=fields, verify="email"), actor=admin_user)


@pytest.fixture
def visitor():
    return Client(HTTP_ACCEPT_LANGUAGE="zh-Hans", HTTP_USER_AGENT="Mozilla/5.0 (iPhone) 测试")


def submit(client, form, commit, ip="203.0.113.7", **values):
    data = {"display_name": "王小明", "phone": PHONE, "consent": "on", **values}
    with commit(execute=True):
        return client.post(reverse("ingest:public_form", args=[form.slug]), data, REMOTE_ADDR=ip)


def enter_code(client, step_url, code, commit):
    with commit(execute=True):
        return client.post(step_url, {"action": "code", "code": code})


# --- building forms


@translation.override("en")
def test_form_create_checks_fields_slug_and_verification(admin_user, sms_form):
    with pytest.raises(ValidationError) as error:
        collection_form_create(
            data=form_input(slug="spring-fair", fields=[field_item("company", True)], consent_text_en=" "),
            actor=admin_user,
        )
    problems = error.value.message_dict
    assert set(problems) == {"slug", "fields", "consent_text_en"}
    assert any("name" in p for p in problems["fields"])
    assert any("SMS verification needs the mobile phone" in p for p in problems["fields"])

    with pytest.raises(ValidationError) as error:
        collection_form_create(data=form_input(slug="Bad Slug!", verify="email"), actor=admin_user)
    assert set(error.value.message_dict) == {"slug", "fields"}


def test_form_labels_default_to_both_languages(admin_user):
    item = {"field": "phone", "required": True, "label_zh": "", "label_en": ""}
    form = collection_form_create(data=form_input(fields=[field_item("display_name", True), item]), actor=admin_user)
    assert form.fields[1] == {"field": "phone", "required": True, "label_zh": "手机号", "label_en": "Mobile phone"}


def test_changing_the_consent_text_needs_a_new_version(admin_user, sms_form):
    with pytest.raises(ValidationError) as error:
        collection_form_update(form=sms_form, data=form_input(consent_text_en="Other text."), actor=admin_user)
    assert set(error.value.message_dict) == {"consent_version"}

    collection_form_update(
        form=sms_form, data=form_input(consent_text_en="Other text.", consent_version="2025-02"), actor=admin_user
    )
    sms_form.refresh_from_db()
    assert sms_form.consent_version == "2025-02"
    event = AuditEvent.objects.get(action="collection_form.update", target_id=str(sms_form.pk))
    assert set(event.fields) == {"consent_text_en", "consent_version"}


def test_only_administrators_build_forms(users):
    with pytest.raises(PermissionDenied):
        collection_form_create(data=form_input(), actor=users[Role.MARKETING])
    assert not CollectionForm.objects.exists()


# --- the SMS flow, end to end through the pages


def test_sms_code_flow_creates_a_customer_with_verified_phone_and_consent(
    visitor, sms_form, sms_outbox, django_capture_on_commit_callbacks
):
    response = submit(visitor, sms_form, django_capture_on_commit_callbacks, company="示例科技")
    assert response.status_code == 302
    step_url = response["Location"]
    submission = FormSubmission.objects.get()
    assert submission.status == FormSubmission.Status.PENDING
    assert submission.raw == {"display_name": "王小明", "phone": PHONE, "company": "示例科技", "consent": True}
    assert not Customer.objects.exists()  # nothing becomes customer data before the phone is proven

    page = visitor.get(step_url)
    assert page.status_code == 200 and "•••• 8000" in page.content.decode()
    assert sms_outbox()[-1]["to"] == E164
    assert "验证码" in sms_outbox()[-1]["text"]  # in the visitor's language

    response = enter_code(visitor, step_url, last_code(sms_outbox), django_capture_on_commit_callbacks)
    assert response.status_code == 302
    page = visitor.get(step_url)
    assert "谢谢！" in page.content.decode()

    customer = Customer.objects.get()
    assert (customer.display_name, customer.company, customer.source_channel) == ("王小明", "示例科技", "website")
    phone = customer.phones.get()
    assert (phone.number, phone.raw, phone.is_verified) == (E164, PHONE, True)
    submission.refresh_from_db()
    assert submission.status == FormSubmission.Status.CONFIRMED and submission.customer == customer
    consent = Consent.objects.get()
    assert consent.customer == customer and consent.submission == submission
    assert (consent.purpose, consent.text_version, consent.granted) == ("marketing", "2025-01", True)
    assert consent.text == "我同意接收活动与产品信息。" and consent.language == "zh-hans"
    assert consent.ip == "203.0.113.7" and consent.user_agent == "Mozilla/5.0 (iPhone) 测试"
    assert consent.channel == "website"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"form_submission.receive", "verification.verify", "form_submission.confirm", "consent.grant"} <= actions
    assert "customer.create" in actions


def test_the_consent_shown_is_recorded_even_if_the_text_changes_before_confirmation(
    visitor, admin_user, sms_form, sms_outbox, django_capture_on_commit_callbacks
):
    step_url = submit(visitor, sms_form, django_capture_on_commit_callbacks)["Location"]
    collection_form_update(
        form=sms_form, data=form_input(consent_text_zh="新的文本。", consent_version="2025-09"), actor=admin_user
    )
    enter_code(visitor, step_url, last_code(sms_outbox), django_capture_on_commit_callbacks)
    consent = Consent.objects.get()
    assert (consent.text, consent.text_version) == ("我同意接收活动与产品信息。", "2025-01")


def test_wrong_codes_are_limited_and_then_the_submission_is_rejected(
    visitor, sms_form, sms_outbox, django_capture_on_commit_callbacks
):
    step_url = submit(visitor, sms_form, django_capture_on_commit_callbacks)["Location"]
    right = last_code(sms_outbox)
    wrong = "000000" if right != "000000" else "111111"
    for attempt in range(1, MAX_ATTEMPTS):
        response = enter_code(visitor, step_url, wrong, django_capture_on_commit_callbacks)
        assert response.status_code == 200
        assert f"验证码不正确，您还可以再试 {MAX_ATTEMPTS - attempt} 次。" in response.content.decode()
        assert VerificationChallenge.objects.get().attempts == attempt
    response = enter_code(visitor, step_url, wrong, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert FormSubmission.objects.get().status == FormSubmission.Status.REJECTED
    # Even the right code is refused now, and nothing was stored as customer data.
    assert verification_check_code(submission=FormSubmission.objects.get(), code=right) == Outcome.CLOSED
    assert not Customer.objects.exists() and not Consent.objects.exists()
    assert "验证码错误次数过多" in visitor.get(step_url).content.decode()


def test_an_expired_code_is_refused_and_a_new_one_works(
    visitor, sms_form, sms_outbox, django_capture_on_commit_callbacks
):
    step_url = submit(visitor, sms_form, django_capture_on_commit_callbacks)["Location"]
    old = last_code(sms_outbox)
    VerificationChallenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = enter_code(visitor, step_url, old, django_capture_on_commit_callbacks)
    assert response.status_code == 200 and "已过期" in response.content.decode()
    assert VerificationChallenge.objects.get().attempts == 0  # an expired code is not a guess

    with django_capture_on_commit_callbacks(execute=True):
        response = visitor.post(step_url, {"action": "resend", "channel": "sms"})
    assert response.status_code == 302 and len(sms_outbox()) == 2
    challenge = VerificationChallenge.objects.get()
    assert challenge.expires_at > timezone.now() + timedelta(minutes=9)
    enter_code(visitor, step_url, last_code(sms_outbox), django_capture_on_commit_callbacks)
    assert FormSubmission.objects.get().status == FormSubmission.Status.CONFIRMED


def test_codes_are_stored_hashed(visitor, sms_form, sms_outbox, django_capture_on_commit_callbacks):
    submit(visitor, sms_form, django_capture_on_commit_callbacks)
    challenge = VerificationChallenge.objects.get()
    assert last_code(sms_outbox) not in challenge.code_hash and len(challenge.code_hash) == 64
    assert E164 not in challenge.target_hash


def test_a_failing_sms_provider_is_logged_and_the_submission_kept(
    visitor, sms_form, settings, caplog, django_capture_on_commit_callbacks
):
    settings.CIM_SMS_BACKEND = "cim.ingest.sms.SmsSender"  # the interface itself: send() raises
    with caplog.at_level(logging.ERROR, logger="cim.ingest.collection"):
        response = submit(visitor, sms_form, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert FormSubmission.objects.count() == 1
    assert "could not be sent" in caplog.text
    assert visitor.get(response["Location"]).status_code == 200


# --- the email double opt-in


def email_link(message) -> str:
    return re.search(r"https?://\S+/verify/\S+/", message.body).group(0)


def test_email_link_flow_double_opt_in(email_form, django_capture_on_commit_callbacks):
    visitor = Client(HTTP_ACCEPT_LANGUAGE="en")
    with django_capture_on_commit_callbacks(execute=True):
        response = visitor.post(
            reverse("ingest:public_form", args=[email_form.slug]),
            {"display_name": "Ada Lovelace", "email": " Ada@Example.COM ", "consent": "on"},
        )
    step_url = response["Location"]
    assert "Check your email" in visitor.get(step_url).content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.com"]
    assert mail.outbox[0].subject == "Confirm your email address"
    link = email_link(mail.outbox[0])

    # Opening the link (as a mail scanner would) changes nothing; the button does.
    page = visitor.get(link)
    assert page.status_code == 200 and "Confirm my email address" in page.content.decode()
    assert FormSubmission.objects.get().status == FormSubmission.Status.PENDING
    with django_capture_on_commit_callbacks(execute=True):
        response = visitor.post(link)
    assert response.status_code == 302 and response["Location"].startswith(f"/f/{email_form.slug}/s/")
    assert "Thank you" in visitor.get(step_url).content.decode()
    email = Customer.objects.get().emails.get()
    assert (email.address, email.is_verified) == ("ada@example.com", True)
    assert Consent.objects.get().language == "en"

    assert visitor.post(link).status_code == 302  # a second click is harmless
    assert Customer.objects.count() == 1


def test_a_new_email_makes_the_old_link_invalid(email_form, django_capture_on_commit_callbacks):
    visitor = Client(HTTP_ACCEPT_LANGUAGE="en")
    with django_capture_on_commit_callbacks(execute=True):
        step_url = visitor.post(
            reverse("ingest:public_form", args=[email_form.slug]),
            {"display_name": "Ada", "email": "ada@example.com", "consent": "on"},
        )["Location"]
        visitor.post(step_url, {"action": "resend", "channel": "email"})
    old, new = email_link(mail.outbox[0]), email_link(mail.outbox[1])
    response = visitor.post(old)
    assert response.status_code == 404 and "newest one" in response.content.decode()
    assert visitor.post(new).status_code == 302
    assert FormSubmission.objects.get().status == FormSubmission.Status.CONFIRMED


def test_a_tampered_link_is_refused(email_form):
    response = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/f/{email_form.slug}/verify/not-a-token/")
    assert response.status_code == 404 and "not valid" in response.content.decode()


def test_both_channels_must_be_verified(admin_user, sms_outbox, django_capture_on_commit_callbacks):
    fields = [field_item("display_name", True), field_item("phone", True), field_item("email", True)]
    form = collection_form_create(data=form_input(slug="both", fields=fields, verify="both"), actor=admin_user)
    visitor = Client(HTTP_ACCEPT_LANGUAGE="en")
    step_url = submit(visitor, form, django_capture_on_commit_callbacks, email="li@example.com")["Location"]
    enter_code(visitor, step_url, last_code(sms_outbox), django_capture_on_commit_callbacks)
    assert FormSubmission.objects.get().status == FormSubmission.Status.PENDING
    assert "Your mobile phone is verified" in visitor.get(step_url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        visitor.post(email_link(mail.outbox[0]))
    customer = Customer.objects.get()
    assert customer.phones.get().is_verified and customer.emails.get().is_verified


# --- abuse protection


def test_the_honeypot_drops_a_bot_quietly_but_logs_it(visitor, sms_form, caplog, django_capture_on_commit_callbacks):
    with caplog.at_level(logging.WARNING, logger="cim.ingest.views_forms"):
        response = submit(visitor, sms_form, django_capture_on_commit_callbacks, website="http://spam.example")
    assert response.status_code == 200 and 'id="thanks"' in response.content.decode()
    assert not FormSubmission.objects.exists() and not Customer.objects.exists()
    assert "honeypot" in caplog.text


def test_rate_limit_per_ip_answers_429_in_the_visitors_language(
    visitor, sms_form, settings, django_capture_on_commit_callbacks
):
    settings.CIM_FORM_RATE_PER_IP = "2/h"
    for i in range(2):
        assert submit(visitor, sms_form, django_capture_on_commit_callbacks, phone=f"1390000000{i}").status_code == 302
    response = submit(visitor, sms_form, django_capture_on_commit_callbacks, phone="13900000009")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "提交次数过多" in response.content.decode()
    assert FormSubmission.objects.count() == 2
    # Another network is not affected.
    assert submit(visitor, sms_form, django_capture_on_commit_callbacks, ip="198.51.100.1").status_code == 302


def test_rate_limit_per_phone_across_networks(sms_form, settings, sms_outbox, django_capture_on_commit_callbacks):
    settings.CIM_FORM_RATE_PER_CONTACT = "2/h"
    visitor = Client(HTTP_ACCEPT_LANGUAGE="en")
    for i in range(2):
        assert submit(visitor, sms_form, django_capture_on_commit_callbacks, ip=f"198.51.100.{i}").status_code == 302
    # The same number written differently is the same phone.
    response = submit(visitor, sms_form, django_capture_on_commit_callbacks, ip="198.51.100.9", phone="+86 13800138000")
    assert response.status_code == 429
    assert "Too many messages were sent to this phone number" in response.content.decode()
    assert len(sms_outbox()) == 2

    # Asking for a new code counts against the same phone.
    step_url = reverse("ingest:form_step", args=[sms_form.slug, submission_step_token(FormSubmission.objects.first())])
    assert visitor.post(step_url, {"action": "resend", "channel": "sms"}).status_code == 429
    assert len(sms_outbox()) == 2


def test_invalid_input_gets_messages_per_field(visitor, sms_form, django_capture_on_commit_callbacks):
    response = submit(visitor, sms_form, django_capture_on_commit_callbacks, phone="12345", display_name="", consent="")
    page = response.content.decode()
    assert response.status_code == 200
    assert "此电话号码无效。" in page
    assert page.count("invalid-feedback") >= 3
    assert not FormSubmission.objects.exists()


def test_the_service_refuses_a_closed_form(sms_form):
    sms_form.is_active = False
    sms_form.save()
    with pytest.raises(ValidationError):
        form_submission_receive(
            form=sms_form,
            values={"display_name": "王", "phone": PHONE},
            consent=True,
            ip=None,
            user_agent="",
            language="en",
            site_url="http://testserver",
        )
    assert Client().get(f"/f/{sms_form.slug}/").status_code == 404


# --- matching existing customers


def test_a_verified_phone_of_one_customer_updates_it_instead_of_duplicating(
    visitor, admin_user, sms_form, sms_outbox, django_capture_on_commit_callbacks
):
    existing = make_customer(
        admin_user, display_name="王明", company="旧公司", phones=[{"number": "13800138000"}, {"number": "13911112222"}]
    )
    step_url = submit(visitor, sms_form, django_capture_on_commit_callbacks, company="新公司")["Location"]
    enter_code(visitor, step_url, last_code(sms_outbox), django_capture_on_commit_callbacks)

    assert Customer.objects.count() == 1
    existing.refresh_from_db()
    assert existing.display_name == "王明"  # the name on file is kept
    assert existing.company == "新公司"
    assert {(p.number, p.is_verified) for p in existing.phones.all()} == {
        (E164, True),
        ("+8613911112222", False),
    }
    assert FormSubmission.objects.get().customer == existing
    assert Consent.objects.get().customer == existing
    assert not DuplicateCandidate.objects.exists()


def test_an_unverified_form_never_updates_and_flags_the_lookalike(admin_user, django_capture_on_commit_callbacks):
    existing = make_customer(admin_user, display_name="王明", phones=[{"number": PHONE}])
    form = collection_form_create(data=form_input(slug="open", verify="none"), actor=admin_user)
    response = submit(Client(), form, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    new = Customer.objects.exclude(pk=existing.pk).get()
    assert not new.phones.get().is_verified
    candidate = DuplicateCandidate.objects.get()
    assert (candidate.customer, candidate.other) == (new, existing)
    assert candidate.reason in ("model", "same_phone") and candidate.detected_by == "form:open"
    existing.refresh_from_db()
    assert existing.display_name == "王明"


def test_a_verified_phone_shared_by_two_customers_creates_and_flags_both(
    visitor, admin_user, sms_form, sms_outbox, django_capture_on_commit_callbacks
):
    first = make_customer(admin_user, display_name="甲", phones=[{"number": PHONE}])
    second = make_customer(admin_user, display_name="乙", phones=[{"number": PHONE}])
    step_url = submit(visitor, sms_form, django_capture_on_commit_callbacks)["Location"]
    enter_code(visitor, step_url, last_code(sms_outbox), django_capture_on_commit_callbacks)
    new = Customer.objects.exclude(pk__in=[first.pk, second.pk]).get()
    flagged = DuplicateCandidate.objects.filter(customer=new).values_list("customer", "other")
    assert set(flagged) == {(new.pk, first.pk), (new.pk, second.pk)}


# --- pages


ADMIN_PAGES = ["form_list", "form_create", "form_edit", "form_submissions"]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_admin_pages_are_for_administrators(users, sms_form, role, name):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(users[role])
    args = [sms_form.pk] if name in ("form_edit", "form_submissions") else []
    response = client.get(reverse(f"ingest:{name}", args=args))
    assert response.status_code == (200 if role == Role.ADMINISTRATOR else 403)


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_admin_pages_need_a_login(sms_form, name):
    args = [sms_form.pk] if name in ("form_edit", "form_submissions") else []
    response = Client().get(reverse(f"ingest:{name}", args=args))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_public_pages_need_no_login_and_can_be_framed(sms_form, admin_user):
    response = Client().get(f"/f/{sms_form.slug}/")
    assert response.status_code == 200 and "X-Frame-Options" not in response
    assert "frame-ancestors" not in response["Content-Security-Policy"]
    assert "script-src 'self'" in response["Content-Security-Policy"]
    client = Client()
    client.force_login(admin_user)
    internal = client.get(reverse("ingest:form_list"))
    assert internal["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in internal["Content-Security-Policy"]


def test_public_page_follows_the_browser_and_switches_language(sms_form):
    zh = Client(HTTP_ACCEPT_LANGUAGE="zh-Hans").get(f"/f/{sms_form.slug}/").content.decode()
    assert '<html lang="zh-hans">' in zh and "春季展会登记" in zh and "手机号" in zh and "我同意接收" in zh
    en = Client(HTTP_ACCEPT_LANGUAGE="zh-Hans").get(f"/f/{sms_form.slug}/?lang=en")
    page = en.content.decode()
    assert en["Content-Language"] == "en"
    assert '<html lang="en">' in page and "Spring fair sign-up" in page and "Mobile phone" in page
    assert 'name="website"' in page  # the honeypot is in the page, hidden by CSS


def test_the_builder_creates_a_form_and_shows_errors_inline(admin_user, sms_form):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    data = {
        "name": "Newsletter",
        "slug": "spring-fair",
        "title_zh": "订阅",
        "title_en": "Newsletter",
        "verify": "email",
        "source_channel": "website",
        "consent_purpose": "marketing",
        "consent_version": "v1",
        "consent_text_zh": "我同意。",
        "consent_text_en": "I agree.",
        "is_active": "on",
        "display_name_include": "on",
        "display_name_required": "on",
        "display_name_label_zh": "姓名",
        "display_name_label_en": "Name",
        "email_include": "on",
        "email_required": "on",
    }
    response = client.post(reverse("ingest:form_create"), data)
    page = response.content.decode()
    assert response.status_code == 200 and "Another form already has this web address." in page
    assert CollectionForm.objects.count() == 1

    response = client.post(reverse("ingest:form_create"), {**data, "slug": "newsletter"})
    form = CollectionForm.objects.get(slug="newsletter")
    assert response.status_code == 302 and response["Location"] == reverse("ingest:form_edit", args=[form.pk])
    assert [f["field"] for f in form.fields] == ["display_name", "email"]
    assert form.fields[1]["label_zh"] == "邮箱"
    edit = client.get(response["Location"]).content.decode()
    assert "http://testserver/f/newsletter/" in edit and "&lt;iframe" in edit


def test_submissions_page_lists_with_a_fixed_number_of_queries(
    admin_user, sms_form, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    for i in range(5):
        submit(Client(), sms_form, django_capture_on_commit_callbacks, ip=f"198.51.100.{i}", phone=f"1390000000{i}")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    # 10: the page, plus the navigation bar's two counts (my follow-ups, unread notifications).
    with django_assert_max_num_queries(10):
        response = client.get(reverse("ingest:form_submissions", args=[sms_form.pk]))
    assert response.content.decode().count("13900000") == 5


# --- the CLI


def test_cli_lists_forms_as_json(sms_form):
    out = StringIO()
    call_command("forms", "list", "--json", stdout=out)
    report = json.loads(out.getvalue().strip().splitlines()[-1])
    assert report["forms"][0]["slug"] == "spring-fair"
    assert report["forms"][0]["path"] == "/f/spring-fair/"
    assert report["forms"][0]["submissions"] == 0
    out = StringIO()
    call_command("forms", "list", stdout=out)
    assert out.getvalue().strip().endswith("1 collection form(s).")


def test_behind_a_proxy_the_visitor_address_comes_from_the_configured_header(
    sms_form, settings, django_capture_on_commit_callbacks
):
    settings.CIM_CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("ingest:public_form", args=[sms_form.slug]),
            {"display_name": "王", "phone": PHONE, "consent": "on"},
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_REAL_IP="2001:db8::7",
        )
        client.post(
            reverse("ingest:public_form", args=[sms_form.slug]),
            {"display_name": "李", "phone": "13900000001", "consent": "on"},
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_REAL_IP="not an address",
        )
    assert list(FormSubmission.objects.order_by("id").values_list("ip", flat=True)) == ["2001:db8::7", "127.0.0.1"]


@pytest.mark.parametrize(
    "values",
    [
        {"birthday": "2020-13-45"},
        {"birthday": "2999-01-01"},
        {"gender": "robot"},
        {"email": "not-an-email"},
        {"display_name": "名" * 500},
        {"company": "\x00\x07"},
    ],
)
def test_odd_input_is_an_error_on_the_page_never_a_500(admin_user, django_capture_on_commit_callbacks, values):
    fields = [field_item(key, key == "display_name") for key in ("display_name", "phone", "email", "company")]
    fields += [field_item("gender", False), field_item("birthday", False)]
    form = collection_form_create(data=form_input(slug="all", fields=fields, verify="none"), actor=admin_user)
    response = submit(Client(HTTP_ACCEPT_LANGUAGE="en"), form, django_capture_on_commit_callbacks, **values)
    if "company" in values:  # nothing storable is left of it: the field is simply empty
        assert response.status_code == 302
    else:
        assert response.status_code == 200 and "invalid-feedback" in response.content.decode()
        assert not FormSubmission.objects.exists()


def test_garbage_codes_and_tokens_are_answered_politely(visitor, sms_form, django_capture_on_commit_callbacks):
    step_url = submit(visitor, sms_form, django_capture_on_commit_callbacks)["Location"]
    assert enter_code(visitor, step_url, "１２ ３４５６" * 10, django_capture_on_commit_callbacks).status_code == 200
    assert visitor.post(step_url, {"action": "resend", "channel": "fax"}).status_code == 302
    assert visitor.get(f"/f/{sms_form.slug}/s/{step_url.split('/')[-2]}x/").status_code == 404
    assert visitor.get(step_url.replace(sms_form.slug, "other")).status_code == 404
    assert visitor.post(f"/f/{sms_form.slug}/verify/abc:def/").status_code == 404
