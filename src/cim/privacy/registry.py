"""The PI registry: which fields hold personal information, and which of it is sensitive.

Every feature that reads or removes personal data (masking, encryption at rest, exports, data-subject requests,
erasure, webhooks) asks this registry, so a new field cannot escape them: a test fails for any field of a
personal-data model that is neither registered here nor listed as not personal.

Two levels:
- PERSONAL: identifies or describes a person (names, gender, job title). Shown to roles that see the customer.
- SENSITIVE: masked for roles without the right to see it, encrypted at rest, never a plaintext key. This is
  CIM's protected set (phone, email, ID number, address, birthday); `art28` marks the subset that is sensitive
  personal information under PIPL Art. 28 (specific identity, whereabouts), for which separate consent
  (单独同意) is needed. All personal information of a minor under 14 is sensitive under Art. 28 too.
"""

import datetime
from dataclasses import dataclass
from functools import cache

from django.db import models
from django.utils.translation import gettext_lazy as _

MINOR_AGE = 14


class Level(models.TextChoices):
    PERSONAL = "personal", _("Personal")
    SENSITIVE = "sensitive", _("Sensitive")


class MaskKind(models.TextChoices):
    """How a value is shown to a role that may not see it: `138****5678`, `z***@qq.com`."""

    PHONE = "phone", _("Phone number")
    EMAIL = "email", _("Email address")
    ID_NUMBER = "id_number", _("ID number")
    ADDRESS = "address", _("Address")
    DATE = "date", _("Date")
    NAME = "name", _("Name")
    TEXT = "text", _("Text")


@dataclass(frozen=True)
class PersonalField:
    model: str  # app_label.model_name
    field: str
    level: str
    mask: str
    art28: bool = False

    @property
    def sensitive(self) -> bool:
        return self.level == Level.SENSITIVE


_P, _S = Level.PERSONAL, Level.SENSITIVE

