"""Public collection forms (数据收集表单): building them, receiving submissions, verifying contacts, confirming.

A submission becomes customer data only once every contact its form verifies is verified (an SMS code, an
email link). Then a verified phone or email that belongs to exactly one customer updates that customer;
otherwise a customer is created, and customers sharing any of its phones or emails are flagged as possible
duplicates for a person to review, never merged.
"""

import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum
from functools import partial

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from cim.accounts.roles import Perm, has_perm
from cim.audit.services import audit_record
from cim.automation.events import event_publish
from cim.core.blind_index import blind_index
from cim.customers.choices import Gender, SourceChannel
from cim.customers.models import Customer
from cim.customers.schemas import CustomerInput, EmailIn, PhoneIn
from cim.customers.selectors import customer_ids_by_contact
from cim.customers.services import PermissionDenied, customer_create, customer_update
from cim.ingest.models import CollectionForm, FormSubmission, VerificationChallenge
from cim.ingest.sms import sms_sender
from cim.privacy.models import ConsentPurpose
from cim.privacy.services import consent_record
from cim.quality.models import DuplicateCandidate
from cim.quality.normalize import clean_paragraphs, clean_text, normalize_email, normalize_name, normalize_phone

logger = logging.getLogger(__name__)

CODE_TTL = timedelta(minutes=10)
LINK_TTL = timedelta(hours=24)  # the email link, and the verification page's address
MAX_ATTEMPTS = 5
MAX_CONSENT_TEXT = 5000
MAX_LABEL = 100
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?")
_CODE_SALT = "cim.ingest.collection.code"
_LINK_SALT = "cim.ingest.collection.email-link"
_STEP_SALT = "cim.ingest.collection.step"
# The form field whose value each verification channel proves.
CHANNEL_FIELD = {VerificationChallenge.Channel.SMS: "phone", VerificationChallenge.Channel.EMAIL: "email"}
DUPLICATE_REASON = {"phone": DuplicateCandidate.Reason.SAME_PHONE, "email": DuplicateCandidate.Reason.SAME_EMAIL}


@dataclass(frozen=True)
class FieldSpec:
    """A customer field a form can ask for."""

    key: str
    label: Promise  # the default label, in each language through the catalogue
    kind: str = "text"  # text | name | phone | email | gender | date
    max_length: int = 200


FIELD_SPECS: dict[str, FieldSpec] = {
    spec.key: spec
    for spec in (
        FieldSpec("display_name", pgettext_lazy("form field", "Name"), "name"),
        FieldSpec("phone", pgettext_lazy("form field", "Mobile phone"), "phone", 64),
        FieldSpec("email", pgettext_lazy("form field", "Email"), "email", 254),
        FieldSpec("company", pgettext_lazy("form field", "Company")),
        FieldSpec("job_title", pgettext_lazy("form field", "Job title"), max_length=100),
        FieldSpec("gender", pgettext_lazy("form field", "Gender"), "gender", 10),
        FieldSpec("birthday", pgettext_lazy("form field", "Birthday"), "date", 10),
    )
}
# Updated on a customer matched by a verified contact. The name is not: the one on file was curated by staff.
PROFILE_FIELDS = ("company", "job_title", "gender", "birthday")


def default_label(key: str, language: str) -> str:
    with translation.override(language):
        return str(FIELD_SPECS[key].label)


def field_item(key: str, required: bool) -> dict:
    """One entry of a form's field list, with the default labels."""
    return {
        "field": key,
        "required": required,
        "label_zh": default_label(key, "zh-hans"),
        "label_en": default_label(key, "en"),
    }


@dataclass
class FormInput:
    """Everything an administrator sets on a collection form."""

    slug: str
    name: str
    title_zh: str
    title_en: str
    consent_purpose: str
    consent_text_zh: str
    consent_text_en: str
    consent_version: str
    fields: list[dict] = field(default_factory=list)
    source_channel: str = SourceChannel.WEBSITE
    verify: str = CollectionForm.Verify.SMS
    is_active: bool = True


class Outcome(Enum):
    """What became of a code entered or an email link opened."""

    VERIFIED = "verified"
    WRONG = "wrong"
    EXPIRED = "expired"
    LOCKED = "locked"
    INVALID = "invalid"
    CLOSED = "closed"


