"""Every write to campaigns: their definition and variants, the steps of sending (schedule, start, pause, cancel),
the A/B test's winner, and the orders credited to them.

Sending goes through messaging: a campaign resolves its audience set-based and hands customer ids to
`messages_queue`, which checks consent, restriction, suppressed addresses, frequency caps and quiet hours for each
recipient; `messages_deliver` renders and sends them in the worker and checks consent again at send time. Every
message of a campaign has the key `campaign:<id>:customer:<id>`, so a customer gets one message per campaign
whatever happens (a restart, a resumed pause, the winner sent after the test) and queueing again is a no-op.
"""

import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm, has_perm
from cim.audit.services import audit_record
from cim.automation.messaging import messages_queue, template_check
from cim.automation.models import Campaign, CampaignVariant, Message, MessageTemplate
from cim.automation.models.messages import MessageStatus
from cim.customers.services import PermissionDenied
from cim.privacy.models import ConsentPurpose
from cim.quality.normalize import clean_text
from cim.segments.models import Segment, SegmentMember
from cim.segments.services import current_customers, segment_refresh

logger = logging.getLogger(__name__)

LABELS = "ABCDE"
EDITABLE = frozenset(
    {
        "name",
        "description",
        "purpose",
        "segment",
        "variants",
        "scheduled_at",
        "test_percent",
        "test_metric",
        "test_wait_hours",
        "throttle_per_minute",
        "attribution_days",
        "cost",
    }
)
# What may still change once a campaign has started: nothing that changes who gets what.
EDITABLE_STARTED = frozenset({"description", "attribution_days", "cost"})
ACTIVE = (Campaign.Status.TESTING, Campaign.Status.SENDING)
FINAL = (Campaign.Status.SENT, Campaign.Status.CANCELLED)
# Queued messages of a paused campaign wait here; resuming gives them a send time again.
HELD = datetime(9000, 1, 1, tzinfo=UTC)
# Recipients queued per commit when a campaign is not throttled: delivery starts on the first slice.
QUEUE_SLICE = 5000


def _require(actor) -> None:
    if actor is not None and not has_perm(actor, Perm.CAMPAIGN_MANAGE):
        raise PermissionDenied(Perm.CAMPAIGN_MANAGE)


def message_key(campaign_id: int, customer_id: int) -> str:
    return f"campaign:{campaign_id}:customer:{customer_id}"


# --- Definition


def _int(changes: dict, name: str, low: int, high: int, errors: dict, message: str) -> int | None:
    try:
        value = int(changes[name])
    except (TypeError, ValueError):
        value = None
    if value is None or not low <= value <= high:
        errors[name] = [message]
        return None
    return value


def _content(item, prefix: str, errors: dict) -> dict:
    """One language's subject, text, HTML and language, checked."""
    item = item if isinstance(item, dict) else {}
    subject = " ".join(str(item.get("subject") or "").split())  # as written: no NFKC folding of its punctuation
    body = str(item.get("body") or "").strip()
    html = str(item.get("html") or "").strip()
    language = item.get("language") or "zh-hans"
    found = {}
    if not 1 <= len(subject) <= 300:
        found[f"{prefix}.subject"] = [_("A subject has 1 to 300 characters.")]
    if not body:
        found[f"{prefix}.body"] = [_("Write the text of the email.")]
    if language not in dict(settings.LANGUAGES):
        found[f"{prefix}.language"] = [_("Choose a language.")]
    if not found:
        try:
            template_check(subject=subject, body=body, html=html)
        except ValidationError as error:
            found |= {f"{prefix}.{part}": messages for part, messages in error.message_dict.items()}
    errors.update(found)
    return {"subject": subject, "body": body, "html": html, "language": language}