REGISTRY: tuple[PersonalField, ...] = (
    PersonalField("customers.customer", "display_name", _P, MaskKind.NAME),
    PersonalField("customers.customer", "match_name", _P, MaskKind.NAME),
    PersonalField("customers.customer", "family_name", _P, MaskKind.NAME),
    PersonalField("customers.customer", "given_name", _P, MaskKind.NAME),
    PersonalField("customers.customer", "alias", _P, MaskKind.NAME),
    PersonalField("customers.customer", "english_name", _P, MaskKind.NAME),
    PersonalField("customers.customer", "gender", _P, MaskKind.TEXT),
    PersonalField("customers.customer", "job_title", _P, MaskKind.TEXT),
    PersonalField("customers.customer", "notes", _P, MaskKind.TEXT),
    PersonalField("customers.customer", "custom_fields", _P, MaskKind.TEXT),
    PersonalField("customers.customer", "birthday", _S, MaskKind.DATE),
    PersonalField("customers.customer", "id_number", _S, MaskKind.ID_NUMBER, art28=True),
    # The birthday's year and month, kept in plaintext so birthday months and age ranges stay queries
    # (docs/encryption.md): personal, not sensitive; erasure clears them with the birthday.
    PersonalField("customers.customer", "birth_year", _P, MaskKind.TEXT),
    PersonalField("customers.customer", "birth_month", _P, MaskKind.TEXT),
    PersonalField("customers.phone", "number", _S, MaskKind.PHONE),
    PersonalField("customers.phone", "raw", _S, MaskKind.PHONE),
    PersonalField("customers.email", "address", _S, MaskKind.EMAIL),
    PersonalField("customers.email", "raw", _S, MaskKind.EMAIL),
    PersonalField("customers.address", "street", _S, MaskKind.ADDRESS, art28=True),
    PersonalField("customers.address", "postal_code", _P, MaskKind.TEXT),
    PersonalField("customers.externalid", "value", _P, MaskKind.TEXT),
    # What else is about a customer: notes and messages in free text, what their browser and forms sent.
    PersonalField("activities.interaction", "subject", _P, MaskKind.TEXT),
    PersonalField("activities.interaction", "body", _P, MaskKind.TEXT),
    PersonalField("activities.interaction", "contacts", _P, MaskKind.NAME),
    PersonalField("activities.attachment", "file", _P, MaskKind.TEXT),
    PersonalField("activities.attachment", "filename", _P, MaskKind.TEXT),
    PersonalField("activities.followup", "title", _P, MaskKind.TEXT),
    PersonalField("activities.followup", "notes", _P, MaskKind.TEXT),
    PersonalField("activities.behaviourevent", "properties", _P, MaskKind.TEXT),
    PersonalField("activities.behaviourevent", "context", _P, MaskKind.TEXT),
    PersonalField("activities.behaviourevent", "user_id", _P, MaskKind.TEXT),
    PersonalField("activities.behaviourevent", "anonymous_id", _P, MaskKind.TEXT),
    PersonalField("activities.behaviourevent", "trait_errors", _P, MaskKind.TEXT),
    PersonalField("activities.anonymouslink", "anonymous_id", _P, MaskKind.TEXT),
    PersonalField("ingest.formsubmission", "raw", _S, MaskKind.TEXT),
    PersonalField("ingest.formsubmission", "ip", _P, MaskKind.TEXT),
    PersonalField("ingest.formsubmission", "user_agent", _P, MaskKind.TEXT),
    PersonalField("service.ticket", "subject", _P, MaskKind.TEXT),
    PersonalField("service.ticket", "description", _P, MaskKind.TEXT),
    PersonalField("service.ticketmessage", "body", _P, MaskKind.TEXT),
    PersonalField("service.survey", "comment", _P, MaskKind.TEXT),
    PersonalField("service.survey", "answer_ip", _P, MaskKind.TEXT),
    PersonalField("analytics.feedbacksentiment", "keywords", _P, MaskKind.TEXT),
    PersonalField("privacy.consent", "ip", _P, MaskKind.TEXT),
    PersonalField("privacy.consent", "user_agent", _P, MaskKind.TEXT),
    PersonalField("privacy.datasubjectrequest", "details", _P, MaskKind.TEXT),
    # A merge keeps the records as they were, to be undone: copies of every personal field.
    PersonalField("quality.mergerecord", "customers_before", _S, MaskKind.TEXT),
    PersonalField("quality.mergerecord", "moved", _S, MaskKind.TEXT),
    PersonalField("quality.mergerecord", "removed", _S, MaskKind.TEXT),
    PersonalField("quality.mergerecord", "provenance", _P, MaskKind.TEXT),
    # What a sender added to a message's template context, and what a provider answered (it may quote an address).
    PersonalField("automation.message", "context", _P, MaskKind.TEXT),
    PersonalField("automation.message", "error", _P, MaskKind.TEXT),
    # Webhook payloads carry the customer as the endpoint's scope sees them; receivers' answers may echo it.
    PersonalField("automation.webhookdelivery", "payload", _S, MaskKind.TEXT),
    PersonalField("automation.webhookdelivery", "log", _P, MaskKind.TEXT),
    # A gift says something about the person (what they were given, why): personal, cleared on erasure.
    PersonalField("automation.gift", "description", _P, MaskKind.TEXT),
    PersonalField("automation.gift", "notes", _P, MaskKind.TEXT),
)

# The customer fields a message template may use (`{{ customer.given_name }}`): personal but never sensitive, so a
# template cannot put a phone number, an ID number or a birthday into a message (docs/messages.md).
MESSAGE_CONTEXT_FIELDS: tuple[str, ...] = (
    "number",
    "display_name",
    "family_name",
    "given_name",
    "english_name",
    "gender",
    "company",
    "job_title",
)

