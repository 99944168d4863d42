"""Satisfaction surveys: sending a CSAT or NPS question with a signed, single-use link, and taking the answer.

The link carries the survey's id and a random nonce, signed with the secret key under a salt of its own, so it
cannot be forged or altered; the database keeps only the nonce's SHA-256, so only the newest link of a survey
works and a copy of the table reveals none. The answer is recorded by one conditional UPDATE (still unanswered,
not expired, same nonce), so a double submit, or two tabs, can record it only once.
"""

import enum
import hashlib
import logging
import secrets
from functools import partial

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm, has_perm
from cim.audit.services import audit_record
from cim.automation.events import event_publish
from cim.customers.models import Customer
from cim.customers.services import PermissionDenied
from cim.ingest.sms import sms_sender
from cim.service import conf
from cim.service.choices import SCORE_RANGE, SurveyChannel, SurveyKind
from cim.service.models import Survey, Ticket
from cim.service.text import clean_body

logger = logging.getLogger(__name__)

_SALT = "cim.service.survey-link"
MAX_COMMENT = 2000


class Outcome(enum.Enum):
    ANSWERED = "answered"
    INVALID = "invalid"  # forged, altered, replaced by a newer link, or of a survey that no longer exists
    EXPIRED = "expired"
    USED = "used"


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def survey_token(survey: Survey, nonce: str) -> str:
    return signing.dumps({"s": survey.pk, "n": nonce}, salt=_SALT)


def survey_url(token: str) -> str:
    """The public address of a survey link, on CIM_SITE_URL."""
    return conf.site_url() + reverse("service:survey", kwargs={"token": token})


def _contact(customer: Customer, channel: str) -> str | None:
    contacts = customer.emails if channel == SurveyChannel.EMAIL else customer.phones
    found = contacts.filter(is_primary=True).first()
    if found is None:
        return None
    return found.address if channel == SurveyChannel.EMAIL else found.number


def survey_send(
    *,
    customer: Customer,
    kind: str,
    channel: str,
    actor,
    ticket: Ticket | None = None,
    order_id: int | None = None,
) -> Survey:
    """Send a CSAT or NPS survey to the customer's primary email or phone, about a ticket, an order or neither.

    A ticket or an order is asked once per kind: sending again renews the link of the unanswered survey (the old
    link stops working) and refuses an answered one.
    """
    if actor is not None and not has_perm(actor, Perm.SURVEY_MANAGE):
        raise PermissionDenied(Perm.SURVEY_MANAGE)
    if kind not in SurveyKind.values:
        raise ValidationError({"kind": [_("Select a valid choice.")]})
    if channel not in SurveyChannel.values:
        raise ValidationError({"channel": [_("Select a valid choice.")]})
    if ticket is not None and ticket.customer_id != customer.pk:
        raise ValidationError({"ticket": [_("This ticket is another customer's.")]})
    target = _contact(customer, channel)
    if target is None:
        message = (
            _("This customer has no primary email address.")
            if channel == SurveyChannel.EMAIL
            else _("This customer has no primary phone number.")
        )
        raise ValidationError({"channel": [message]})
    nonce = secrets.token_urlsafe(12)
    now = timezone.now()
    with transaction.atomic():
        subject = {"ticket": ticket} if ticket is not None else {"order_id": order_id} if order_id else None
        survey = Survey.objects.select_for_update().filter(kind=kind, **subject).first() if subject else None
        if survey is not None and survey.answered_at is not None:
            raise ValidationError({"kind": [_("The customer has already answered this survey.")]})
        if survey is None:
            survey = Survey(kind=kind, customer=customer, ticket=ticket, order_id=order_id)
        survey.channel = channel
        survey.team = ticket.team if ticket is not None else None
        survey.token_digest = _digest(nonce)
        survey.created_by = actor if actor is not None and actor.is_authenticated else None
        survey.sent_at = None
        survey.expires_at = now + conf.survey_valid_for()
        renewed = survey.pk is not None
        survey.save()
        audit_record(
            actor=actor,
            action="survey.renew" if renewed else "survey.send",
            target=survey,
            fields=["channel", "token_digest", "expires_at"],
        )
        transaction.on_commit(
            partial(_deliver, survey_id=survey.pk, channel=channel, target=target, token=survey_token(survey, nonce))
        )
    return survey