def _variants(raw, errors: dict) -> list[dict]:
    """Each variant's content and its translations, checked; the labels A, B, ... follow their order."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= len(LABELS):
        errors["variants"] = [_("Give one to five variants.")]
        return []
    variants = []
    for index, item in enumerate(raw):
        prefix = f"variants.{index}"
        variant = _content(item, prefix, errors)
        translations = (item.get("translations") if isinstance(item, dict) else None) or []
        if not isinstance(translations, list):
            translations = [translations]
        variant["translations"] = [
            _content(other, f"{prefix}.translations.{n}", errors) for n, other in enumerate(translations)
        ]
        languages = [variant["language"]] + [t["language"] for t in variant["translations"]]
        if len(set(languages)) < len(languages):
            errors[f"{prefix}.translations"] = [_("Give each language once: a translation is in another language.")]
        variants.append(variant)
    return variants


def _values(changes: dict, campaign: Campaign | None) -> dict:
    errors: dict[str, list[str]] = {}
    values: dict = {}
    if "name" in changes or campaign is None:
        name = clean_text(changes.get("name") or "")
        if not 1 <= len(name) <= 100:
            errors["name"] = [_("A name has 1 to 100 characters.")]
        elif Campaign.objects.filter(name=name).exclude(pk=campaign.pk if campaign else None).exists():
            errors["name"] = [_("A campaign with this name exists.")]
        values["name"] = name
    if "description" in changes:
        description = clean_text(changes["description"] or "")
        if len(description) > 500:
            errors["description"] = [_("At most 500 characters.")]
        values["description"] = description
    if "purpose" in changes:
        if changes["purpose"] not in ConsentPurpose.values:
            errors["purpose"] = [_("Choose a consent purpose.")]
        values["purpose"] = changes["purpose"]
    if "segment" in changes or campaign is None:
        segment = changes.get("segment")
        if not isinstance(segment, Segment):
            segment = Segment.objects.filter(pk=segment).first() if str(segment or "").isdigit() else None
        if segment is None:
            errors["segment"] = [_("Choose a segment or static list.")]
        values["segment"] = segment
    if "variants" in changes or campaign is None:
        values["variants"] = _variants(changes.get("variants"), errors)
    if "scheduled_at" in changes:
        at = changes["scheduled_at"]
        if at is not None and not isinstance(at, datetime):
            errors["scheduled_at"] = [_("Enter a date and time.")]
        values["scheduled_at"] = at
    if "test_percent" in changes:
        values["test_percent"] = _int(changes, "test_percent", 0, 90, errors, _("A test share is 0 to 90 %."))
    if "test_metric" in changes:
        if changes["test_metric"] not in Campaign.Metric.values:
            errors["test_metric"] = [_("Choose open rate, click rate or conversion rate.")]
        values["test_metric"] = changes["test_metric"]
    if "test_wait_hours" in changes:
        values["test_wait_hours"] = _int(changes, "test_wait_hours", 1, 24 * 14, errors, _("Wait 1 to 336 hours."))
    if "throttle_per_minute" in changes:
        values["throttle_per_minute"] = _int(
            changes, "throttle_per_minute", 0, 1_000_000, errors, _("0 (no limit) to 1,000,000 per minute.")
        )
    if "attribution_days" in changes:
        values["attribution_days"] = _int(changes, "attribution_days", 1, 90, errors, _("1 to 90 days."))
    if "cost" in changes:
        try:
            cost = Decimal(str(changes["cost"] if changes["cost"] not in (None, "") else 0))
        except InvalidOperation:
            cost = Decimal(-1)
        if not cost.is_finite() or cost < 0 or cost >= Decimal("1e12"):
            errors["cost"] = [_("Enter an amount of 0 or more.")]
        values["cost"] = cost.quantize(Decimal("0.01")) if cost.is_finite() else cost
    if errors:
        raise ValidationError(errors)
    return values


def _save_template(template: MessageTemplate | None, campaign: Campaign, label: str, data: dict) -> MessageTemplate:
    if template is None:
        return MessageTemplate.objects.create(
            name=f"campaign:{campaign.pk}:{label}", channel=campaign.channel, purpose=campaign.purpose, **data
        )
    for name, value in {**data, "purpose": campaign.purpose}.items():
        setattr(template, name, value)
    template.save()
    return template


def _save_variants(campaign: Campaign, variants: list[dict]) -> None:
    """Keep one messaging template per variant (A, B, ...) and language, named after the campaign's id and the
    label."""
    have = {v.label: v for v in campaign.variants.select_related("template").prefetch_related("translations")}
    for label, data in zip(LABELS, variants, strict=False):
        data = dict(data)
        translations = data.pop("translations", [])
        variant = have.pop(label, None)
        if variant is None:
            template = _save_template(None, campaign, label, data)
            variant = CampaignVariant.objects.create(campaign=campaign, label=label, template=template)
            old = {}
        else:
            old = {t.language: t for t in variant.translations.all()}
            # A translation that becomes the main language changes places: free its (name, language) first.
            if data["language"] in old:
                gone = old.pop(data["language"])
                variant.translations.remove(gone)
                gone.delete()
            _save_template(variant.template, campaign, label, data)
        kept = [_save_template(old.pop(t["language"], None), campaign, label, t) for t in translations]
        variant.translations.set(kept)
        MessageTemplate.objects.filter(pk__in=[t.pk for t in old.values()]).delete()
    for variant in have.values():
        templates = [variant.template, *variant.translations.all()]
        variant.delete()
        MessageTemplate.objects.filter(pk__in=[t.pk for t in templates]).delete()


def campaign_create(*, actor, name: str, segment, variants: list[dict], **options) -> Campaign:
    """A new campaign, in draft."""
    _require(actor)
    unknown = set(options) - EDITABLE
    if unknown:
        raise ValidationError({name: [_("This field cannot be changed.")] for name in sorted(unknown)})
    with transaction.atomic():
        values = _values({"name": name, "segment": segment, "variants": variants, **options}, None)
        variants = values.pop("variants")
        campaign = Campaign.objects.create(**values, created_by=actor if actor and actor.is_authenticated else None)
        _save_variants(campaign, variants)
        audit_record(actor=actor, action="campaign.create", target=campaign, fields=[*values, "variants"])
    return campaign


def campaign_update(*, campaign: Campaign, actor, **changes) -> Campaign:
    """Change a campaign; once started, only its description, attribution window and cost."""
    _require(actor)
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValidationError({name: [_("This field cannot be changed.")] for name in sorted(unknown)})
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        started = campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED)
        frozen = sorted(set(changes) - EDITABLE_STARTED) if started else []
        if frozen:
            raise ValidationError({name: [_("The campaign has started; this cannot change.")] for name in frozen})
        values = _values(changes, campaign)
        variants = values.pop("variants", None)
        changed = [name for name, value in values.items() if getattr(campaign, name) != value]
        for name in changed:
            setattr(campaign, name, values[name])
        if changed:
            campaign.save(update_fields=[*changed, "updated_at"])
        if variants is not None and variants != _current_variants(campaign):
            _save_variants(campaign, variants)
            changed.append("variants")
        elif "purpose" in changed:
            campaign_templates(campaign).update(purpose=campaign.purpose)
        if changed:
            audit_record(actor=actor, action="campaign.update", target=campaign, fields=changed)
    return campaign


def variant_content(variant: CampaignVariant) -> dict:
    """A variant as `campaign_create` and `campaign_update` take it: its content, with its translations."""

    def content(t: MessageTemplate) -> dict:
        return {"subject": t.subject, "body": t.body, "html": t.html, "language": t.language}

    translations = [content(t) for t in variant.translations.order_by("language")]
    return content(variant.template) | {"translations": translations}


def _current_variants(campaign: Campaign) -> list[dict]:
    return [variant_content(v) for v in campaign.variants.select_related("template").order_by("label")]


def campaign_templates(campaign: Campaign) -> QuerySet:
    """Every messaging template of the campaign's variants, translations included."""
    return MessageTemplate.objects.filter(Q(variant__campaign=campaign) | Q(variant_translations__campaign=campaign))