# Fields of the models above that are not personal: keys, codes, choices about the relationship, bookkeeping.
NOT_PERSONAL: dict[str, frozenset[str]] = {
    "customers.customer": frozenset(
        {
            "id",
            "number",
            "kind",
            "company",
            "uscc",
            "industry",
            "company_size",
            "customer_type",
            "source_channel",
            "value_tier",
            "region",
            "lifecycle_stage",
            "status",
            "owner",
            "team",
            "tags",
            "created_at",
            "updated_at",
            "created_by",
            "reviewed_at",
            "merged_into",
            # A keyed hash of the ID number, like the contacts' match keys.
            "id_number_key",
            # Keyed hashes of the birthday's month-day (solar, lunar); erasure clears them with the birthday.
            "birthday_md_key",
            "lunar_birthday_md_key",
            # A care preference about the relationship (greet on the lunar birthday), not about the person.
            "keeps_lunar_birthday",
        }
    ),
    "customers.phone": frozenset({"id", "customer", "kind", "is_primary", "is_verified", "created_at", "match_key"}),
    "customers.email": frozenset({"id", "customer", "kind", "is_primary", "is_verified", "created_at", "match_key"}),
    "customers.address": frozenset(
        {"id", "customer", "kind", "is_primary", "is_verified", "created_at", "country", "province", "city"}
        | {"district", "adcode"}
    ),
    "customers.externalid": frozenset({"created_at", "customer", "id", "system"}),
    "activities.interaction": frozenset(
        {"created_at", "customer", "direction", "duration_minutes", "id", "import_job", "kind", "logged_by"}
        | {"occurred_at", "outcome", "staff"}
    ),
    "activities.attachment": frozenset(
        {"content_type", "created_at", "id", "interaction", "sha256", "size", "uploaded_by"}
    ),
    "activities.followup": frozenset(
        {"created_at", "created_by", "customer", "done_at", "due_at", "id", "interaction", "owner", "plan"}
        | {"priority", "remind_at", "reminded_at", "status"}
    ),
    "activities.behaviourevent": frozenset(
        {"channel", "customer", "id", "message_id", "name", "occurred_at", "received_at", "source", "type"}
    ),
    "activities.anonymouslink": frozenset({"created_at", "customer", "id", "source"}),
    "activities.touchpoint": frozenset(
        {"at", "channel", "customer", "id", "kind", "source", "utm_campaign", "utm_medium", "utm_source"}
    ),
    "activities.order": frozenset(
        {"cancelled_at", "channel", "created_at", "created_by", "currency", "customer", "discount_amount", "id"}
        | {"import_job", "lines_amount", "net_amount", "number", "ordered_at", "refunded_amount", "status", "store"}
        | {"system", "total_amount", "updated_at"}
    ),
    "ingest.formsubmission": frozenset(
        {"confirmed_at", "consent_text", "consent_version", "created_at", "customer", "form", "id", "language"}
        | {"status"}
    ),
    "service.ticket": frozenset(
        {"assignee", "category", "channel", "closed_at", "created_at", "created_by", "customer", "escalated_at"}
        | {"escalation_level", "first_responded_at", "first_response_due", "id", "number", "priority"}
        | {"reopened_count", "resolution_code", "resolution_due", "resolution_escalated_at", "resolved_at"}
        | {"response_escalated_at", "sla_business_hours", "sla_paused_at", "status", "team", "updated_at"}
    ),
    "service.ticketmessage": frozenset({"author", "created_at", "emailed_at", "id", "kind", "ticket"}),
    "service.survey": frozenset(
        {"answered_at", "channel", "created_at", "created_by", "customer", "expires_at", "id", "kind", "order_id"}
        | {"score", "sent_at", "team", "ticket", "token_digest"}
    ),
    "analytics.feedbacksentiment": frozenset(
        {"analysed_at", "customer", "id", "label", "language", "object_id", "score", "source", "topic", "written_at"}
    ),
    "privacy.consent": frozenset(
        {"at", "channel", "customer", "granted", "id", "language", "purpose", "submission", "text", "text_sha256"}
        | {"text_version"}
    ),
    "privacy.datasubjectrequest": frozenset(
        {"channel", "completed_at", "created_at", "created_by", "customer", "due_at", "handler", "id"}
        | {"identity_method", "identity_status", "kind", "law", "received_at", "rejection_reason", "status"}
    ),
    "quality.mergerecord": frozenset(
        {"created_at", "created_by", "id", "merged_ids", "pairs_before", "survivor", "undone_at", "undone_by"}
    ),
    # The address a message went to is kept only as its keyed hash, like the contacts' match keys.
    "automation.message": frozenset(
        {"address_key", "attempts", "campaign_id", "channel", "claimed_by", "claimed_until", "clicked_at"}
        | {"created_at", "customer", "id", "key", "opened_at", "origin", "provider", "provider_message_id"}
        | {"purpose", "reason", "rule_run_id", "send_after", "sent_at", "status", "status_at", "template"}
    ),
    "automation.webhookdelivery": frozenset(
        {"attempts", "created_at", "customer_id", "endpoint", "event_id", "event_type", "id", "key", "last_attempt_at"}
        | {"last_error", "last_status_code", "message_id", "next_attempt_at", "response_ms", "status"}
    ),
    "automation.gift": frozenset(
        {"created_at", "created_by", "currency", "customer", "given_by", "given_on", "id", "occasion", "value"}
    ),
    "automation.caretask": frozenset({"created_at", "customer", "follow_up", "id", "key", "plan"}),
}


class OnErase(models.TextChoices):
    """What erasure does to a model's rows of the customer."""

    ANONYMISE = "anonymise", _("Personal fields blanked, the row kept")
    DELETE = "delete", _("Rows deleted")
    KEEP = "keep", _("Kept: no personal field")


