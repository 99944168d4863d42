"""Retention rules (PIPL Art. 19, 47; GDPR Art. 5(1)(e)): data kept no longer than needed, evaluated set-based."""

import datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm
from cim.activities.models import BehaviourEvent, Interaction, Order
from cim.audit.services import audit_record
from cim.automation.events import events_publish
from cim.customers.models import Customer
from cim.customers.services import _require
from cim.ingest.models import FormSubmission, ImportJob
from cim.privacy.erasure import _journal, customers_anonymise, fts_optimize
from cim.privacy.models import ErasureTombstone, RetentionRule
from cim.service.models import Ticket

Action = RetentionRule.Action
BATCH = 1000


def _cutoff(rule: RetentionRule, now: datetime.datetime | None = None) -> datetime.datetime:
    return (now or timezone.now()) - datetime.timedelta(days=rule.days)


def inactive_customers(cutoff: datetime.datetime) -> QuerySet[Customer]:
    """Customers with no change, order, interaction, event or ticket since `cutoff`, not erased yet."""
    recent = {
        Order: "ordered_at",
        Interaction: "occurred_at",
        BehaviourEvent: "occurred_at",
        Ticket: "created_at",
    }
    qs = Customer.objects.filter(created_at__lt=cutoff, updated_at__lt=cutoff, merged_into__isnull=True)
    for model, field in recent.items():
        qs = qs.exclude(Exists(model.objects.filter(customer=OuterRef("pk"), **{f"{field}__gte": cutoff})))
    return qs.exclude(Exists(ErasureTombstone.objects.filter(customer_id=OuterRef("pk"))))


def _targets(rule: RetentionRule, cutoff) -> QuerySet:
    if rule.action == Action.ANONYMISE_INACTIVE:
        return inactive_customers(cutoff)
    if rule.action == Action.DELETE_SUBMISSIONS:
        # Scrubbed ones (raw emptied, kept as consent evidence) are done.
        return FormSubmission.objects.filter(created_at__lt=cutoff).exclude(raw={}, ip=None, user_agent="")
    if rule.action == Action.DELETE_IMPORT_FILES:
        # Finished imports only: a running or resumable one still reads its file.
        finished = (ImportJob.Status.DONE, ImportJob.Status.FAILED)
        return ImportJob.objects.filter(created_at__lt=cutoff, status__in=finished).exclude(file="")
    return BehaviourEvent.objects.filter(occurred_at__lt=cutoff).exclude(
        Q(properties={}) & Q(context={}) & Q(trait_errors=[])
    )


def retention_rule_count(*, rule: RetentionRule, now: datetime.datetime | None = None) -> int:
    """The dry run: how many customers, submissions or events the rule would touch now."""
    return _targets(rule, _cutoff(rule, now)).count()


def _anonymise_inactive(cutoff) -> int:
    done = 0
    while ids := list(inactive_customers(cutoff).values_list("pk", flat=True)[:BATCH]):
        numbers = dict(Customer.objects.filter(pk__in=ids).values_list("pk", "number"))
        with transaction.atomic():
            customers_anonymise(ids, optimize=False)
            tombstones = ErasureTombstone.objects.bulk_create(
                [ErasureTombstone(customer_id=pk, number=numbers[pk]) for pk in ids], ignore_conflicts=True
            )
            transaction.on_commit(lambda rows=tombstones: [_journal(t) for t in rows])
            events_publish("customer.erased", customer_ids=ids)
        done += len(ids)
    if done:
        fts_optimize()
    return done


def _delete_submissions(cutoff) -> int:
    old = FormSubmission.objects.filter(created_at__lt=cutoff)
    # Submissions a consent points to stay, emptied: the consent's evidence is its text, time and hash.
    referenced = old.filter(consents__isnull=False)
    scrubbed = referenced.exclude(raw={}, ip=None, user_agent="").update(raw={}, ip=None, user_agent="")
    _total, per_model = old.filter(consents__isnull=True).delete()
    return scrubbed + per_model.get(FormSubmission._meta.label, 0)


def _scrub_events(cutoff) -> int:
    return _targets(RetentionRule(action=Action.SCRUB_EVENTS, days=1), cutoff).update(
        properties={}, context={}, trait_errors=[]
    )


def _delete_import_files(cutoff) -> int:
    """Uploaded files hold every row as sent, other customers' included: erasure cannot edit them, retention
    removes them. The import's counts and row errors stay."""
    jobs = list(_targets(RetentionRule(action=Action.DELETE_IMPORT_FILES, days=1), cutoff).values_list("pk", "file"))
    root = Path(settings.MEDIA_ROOT)
    for _pk, name in jobs:
        (root / name).unlink(missing_ok=True)
    ImportJob.objects.filter(pk__in=[pk for pk, _name in jobs]).update(file="")
    return len(jobs)


def retention_rule_apply(*, rule: RetentionRule, actor=None, now: datetime.datetime | None = None) -> int:
    """Apply one rule now; returns how many rows it changed. Idempotent: a second run finds nothing to do."""
    _require(actor, Perm.PRIVACY_MANAGE)
    cutoff = _cutoff(rule, now)
    apply = {
        Action.ANONYMISE_INACTIVE: _anonymise_inactive,
        Action.DELETE_SUBMISSIONS: _delete_submissions,
        Action.SCRUB_EVENTS: _scrub_events,
        Action.DELETE_IMPORT_FILES: _delete_import_files,
    }[rule.action]
    count = apply(cutoff)
    with transaction.atomic():
        RetentionRule.objects.filter(pk=rule.pk).update(last_run_at=timezone.now(), last_run_count=count)
        audit_record(actor=actor, action="privacy.retention_apply", target=rule, fields=[rule.action], note=str(count))
    return count


def retention_run_all(*, actor=None) -> dict[str, int]:
    """Every enabled rule, as the daily job runs them."""
    return {
        rule.name: retention_rule_apply(rule=rule, actor=actor) for rule in RetentionRule.objects.filter(enabled=True)
    }


def retention_rule_save(*, rule: RetentionRule | None = None, data: dict, actor) -> RetentionRule:
    _require(actor, Perm.PRIVACY_MANAGE)
    rule = rule or RetentionRule()
    errors = {}
    if "name" in data and not str(data["name"]).strip():
        errors["name"] = [_("Enter a name.")]
    if "action" in data and data["action"] not in Action.values:
        errors["action"] = [_("Select a valid action.")]
    if "days" in data and (not isinstance(data["days"], int) or data["days"] < 1):
        errors["days"] = [_("Enter a number of days of at least 1.")]
    if "name" in data and RetentionRule.objects.filter(name=data["name"]).exclude(pk=rule.pk).exists():
        errors["name"] = [_("A rule with this name exists.")]
    if errors:
        raise ValidationError(errors)
    created = rule.pk is None
    changes = {k: (getattr(rule, k, None), v) for k, v in data.items() if getattr(rule, k, None) != v}
    for key, value in data.items():
        setattr(rule, key, value)
    with transaction.atomic():
        rule.full_clean()
        rule.save()
        audit_record(
            actor=actor,
            action="privacy.retention_create" if created else "privacy.retention_update",
            target=rule,
            changes=changes,
        )
    return rule