def campaign_delete(*, campaign: Campaign, actor) -> None:
    """Delete a draft or scheduled campaign; one that has sent is kept for its report (cancel it instead)."""
    _require(actor)
    if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
        raise ValidationError({"status": [_("Only a campaign that has not started can be deleted.")]})
    with transaction.atomic():
        audit_record(actor=actor, action="campaign.delete", target=campaign, note=campaign.name)
        templates = list(campaign_templates(campaign).values_list("pk", flat=True))
        campaign.delete()
        MessageTemplate.objects.filter(pk__in=templates).delete()


# --- Sending


def _transition(campaign: Campaign, allowed: tuple, error: str) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in allowed:
        raise ValidationError({"status": [error]})
    return campaign


def campaign_schedule(*, campaign: Campaign, at: datetime | None, actor) -> Campaign:
    """Send at `at` (the worker starts it then), or back to draft with None."""
    _require(actor)
    with transaction.atomic():
        campaign = _transition(
            campaign,
            (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED),
            _("Only a campaign that has not started can be scheduled."),
        )
        if at is not None and at <= timezone.now():
            raise ValidationError({"scheduled_at": [_("Choose a time in the future, or start now.")]})
        campaign.scheduled_at = at
        campaign.status = Campaign.Status.SCHEDULED if at else Campaign.Status.DRAFT
        campaign.save(update_fields=["scheduled_at", "status", "updated_at"])
        audit_record(actor=actor, action="campaign.schedule", target=campaign, fields=["scheduled_at", "status"])
    return campaign