# --- building forms


def _choice_error(values) -> list[str]:
    return [_("Select one of: %(choices)s.") % {"choices": ", ".join(values)}]


def _fields_clean(items, verify: str, errors: dict[str, list[str]]) -> list[dict]:
    """The field list in order, duplicates dropped and blank labels defaulted; problems under `fields`."""
    problems: list[str] = []
    cleaned: list[dict] = []
    for item in items if isinstance(items, list) else []:
        key = item.get("field") if isinstance(item, dict) else None
        if key not in FIELD_SPECS:
            problems.append(_("There is no field “%(field)s”.") % {"field": key})
            continue
        if any(c["field"] == key for c in cleaned):
            continue
        entry = field_item(key, bool(item.get("required")))
        for language in ("zh", "en"):
            label = clean_text(str(item.get(f"label_{language}") or ""))
            if len(label) > MAX_LABEL:
                problems.append(_("A label has at most %(n)s characters.") % {"n": MAX_LABEL})
            entry[f"label_{language}"] = label or entry[f"label_{language}"]
        cleaned.append(entry)
    asked = {c["field"] for c in cleaned}
    required = {c["field"] for c in cleaned if c["required"]}
    if "display_name" not in required:
        problems.append(_("A form asks for the name, as a required field."))
    if not asked & {"phone", "email"}:
        problems.append(_("A form asks for a mobile phone or an email address, so that returning people are known."))
    if "sms" in CollectionForm.channels_for(verify) and "phone" not in required:
        problems.append(_("SMS verification needs the mobile phone field, marked required."))
    if "email" in CollectionForm.channels_for(verify) and "email" not in required:
        problems.append(_("Email verification needs the email field, marked required."))
    if problems:
        errors["fields"] = problems
    return cleaned


def _form_clean(data: FormInput, current: CollectionForm | None) -> dict:
    """The model values of `data`; raises ValidationError with per-field messages."""
    errors: dict[str, list[str]] = {}
    values: dict = {"slug": clean_text(data.slug).lower()}
    if not _SLUG.fullmatch(values["slug"]):
        errors["slug"] = [
            _("Use 1 to 50 lower-case letters, digits and hyphens; start and end with a letter or digit.")
        ]
    elif CollectionForm.objects.filter(slug=values["slug"]).exclude(pk=current.pk if current else None).exists():
        errors["slug"] = [_("Another form already has this web address.")]
    for name, cleaner, limit in (
        ("name", clean_text, 100),
        ("title_zh", clean_text, 200),
        ("title_en", clean_text, 200),
        ("consent_version", clean_text, 30),
        ("consent_text_zh", clean_paragraphs, MAX_CONSENT_TEXT),
        ("consent_text_en", clean_paragraphs, MAX_CONSENT_TEXT),
    ):
        values[name] = cleaner(getattr(data, name))
        if not values[name]:
            errors[name] = [_("This field is required.")]
        elif len(values[name]) > limit:
            errors[name] = [_("Enter at most %(n)s characters.") % {"n": limit}]
    for name, choices in (
        ("consent_purpose", ConsentPurpose.values),
        ("source_channel", SourceChannel.values),
        ("verify", CollectionForm.Verify.values),
    ):
        values[name] = getattr(data, name)
        if values[name] not in choices:
            errors[name] = _choice_error(choices)
    values["fields"] = _fields_clean(data.fields, values["verify"], errors)
    values["is_active"] = bool(data.is_active)
    text_changed = current is not None and (
        (current.consent_text_zh, current.consent_text_en) != (values["consent_text_zh"], values["consent_text_en"])
    )
    if text_changed and values["consent_version"] == current.consent_version and "consent_version" not in errors:
        # Each consent given names the version it was given under; two texts under one version would blur that.
        errors["consent_version"] = [_("The consent text changed: give it a new version.")]
    if errors:
        raise ValidationError(errors)
    return values


def _require_manager(actor) -> None:
    if actor is not None and not has_perm(actor, Perm.SETTINGS_MANAGE):
        raise PermissionDenied(Perm.SETTINGS_MANAGE)