@dataclass(frozen=True)
class CustomerData:
    """A model that holds data about a customer: how its rows reach the customer, what erasure does to them."""

    model: str
    customer_path: str  # ORM lookup from the model to the customer's id, e.g. "ticket__customer"
    on_erase: str
    export: bool = True  # part of an access / portability package


# Every model with data about a customer. Access and portability packages, erasure and retention read this list;
# `cim.privacy.tests.test_registry` fails for a model with a customer key that is missing here.
CUSTOMER_DATA: tuple[CustomerData, ...] = (
    CustomerData("customers.customer", "id", OnErase.ANONYMISE),
    CustomerData("customers.phone", "customer", OnErase.DELETE),
    CustomerData("customers.email", "customer", OnErase.DELETE),
    CustomerData("customers.address", "customer", OnErase.DELETE),
    CustomerData("customers.externalid", "customer", OnErase.DELETE),
    CustomerData("customers.customertag", "customer", OnErase.KEEP),
    CustomerData("activities.interaction", "customer", OnErase.ANONYMISE),
    CustomerData("activities.attachment", "interaction__customer", OnErase.DELETE),
    CustomerData("activities.followup", "customer", OnErase.ANONYMISE),
    CustomerData("activities.behaviourevent", "customer", OnErase.ANONYMISE),
    CustomerData("activities.anonymouslink", "customer", OnErase.DELETE),
    CustomerData("activities.touchpoint", "customer", OnErase.KEEP),
    CustomerData("activities.order", "customer", OnErase.KEEP),
    CustomerData("ingest.formsubmission", "customer", OnErase.ANONYMISE),
    CustomerData("service.ticket", "customer", OnErase.ANONYMISE),
    CustomerData("service.ticketmessage", "ticket__customer", OnErase.ANONYMISE),
    CustomerData("service.survey", "customer", OnErase.ANONYMISE),
    CustomerData("analytics.feedbacksentiment", "customer", OnErase.ANONYMISE),
    CustomerData("analytics.customerscore", "customer", OnErase.KEEP),
    CustomerData("segments.segmentmember", "customer", OnErase.KEEP),
    # Which automation rule ran for the customer and what each step did: ids, names and counts, no personal value.
    CustomerData("automation.rulerun", "customer", OnErase.KEEP),
    # Which team a customer was shared with and why: internal handling, not the customer's data, but the reason may
    # speak of them, so an erasure ends the shares (the audit log keeps that they were made).
    CustomerData("customers.share", "customer", OnErase.DELETE, export=False),
    CustomerData("privacy.consent", "customer", OnErase.ANONYMISE),
    CustomerData("privacy.datasubjectrequest", "customer", OnErase.ANONYMISE),
    CustomerData("privacy.processingrestriction", "customer", OnErase.KEEP),
    CustomerData("automation.message", "customer", OnErase.ANONYMISE),
    CustomerData("automation.gift", "customer", OnErase.ANONYMISE),
    CustomerData("automation.caretask", "customer", OnErase.KEEP),
    CustomerData("automation.campaignconversion", "customer", OnErase.KEEP),
    # Derived copies: the search document is rebuilt, pairs and merge snapshots are wiped (see erasure.py).
    CustomerData("search.searchdocument", "customer", OnErase.DELETE, export=False),
    CustomerData("quality.duplicatecandidate", "customer", OnErase.DELETE, export=False),
    CustomerData("quality.mergerecord", "survivor", OnErase.ANONYMISE, export=False),
    # Copies sent to other systems: payloads and answers blanked, the log of what was sent when kept.
    CustomerData("automation.webhookdelivery", "customer_id", OnErase.ANONYMISE, export=False),
)

_BY_KEY = {(f.model, f.field): f for f in REGISTRY}


@cache  # masking asks it for every customer and contact point of a page
def personal_fields(model: str | None = None, *, level: str | None = None) -> tuple[PersonalField, ...]:
    """The registered fields, of one model (`"customers.phone"`) and/or one level, in registry order."""
    return tuple(f for f in REGISTRY if (model is None or f.model == model) and (level is None or f.level == level))


def sensitive_fields(model: str | None = None) -> tuple[PersonalField, ...]:
    return personal_fields(model, level=Level.SENSITIVE)


def field_info(model: str, field: str) -> PersonalField | None:
    """The registry's entry for a field, or None when the field is not personal."""
    return _BY_KEY.get((model, field))


def is_minor(birthday: datetime.date | None, *, today: datetime.date | None = None) -> bool:
    """Under 14 on `today` (PIPL Art. 28, 31): every piece of their information is sensitive."""
    if birthday is None:
        return False
    today = today or datetime.date.today()
    age = today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))
    return age < MINOR_AGE