def campaign_start(*, campaign: Campaign, actor) -> Campaign:
    """Start sending now (or resume a paused campaign); the worker queues the messages."""
    _require(actor)
    with transaction.atomic():
        campaign = _transition(
            campaign,
            (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED, Campaign.Status.PAUSED),
            _("This campaign is already sending or has ended."),
        )
        resumed = campaign.status == Campaign.Status.PAUSED
        campaign.status = (
            Campaign.Status.TESTING if campaign.test_ends_at and not campaign.winner_id else (Campaign.Status.SENDING)
        )
        campaign.started_at = campaign.started_at or timezone.now()
        campaign.save(update_fields=["status", "started_at", "updated_at"])
        if resumed:
            _release(campaign)
        audit_record(
            actor=actor, action="campaign.resume" if resumed else "campaign.start", target=campaign, fields=["status"]
        )
        transaction.on_commit(_queue_advance)
    return campaign


def campaign_pause(*, campaign: Campaign, actor) -> Campaign:
    """Stop sending: the messages not yet handed over wait until the campaign is started again."""
    _require(actor)
    with transaction.atomic():
        campaign = _transition(campaign, ACTIVE, _("Only a sending campaign can be paused."))
        campaign.status = Campaign.Status.PAUSED
        campaign.save(update_fields=["status", "updated_at"])
        held = _pending(campaign).update(send_after=HELD)
        audit_record(actor=actor, action="campaign.pause", target=campaign, fields=["status"], note=str(held))
    return campaign


def campaign_cancel(*, campaign: Campaign, actor) -> Campaign:
    """End the campaign: the messages not yet handed over are dropped; what was sent stays in the report."""
    _require(actor)
    with transaction.atomic():
        campaign = _transition(
            campaign,
            (Campaign.Status.SCHEDULED, Campaign.Status.PAUSED, *ACTIVE),
            _("Only a scheduled, sending or paused campaign can be cancelled."),
        )
        campaign.status = Campaign.Status.CANCELLED
        campaign.finished_at = timezone.now()
        campaign.save(update_fields=["status", "finished_at", "updated_at"])
        dropped, _detail = _pending(campaign).delete()
        audit_record(actor=actor, action="campaign.cancel", target=campaign, fields=["status"], note=str(dropped))
    return campaign


def _pending(campaign: Campaign):
    """The campaign's queued messages no worker holds: a claimed message may be on its way to the provider, so it
    is left to finish. (A row being claimed is locked; the update or delete waits, then sees the claim.)"""
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=timezone.now())
    return Message.objects.filter(free, campaign_id=campaign.pk, status=MessageStatus.QUEUED)


def _release(campaign: Campaign) -> None:
    """Give held messages their send times again: now, or spread by the throttle."""
    held = _pending(campaign).filter(send_after=HELD)
    now = timezone.now()
    if not campaign.throttle_per_minute:
        held.update(send_after=now)
        return
    ids = list(held.order_by("id").values_list("id", flat=True))
    for minute, start in enumerate(range(0, len(ids), campaign.throttle_per_minute)):
        chunk = ids[start : start + campaign.throttle_per_minute]
        Message.objects.filter(pk__in=chunk).update(send_after=now + timedelta(minutes=minute))


def _queue_advance() -> None:
    from cim.automation.tasks_campaigns import campaigns_advance_task

    try:
        campaigns_advance_task.enqueue()
    except Exception:  # the queue being away must not fail the start; the minute job takes the campaign
        logger.warning("Could not queue the campaign step; the periodic run will take it", exc_info=True)