def collection_form_create(*, data: FormInput, actor) -> CollectionForm:
    """A new collection form. Raises ValidationError with per-field messages."""
    _require_manager(actor)
    values = _form_clean(data, None)
    with transaction.atomic():
        form = CollectionForm.objects.create(
            **values, created_by=actor if actor is not None and actor.is_authenticated else None
        )
        audit_record(actor=actor, action="collection_form.create", target=form, fields=sorted(values))
    return form


def collection_form_update(*, form: CollectionForm, data: FormInput, actor) -> CollectionForm:
    """Change a form's settings; earlier submissions keep the consent text they were shown."""
    _require_manager(actor)
    values = _form_clean(data, form)
    changes = {name: (getattr(form, name), value) for name, value in values.items() if getattr(form, name) != value}
    if not changes:
        return form
    with transaction.atomic():
        for name, (_old, new) in changes.items():
            setattr(form, name, new)
        form.save()
        audit_record(actor=actor, action="collection_form.update", target=form, changes=changes)
    return form


# --- receiving submissions


def _field_value(spec: FieldSpec, text: str) -> str:
    if spec.kind == "name":
        return normalize_name(text)
    if spec.kind == "phone":
        return normalize_phone(text)
    if spec.kind == "email":
        return normalize_email(text)
    if spec.kind == "gender":
        if text not in Gender.values:
            raise ValidationError(_choice_error([g for g in Gender.values if g]))
        return text
    if spec.kind == "date":
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValidationError(_("Enter a date as YYYY-MM-DD.")) from None
        if not date(1900, 1, 1) <= day <= timezone.localdate():
            raise ValidationError(_("Enter a date between 1900 and today."))
        return day.isoformat()
    return text


def form_submission_clean(*, form: CollectionForm, values, consent: bool = True) -> tuple[dict, dict]:
    """(normalised values of the form's fields, per-field errors in the active language). Writes nothing.

    Phones come back in E.164 and emails lower-cased, the shape their keyed hashes are made of.
    """
    cleaned: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for item in form.fields:
        key = item["field"]
        spec = FIELD_SPECS[key]
        raw = values.get(key)
        text = clean_text(raw if isinstance(raw, str) else "")
        if not text:
            if item["required"]:
                errors[key] = [_("This field is required.")]
            continue
        if len(text) > spec.max_length:
            errors[key] = [_("Enter at most %(n)s characters.") % {"n": spec.max_length}]
            continue
        try:
            cleaned[key] = _field_value(spec, text)
        except ValidationError as error:
            errors[key] = error.messages
    if not consent:
        errors["consent"] = [_("Tick the box to give your consent: without it nothing is stored.")]
    return cleaned, errors


def form_submission_receive(
    *, form: CollectionForm, values, consent: bool, ip: str | None, user_agent: str, language: str, site_url: str
) -> FormSubmission:
    """Store what a visitor sent and send its verifications; confirm it at once when the form verifies nothing.

    `site_url` (scheme and host) starts the email link. Raises ValidationError with per-field messages.
    """
    if not form.is_active:
        raise ValidationError(_("This form is closed."))
    cleaned, errors = form_submission_clean(form=form, values=values, consent=consent)
    if errors:
        raise ValidationError(errors)
    # As entered (spacing tidied, nothing that a database refuses), so the record shows what the visitor typed.
    raw = {item["field"]: clean_text(values.get(item["field"]) or "") for item in form.fields}
    with transaction.atomic():
        submission = FormSubmission.objects.create(
            form=form,
            raw={**raw, "consent": True},
            consent_text=form.consent_text(language),
            consent_version=form.consent_version,
            language=language,
            ip=ip,
            user_agent=user_agent[: FormSubmission._meta.get_field("user_agent").max_length],
        )
        audit_record(
            actor=None, action="form_submission.receive", target=submission, fields=sorted(cleaned), note=form.slug
        )
        for channel in form.channels:
            challenge = VerificationChallenge(
                submission=submission,
                channel=channel,
                target_hash=blind_index(CHANNEL_FIELD[channel], cleaned[CHANNEL_FIELD[channel]]),
            )
            _issue(challenge, cleaned[CHANNEL_FIELD[channel]], site_url)
        if not form.channels:
            _confirm(submission, verified=set())
    return submission