def survey_send_after(*, ticket: Ticket, actor, kind: str = SurveyKind.CSAT) -> Survey | None:
    """The automatic survey after a ticket is resolved: by email, else by SMS; None when switched off
    (CIM_SURVEY_AFTER_TICKET), already sent for this ticket, or the customer has neither contact."""
    if not conf.survey_after_ticket() or Survey.objects.filter(ticket=ticket, kind=kind).exists():
        return None
    for channel in (SurveyChannel.EMAIL, SurveyChannel.SMS):
        if _contact(ticket.customer, channel) is not None:
            return survey_send(customer=ticket.customer, kind=kind, channel=channel, ticket=ticket, actor=None)
    return None


def survey_send_after_order(*, customer: Customer, order_id: int) -> Survey | None:
    """The automatic survey after an order is paid (CIM_SURVEY_AFTER_ORDER): by email, else by SMS; None when
    switched off, already sent for this order, or the customer has neither contact."""
    kind = conf.survey_after_order()
    if not kind or Survey.objects.filter(order_id=order_id, kind=kind).exists():
        return None
    for channel in (SurveyChannel.EMAIL, SurveyChannel.SMS):
        if _contact(customer, channel) is not None:
            return survey_send(customer=customer, kind=kind, channel=channel, order_id=order_id, actor=None)
    return None


def _deliver(*, survey_id: int, channel: str, target: str, token: str) -> None:
    """Send the link; record when it went out. A failure is logged, not raised: the survey can be sent again."""
    link = survey_url(token)
    try:
        with translation.override(settings.LANGUAGE_CODE):
            if channel == SurveyChannel.SMS:
                sms_sender().send(target, _("How did we do? Tell us in one tap: %(link)s") % {"link": link})
            else:
                body = _(
                    "Thank you for contacting us. How did we do? Your answer takes one tap and helps us serve you "
                    "better:\n\n%(link)s\n\nThe link works once and expires in %(days)s days."
                ) % {"link": link, "days": conf.survey_valid_for().days}
                send_mail(_("How did we do?"), body, None, [target])
    except Exception:
        logger.exception("survey %s: the link could not be sent by %s", survey_id, channel)
        return
    Survey.objects.filter(pk=survey_id).update(sent_at=timezone.now())


def _survey_of(token: str) -> Survey | None:
    """The survey a well-signed link names, when its nonce is the survey's current one."""
    try:
        payload = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), int) or not isinstance(payload.get("n"), str):
        return None
    survey = Survey.objects.select_related("ticket").filter(pk=payload["s"]).first()
    if survey is None or not constant_time_compare(survey.token_digest, _digest(payload["n"])):
        return None
    return survey


def _problem(survey: Survey | None) -> Outcome | None:
    if survey is None:
        return Outcome.INVALID
    if survey.answered_at is not None:
        return Outcome.USED
    if survey.expires_at <= timezone.now():
        return Outcome.EXPIRED
    return None


def survey_from_token(token: str) -> tuple[Survey | None, Outcome | None]:
    """(the survey, None) when the link can be answered, else (the survey or None, why not). Writes nothing."""
    survey = _survey_of(token)
    return survey, _problem(survey)


def survey_answer(*, token: str, score: int, comment: str = "", ip: str | None = None) -> tuple[Survey | None, Outcome]:
    """Record the answer of a survey link, once. Raises ValidationError for a score out of the survey's range."""
    survey = _survey_of(token)
    if (problem := _problem(survey)) is not None:
        return survey, problem
    low, high = SCORE_RANGE[SurveyKind(survey.kind)]
    if not isinstance(score, int) or isinstance(score, bool) or not low <= score <= high:
        raise ValidationError({"score": [_("Choose a score from %(low)s to %(high)s.") % {"low": low, "high": high}]})
    comment = clean_body(comment)[:MAX_COMMENT]
    now = timezone.now()
    with transaction.atomic():
        recorded = Survey.objects.filter(
            pk=survey.pk, token_digest=survey.token_digest, answered_at__isnull=True, expires_at__gt=now
        ).update(answered_at=now, score=score, comment=comment, answer_ip=ip)
        if recorded:
            audit_record(actor=None, action="survey.answer", target=survey, fields=["answered_at", "score", "comment"])
            event_publish("survey.answered", customer_id=survey.customer_id, data={"survey": survey.pk, "score": score})
    survey.refresh_from_db()
    if not recorded:
        return survey, _problem(survey) or Outcome.INVALID
    return survey, Outcome.ANSWERED
