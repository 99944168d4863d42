"""Scheduled reports: create, change and delete them (audited), and send the due ones by e-mail from the worker.

A schedule is due once per period: each day, each ISO week (from Monday) or each calendar month, in the
installation's zone; a new schedule is due at once for the current period. Before building, the sender claims the
period with a compare-and-set on `last_period`, so two workers never both send it and a worker killed after the
claim leaves it claimed: a period is e-mailed at most once. When building or sending fails the claim is given back,
the error kept, and the next hourly round tries again.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from cim.analytics.dashboard import dashboard_filter
from cim.analytics.models import ReportSchedule
from cim.analytics.reports import REPORTS, Built, report_build
from cim.audit.services import audit_record

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 50
NAME_LENGTH = ReportSchedule._meta.get_field("name").max_length


def _recipients(value) -> list[str]:
    items = value.replace(";", ",").replace("\n", ",").split(",") if isinstance(value, str) else list(value or [])
    addresses = list(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))
    if not addresses:
        raise ValidationError(_("Enter at least one e-mail address."))
    if len(addresses) > MAX_RECIPIENTS:
        raise ValidationError(_("At most %(n)s recipients.") % {"n": MAX_RECIPIENTS})
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(_("%(value)s is not an e-mail address.") % {"value": address[:80]}) from None
    return addresses


def _name(value) -> str:
    if not (name := str(value or "").strip()[:NAME_LENGTH]):
        raise ValidationError(_("Enter a name."))
    return name


def _one_of(allowed):
    def check(value):
        if value not in allowed:
            raise ValidationError(_("Choose one of: %(keys)s.") % {"keys": ", ".join(allowed)})
        return value

    return check


# Each field's check: the value to store, or a ValidationError.
CHECKS = {
    "name": _name,
    "report": _one_of(list(REPORTS)),
    "format": _one_of(ReportSchedule.Format.values),
    "frequency": _one_of(ReportSchedule.Frequency.values),
    "recipients": _recipients,
    "language": _one_of([code for code, _label in settings.LANGUAGES]),
    "filters": lambda value: dashboard_filter(value or {}).model_dump(mode="json", by_alias=True, exclude_none=True),
    "is_active": bool,
}


def _clean(values: dict) -> dict:
    """The given fields, checked and normalised; a ValidationError naming each bad field."""
    cleaned, errors = {}, {}
    for name, value in values.items():
        if name not in CHECKS:
            continue
        try:
            cleaned[name] = CHECKS[name](value)
        except ValidationError as error:
            errors[name] = error.messages
    if errors:
        raise ValidationError(errors)
    return cleaned


def report_schedule_create(*, data: dict, actor) -> ReportSchedule:
    """A new scheduled report, owned by `actor`; name, report, frequency and recipients are required."""
    missing = {name: [_("This field is required.")] for name in ("name", "report", "frequency", "recipients")}
    missing = {name: error for name, error in missing.items() if data.get(name) in (None, "", [])}
    if missing:
        raise ValidationError(missing)
    values = _clean(data)
    with transaction.atomic():
        schedule = ReportSchedule.objects.create(owner=actor, **values)
        audit_record(actor=actor, action="report_schedule.create", target=schedule, fields=sorted(values))
    return schedule


def report_schedule_update(*, schedule: ReportSchedule, data: dict, actor) -> ReportSchedule:
    """Change the given fields; nothing written when nothing changes."""
    values = _clean(data)
    changed = [name for name, value in values.items() if getattr(schedule, name) != value]
    if not changed:
        return schedule
    with transaction.atomic():
        for name in changed:
            setattr(schedule, name, values[name])
        schedule.save(update_fields=changed)
        audit_record(actor=actor, action="report_schedule.update", target=schedule, fields=changed)
    return schedule


def report_schedule_delete(*, schedule: ReportSchedule, actor) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="report_schedule.delete", target=schedule, fields=["name", "report"])
        schedule.delete()


def period_of(frequency: str, now: datetime | None = None) -> str:
    """The period a schedule sends for at `now`: `2026-12-03`, `2026-W49` or `2026-12`."""
    day = timezone.localdate(now or timezone.now())
    if frequency == ReportSchedule.Frequency.DAILY:
        return day.isoformat()
    if frequency == ReportSchedule.Frequency.WEEKLY:
        year, week, _weekday = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day:%Y-%m}"


def schedule_build(schedule: ReportSchedule) -> Built:
    """Build a schedule's report now, in its language and with its filters."""
    filters = dashboard_filter(schedule.filters or {})
    return report_build(report=schedule.report, format=schedule.format, filters=filters, language=schedule.language)


def report_schedule_download(*, schedule: ReportSchedule, actor) -> Built:
    """Build a schedule's report now for someone to take away (the page's download, `cim analytics report`): an
    export, so it is recorded."""
    built = schedule_build(schedule)
    note = f"report={schedule.report} format={schedule.format}"
    audit_record(actor=actor, action="report.export", target=schedule, fields=["report"], note=note)
    return built


def schedule_email(schedule: ReportSchedule, built: Built) -> None:
    """E-mail a built report to the schedule's recipients, written in the schedule's language."""
    with override(schedule.language):
        subject = _("%(name)s: %(title)s") % {"name": schedule.name, "title": built.title}
        body = _(
            "Attached is the report %(title)s of the scheduled report %(name)s (%(frequency)s).\n\n"
            "Sent by CIM. To change or stop it, edit the schedule under Analytics › Scheduled reports."
        ) % {"title": built.title, "name": schedule.name, "frequency": schedule.get_frequency_display()}
    message = EmailMessage(subject=subject, body=body, to=schedule.recipients)
    message.attach(built.filename, built.content, built.mimetype)
    message.send()


def report_schedule_send(*, schedule: ReportSchedule, now: datetime | None = None) -> bool:
    """Send the schedule's report for the current period unless it was sent (or claimed) already; True if sent."""
    now = now or timezone.now()
    period, previous = period_of(schedule.frequency, now), schedule.last_period
    if not schedule.is_active or previous == period:
        return False
    claimed = ReportSchedule.objects.filter(pk=schedule.pk, is_active=True, last_period=previous).update(
        last_period=period
    )
    if not claimed:
        return False  # another worker took it
    try:
        schedule_email(schedule, schedule_build(schedule))
    except Exception as error:  # a missing font, a mail server down: give the period back, keep the reason
        logger.exception("Scheduled report %s failed", schedule.pk)
        ReportSchedule.objects.filter(pk=schedule.pk, last_period=period).update(
            last_period=previous, last_error=str(error)[:500]
        )
        return False
    ReportSchedule.objects.filter(pk=schedule.pk).update(last_sent_at=now, last_error="")
    audit_record(
        actor=None, action="report_schedule.send", target=schedule, fields=["last_period", "last_sent_at"], note=period
    )
    return True


def report_schedules_send_due(*, now: datetime | None = None) -> int:
    """Send every active schedule not yet sent for its current period; the number sent."""
    now = now or timezone.now()
    due = [
        schedule
        for schedule in ReportSchedule.objects.filter(is_active=True).order_by("id")
        if schedule.last_period != period_of(schedule.frequency, now)
    ]
    return sum(report_schedule_send(schedule=schedule, now=now) for schedule in due)