def audience_ids(campaign: Campaign) -> list[int]:
    """The customers the campaign is for now: the current members of its segment (a dynamic one refreshed first),
    never archived, merged away or restricted ones. Consent and the rest are messaging's to check."""
    if campaign.segment.kind == Segment.Kind.DYNAMIC:
        segment_refresh(segment=campaign.segment)
    members = SegmentMember.objects.filter(segment_id=campaign.segment_id).values("customer_id")
    return list(current_customers().filter(pk__in=members).order_by("pk").values_list("pk", flat=True))


@dataclass
class Advance:
    campaigns: int = 0
    queued: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)


def _queue(campaign: Campaign, variant: CampaignVariant, ids: list[int], advance: Advance, start=None) -> bool:
    """Hand `ids` to messaging with the variant's template, a slice at a time (throttled: one slice a minute). Each
    slice commits on its own, so delivery starts on the first while the rest are queued, and checks under the
    campaign's lock that it is still sending: a pause or a cancel stops the rest. False when it was stopped."""
    start = start or timezone.now()
    step = campaign.throttle_per_minute or QUEUE_SLICE
    for minute, first in enumerate(range(0, len(ids), step)):
        with transaction.atomic():
            status = Campaign.objects.select_for_update().values_list("status", flat=True).get(pk=campaign.pk)
            if status not in ACTIVE:
                return False
            result = messages_queue(
                customer_ids=ids[first : first + step],
                template=variant.templates(),
                purpose=campaign.purpose,
                key_for=lambda customer_id: message_key(campaign.pk, customer_id),
                origin="campaign",
                campaign_id=campaign.pk,
                send_after=start + timedelta(minutes=minute) if campaign.throttle_per_minute else None,
                now=start,
                actor=None,
            )
        advance.queued += result.queued
        for reason, count in result.suppressed.items():
            advance.suppressed[reason] = advance.suppressed.get(reason, 0) + count
    return True


def campaign_advance(*, campaign: Campaign, now: datetime | None = None) -> Advance:
    """Do the campaign's next step, if it is due: start a scheduled one; queue the A/B test's share, or everyone;
    after the test period, pick the winner and queue the rest; once nothing is left to hand over, mark it sent.
    Idempotent and resumable: a step done twice, or again after it was cut short, queues nothing twice (each
    message's key names the campaign and the customer)."""
    now = now or timezone.now()
    advance = Advance()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().select_related("segment").get(pk=campaign.pk)
        if campaign.status == Campaign.Status.SCHEDULED and campaign.scheduled_at and campaign.scheduled_at <= now:
            campaign.status = Campaign.Status.SENDING
            campaign.started_at = now
            campaign.save(update_fields=["status", "started_at", "updated_at"])
            audit_record(actor=None, action="campaign.start", target=campaign, fields=["status"], note="scheduled")
        if campaign.status not in ACTIVE:
            return advance
        advance.campaigns = 1
        variants = list(campaign.variants.select_related("template").prefetch_related("translations"))
        testing = len(variants) > 1 and campaign.test_percent > 0
        if testing and campaign.test_ends_at is None:
            plan = _test_plan(campaign, variants)
            after = {"status": Campaign.Status.TESTING, "test_ends_at": now + timedelta(hours=campaign.test_wait_hours)}
        elif testing and campaign.winner_id is None:
            if now < campaign.test_ends_at:
                return advance
            campaign.winner = campaign_winner(campaign=campaign)
            campaign.save(update_fields=["winner", "updated_at"])
            audit_record(
                actor=None, action="campaign.winner", target=campaign, fields=["winner"], note=campaign.winner.label
            )
            plan = [(campaign.winner, audience_ids(campaign))]
            after = {"status": Campaign.Status.SENDING, "queued_at": now}
        elif campaign.queued_at is None:
            # Everyone not yet messaged; the test group already has its message (same key).
            plan = [(campaign.winner or variants[0], audience_ids(campaign))]
            after = {"status": Campaign.Status.SENDING, "queued_at": now}
        elif not Message.objects.filter(
            campaign_id=campaign.pk, status__in=[MessageStatus.QUEUED, MessageStatus.SENDING]
        ).exists():
            campaign.status = Campaign.Status.SENT
            campaign.finished_at = now
            campaign.save(update_fields=["status", "finished_at", "updated_at"])
            return advance
        else:
            return advance
    for variant, ids in plan:
        if not _queue(campaign, variant, ids, advance, now):
            return advance
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status in ACTIVE:
            for name, value in after.items():
                setattr(campaign, name, value)
            campaign.save(update_fields=[*after, "updated_at"])
    return advance