# --- verifying


def _secret_hash(challenge: VerificationChallenge, secret: str) -> str:
    # Keyed with the secret key, which is kept outside the database: a stolen table does not reveal codes.
    message = f"{challenge.submission_id}:{challenge.channel}:{secret}"
    return salted_hmac(_CODE_SALT, message, algorithm="sha256").hexdigest()


def _issue(challenge: VerificationChallenge, target: str, site_url: str) -> None:
    """Give the challenge a new code (SMS) or link (email), replacing any earlier one, and send it on commit."""
    sms = challenge.channel == VerificationChallenge.Channel.SMS
    secret = f"{secrets.randbelow(10**6):06d}" if sms else secrets.token_urlsafe(16)
    challenge.code_hash = _secret_hash(challenge, secret)
    challenge.expires_at = timezone.now() + (CODE_TTL if sms else LINK_TTL)
    challenge.save()
    transaction.on_commit(partial(_deliver, challenge=challenge, target=target, secret=secret, site_url=site_url))


def _deliver(*, challenge: VerificationChallenge, target: str, secret: str, site_url: str) -> None:
    """Send a code or a link. A failure is logged, not raised: the submission is kept and the visitor can ask again."""
    submission = challenge.submission
    language = submission.language or settings.LANGUAGE_CODE
    try:
        with translation.override(language):
            title = submission.form.title(language)
            if challenge.channel == VerificationChallenge.Channel.SMS:
                text = _("Your verification code for “%(title)s” is %(code)s. It expires in %(minutes)s minutes.")
                minutes = int(CODE_TTL.total_seconds() // 60)
                sms_sender().send(target, text % {"title": title, "code": secret, "minutes": minutes})
            else:
                token = signing.dumps({"c": challenge.pk, "n": secret}, salt=_LINK_SALT)
                path = reverse("ingest:form_email_link", kwargs={"slug": submission.form.slug, "token": token})
                body = _(
                    "Please confirm your email address for “%(title)s” by opening this link within %(hours)s hours:"
                    "\n\n%(link)s\n\nIf you did not fill in this form, ignore this email: nothing is kept."
                ) % {"title": title, "hours": int(LINK_TTL.total_seconds() // 3600), "link": site_url + path}
                send_mail(_("Confirm your email address"), body, None, [target])
    except Exception:
        logger.exception("collection form: the %s of submission %s could not be sent", challenge.channel, submission.pk)


def verification_resend(*, submission: FormSubmission, channel: str, site_url: str) -> VerificationChallenge | None:
    """A new code or link for a challenge still open, replacing the old one. Wrong attempts so far still count.

    None when there is nothing to resend (verified already, or the submission is no longer pending).
    """
    with transaction.atomic():
        challenge = (
            VerificationChallenge.objects.select_for_update()
            .select_related("submission__form")
            .filter(submission=submission, channel=channel, verified_at__isnull=True)
            .first()
        )
        if challenge is None or challenge.submission.status != FormSubmission.Status.PENDING:
            return None
        cleaned, _errors = form_submission_clean(form=challenge.submission.form, values=challenge.submission.raw)
        if CHANNEL_FIELD[channel] not in cleaned:  # the form no longer asks for it
            return None
        _issue(challenge, cleaned[CHANNEL_FIELD[channel]], site_url)
        audit_record(actor=None, action="verification.resend", target=challenge, fields=["code_hash", "expires_at"])
    return challenge


def _verified(challenge: VerificationChallenge) -> None:
    challenge.verified_at = timezone.now()
    challenge.save(update_fields=["verified_at"])
    audit_record(actor=None, action="verification.verify", target=challenge, fields=["verified_at"])
    submission = challenge.submission
    # The submission's own challenges, not the form's current setting, which may have changed since.
    challenges = list(submission.challenges.all())
    if all(c.verified_at for c in challenges):
        _confirm(submission, verified={CHANNEL_FIELD[c.channel] for c in challenges})


def verification_check_code(*, submission: FormSubmission, code: str) -> Outcome:
    """Check an SMS code. The fifth wrong code rejects the submission; an expired code is not counted."""
    code = re.sub(r"\s", "", clean_text(code))
    with transaction.atomic():
        challenge = (
            VerificationChallenge.objects.select_for_update()
            .select_related("submission__form")
            .filter(submission=submission, channel=VerificationChallenge.Channel.SMS)
            .first()
        )
        if challenge is None or challenge.submission.status != FormSubmission.Status.PENDING:
            return Outcome.CLOSED
        if challenge.verified_at:
            return Outcome.VERIFIED
        if timezone.now() >= challenge.expires_at:
            return Outcome.EXPIRED
        if constant_time_compare(challenge.code_hash, _secret_hash(challenge, code)):
            _verified(challenge)
            return Outcome.VERIFIED
        challenge.attempts += 1
        challenge.save(update_fields=["attempts"])
        audit_record(actor=None, action="verification.fail", target=challenge, fields=["attempts"])
        if challenge.attempts < MAX_ATTEMPTS:
            return Outcome.WRONG
        rejected = challenge.submission
        rejected.status = FormSubmission.Status.REJECTED
        rejected.save(update_fields=["status"])
        audit_record(
            actor=None, action="form_submission.reject", target=rejected, fields=["status"], note="too many wrong codes"
        )
        return Outcome.LOCKED


def _link_payload(token: str) -> tuple[int, str] | Outcome:
    try:
        payload = signing.loads(token, salt=_LINK_SALT, max_age=LINK_TTL)
    except signing.SignatureExpired:
        return Outcome.EXPIRED
    except signing.BadSignature:
        return Outcome.INVALID
    if not isinstance(payload, dict) or not isinstance(payload.get("c"), int) or not isinstance(payload.get("n"), str):
        return Outcome.INVALID
    return payload["c"], payload["n"]


def email_link_submission(token: str) -> tuple[FormSubmission | None, Outcome | None]:
    """(the submission an email link belongs to, None), or (None, why not: expired or invalid). Writes nothing."""
    payload = _link_payload(token)
    if isinstance(payload, Outcome):
        return None, payload
    challenge = VerificationChallenge.objects.select_related("submission__form").filter(pk=payload[0]).first()
    return (challenge.submission, None) if challenge else (None, Outcome.INVALID)


def verification_confirm_link(*, token: str) -> tuple[FormSubmission | None, Outcome]:
    """Verify the email address an emailed link was sent to. A newer link makes the older ones invalid."""
    payload = _link_payload(token)
    if isinstance(payload, Outcome):
        return None, payload
    challenge_id, nonce = payload
    with transaction.atomic():
        challenge = (
            VerificationChallenge.objects.select_for_update()
            .select_related("submission__form")
            .filter(pk=challenge_id, channel=VerificationChallenge.Channel.EMAIL)
            .first()
        )
        if challenge is None:
            return None, Outcome.INVALID
        submission = challenge.submission
        if challenge.verified_at:
            return submission, Outcome.VERIFIED
        if not constant_time_compare(challenge.code_hash, _secret_hash(challenge, nonce)):
            return submission, Outcome.INVALID
        if submission.status != FormSubmission.Status.PENDING:
            return submission, Outcome.CLOSED
        if timezone.now() >= challenge.expires_at:
            return submission, Outcome.EXPIRED
        _verified(challenge)
    return submission, Outcome.VERIFIED


def submission_step_token(submission: FormSubmission) -> str:
    """The signed token in the address of a submission's verification page."""
    return signing.dumps(submission.pk, salt=_STEP_SALT)


def submission_from_step_token(token: str) -> FormSubmission | None:
    try:
        pk = signing.loads(token, salt=_STEP_SALT, max_age=LINK_TTL)
    except signing.BadSignature:
        return None
    return FormSubmission.objects.select_related("form").filter(pk=pk).first() if isinstance(pk, int) else None


# --- confirming: the submission becomes customer data


def _customers_with(kind: str, value: str) -> set[int]:
    """The customers holding this phone (E.164) or email."""
    return customer_ids_by_contact(kind=kind, values=[value]).get(value, set())


def _phones(customer: Customer | None, raw: str, e164: str, verified: bool) -> list[PhoneIn]:
    """The customer's phones (sent whole: the service replaces the list) plus this one, verified when it was."""
    rows, found = [], False
    for phone in customer.phones.all() if customer else []:
        same = phone.number == e164
        found = found or same
        rows.append(
            PhoneIn(
                number=phone.raw or phone.number,
                kind=phone.kind,
                is_primary=phone.is_primary,
                is_verified=phone.is_verified or (same and verified),
            )
        )
    return rows if found else [*rows, PhoneIn(number=raw, is_verified=verified)]


def _emails(customer: Customer | None, raw: str, address: str, verified: bool) -> list[EmailIn]:
    rows, found = [], False
    for email in customer.emails.all() if customer else []:
        same = email.address == address
        found = found or same
        rows.append(
            EmailIn(
                address=email.raw or email.address,
                kind=email.kind,
                is_primary=email.is_primary,
                is_verified=email.is_verified or (same and verified),
            )
        )
    return rows if found else [*rows, EmailIn(address=raw, is_verified=verified)]


def _customer_input(submission: FormSubmission, cleaned: dict, verified: set[str], customer: Customer | None):
    values: dict = {name: cleaned[name] for name in PROFILE_FIELDS if name in cleaned}
    if customer is None:
        values["display_name"] = cleaned.get("display_name", "")
        values["source_channel"] = submission.form.source_channel
    if "phone" in cleaned:
        values["phones"] = _phones(customer, submission.raw["phone"], cleaned["phone"], "phone" in verified)
    if "email" in cleaned:
        values["emails"] = _emails(customer, submission.raw["email"], cleaned["email"], "email" in verified)
    return CustomerInput(**values)


def _confirm(submission: FormSubmission, *, verified: set[str]) -> None:
    """Create or update the customer, flag lookalikes, record the consent (inside the caller's transaction)."""
    form = submission.form
    cleaned, _errors = form_submission_clean(form=form, values=submission.raw)
    holders = {kind: _customers_with(kind, cleaned[kind]) for kind in ("phone", "email") if kind in cleaned}
    matched = set().union(*(holders[kind] for kind in verified if kind in holders))
    try:
        with transaction.atomic():
            if len(matched) == 1:
                customer = Customer.objects.get(pk=matched.pop())
                customer_update(
                    customer=customer, data=_customer_input(submission, cleaned, verified, customer), actor=None
                )
            else:
                customer = customer_create(
                    data=_customer_input(submission, cleaned, verified, None), actor=None, channel=f"form:{form.slug}"
                )
    except ValidationError as error:
        # The form's rules changed since it was sent, or the matched customer cannot take it: kept, for staff.
        submission.status = FormSubmission.Status.REJECTED
        submission.save(update_fields=["status"])
        note = "customer data not accepted: " + ", ".join(sorted(error.message_dict))
        audit_record(actor=None, action="form_submission.reject", target=submission, fields=["status"], note=note)
        return
    DuplicateCandidate.objects.bulk_create(
        [
            DuplicateCandidate(
                customer=customer, other_id=other, reason=DUPLICATE_REASON[kind], detected_by=f"form:{form.slug}"
            )
            for kind, others in holders.items()
            for other in sorted(others - {customer.pk})
        ],
        ignore_conflicts=True,
    )
    submission.status = FormSubmission.Status.CONFIRMED
    submission.customer = customer
    submission.confirmed_at = timezone.now()
    submission.save(update_fields=["status", "customer", "confirmed_at"])
    consent_record(
        customer=customer,
        purpose=form.consent_purpose,
        text=submission.consent_text,
        text_version=submission.consent_version,
        language=submission.language,
        channel=form.source_channel,
        ip=submission.ip,
        user_agent=submission.user_agent,
        submission=submission,
        actor=None,
    )
    audit_record(
        actor=None,
        action="form_submission.confirm",
        target=submission,
        fields=["status", "customer"],
        note=f"customer {customer.pk}",
    )
    event_publish("form.submitted", customer_id=customer.pk, data={"form": form.pk, "submission": submission.pk})