def _test_plan(campaign: Campaign, variants: list[CampaignVariant]) -> list[tuple[CampaignVariant, list[int]]]:
    """The test share of the audience, drawn at random (the same draw when repeated), in equal parts."""
    ids = audience_ids(campaign)
    chosen = random.Random(campaign.pk).sample(ids, len(ids) * campaign.test_percent // 100)
    return [(variant, sorted(chosen[index :: len(variants)])) for index, variant in enumerate(variants)]


def campaigns_advance(*, now: datetime | None = None) -> Advance:
    """Advance every campaign that is due or sending (the worker's periodic job)."""
    total = Advance()
    due = Campaign.objects.filter(status__in=[*ACTIVE, Campaign.Status.SCHEDULED]).values_list("pk", flat=True)
    for pk in list(due):
        advance = campaign_advance(campaign=Campaign(pk=pk), now=now)
        total.campaigns += advance.campaigns
        total.queued += advance.queued
        for reason, count in advance.suppressed.items():
            total.suppressed[reason] = total.suppressed.get(reason, 0) + count
    return total


def campaign_winner(*, campaign: Campaign) -> CampaignVariant:
    """The variant with the best value of the campaign's metric in its test; the first one on a tie."""
    from cim.automation.campaigns_selectors import campaign_report

    rows = campaign_report(campaign=campaign).variants
    metric = campaign.test_metric
    best = max(rows, key=lambda row: (getattr(row, metric), -ord(row.label)))
    return campaign.variants.get(label=best.label)


# --- Conversion attribution


def campaign_conversions_credit(*, since: datetime | None = None) -> int:
    """Credit to campaigns the orders placed within their attribution window after a click on their email: each
    order once, to the campaign whose email the customer clicked last before ordering. Set-based, one statement;
    returns how many orders were credited now. Orders already credited keep their campaign."""
    from cim.activities.models import Order
    from cim.automation.models import CampaignConversion

    since = since or timezone.now() - timedelta(days=90)
    quote = connection.ops.quote_name
    translations = CampaignVariant.translations.through
    if connection.vendor == "postgresql":
        within = "o.ordered_at <= m.clicked_at + make_interval(days => c.attribution_days)"
    else:  # SQLite keeps datetimes as ISO text in UTC
        within = "julianday(o.ordered_at) <= julianday(m.clicked_at) + c.attribution_days"
    sql = f"""
        INSERT INTO {quote(CampaignConversion._meta.db_table)}
            (campaign_id, variant_id, customer_id, order_id, message_id, clicked_at, ordered_at, credited_at)
        SELECT campaign_id, variant_id, customer_id, order_id, message_id, clicked_at, ordered_at, %s FROM (
            SELECT m.campaign_id, v.variant_id, o.customer_id, o.id AS order_id, m.id AS message_id,
                   m.clicked_at, o.ordered_at,
                   row_number() OVER (PARTITION BY o.id ORDER BY m.clicked_at DESC, m.id DESC) AS latest
            FROM {quote(Order._meta.db_table)} o
            JOIN {quote(Message._meta.db_table)} m
              ON m.customer_id = o.customer_id AND m.campaign_id IS NOT NULL
             AND m.clicked_at IS NOT NULL AND m.clicked_at <= o.ordered_at
            JOIN {quote(Campaign._meta.db_table)} c ON c.id = m.campaign_id
            LEFT JOIN (
                SELECT id AS variant_id, template_id FROM {quote(CampaignVariant._meta.db_table)}
                UNION ALL
                SELECT campaignvariant_id, messagetemplate_id FROM {quote(translations._meta.db_table)}
            ) v ON v.template_id = m.template_id
            WHERE o.ordered_at >= %s AND o.status NOT IN (%s, %s) AND {within}
              AND NOT EXISTS (
                SELECT 1 FROM {quote(CampaignConversion._meta.db_table)} x WHERE x.order_id = o.id
              )
        ) credited
        WHERE latest = 1
    """
    params = [
        connection.ops.adapt_datetimefield_value(timezone.now()),
        connection.ops.adapt_datetimefield_value(since),
        Order.Status.CANCELLED,
        Order.Status.PENDING,
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
