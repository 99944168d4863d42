"""Emails about tickets, sent after the change commits: to staff (assignment, escalation, missed deadlines) and to
the customer (replies). A failure is logged, never raised: the change stands and the page shows it."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cim.accounts.models import User
from cim.accounts.roles import Perm, Role, has_perm
from cim.service import conf
from cim.service.models import Ticket, TicketMessage

logger = logging.getLogger(__name__)


def _ticket_url(ticket: Ticket) -> str:
    return conf.site_url() + reverse("service:ticket_detail", kwargs={"number": ticket.number})


def _send(subject: str, body: str, recipients: list[str], what: str) -> bool:
    if not recipients:
        return False
    try:
        send_mail(subject, body, None, recipients)
    except Exception:
        logger.exception("service: the %s email could not be sent", what)
        return False
    return True


def _addresses(users) -> list[str]:
    return sorted({u.email for u in users if u.is_active and u.email})


def escalation_recipients(ticket: Ticket) -> list[str]:
    """The assignee and the managers of the ticket's team; the team's ticket handlers when it has no assignee and
    no manager; the administrators when there is nobody else."""
    people = [ticket.assignee] if ticket.assignee else []
    members = list(User.objects.filter(team_id=ticket.team_id, is_active=True)) if ticket.team_id else []
    people += [u for u in members if u.role == Role.MANAGER]
    if not people:
        people = [u for u in members if has_perm(u, Perm.TICKET_HANDLE)]
    if not _addresses(people):
        people = list(User.objects.filter(role=Role.ADMINISTRATOR, is_active=True))
    return _addresses(people)


def _summary(ticket: Ticket) -> str:
    return _(
        "%(number)s: %(subject)s\nCustomer: %(customer)s\nPriority: %(priority)s · Status: %(status)s\n"
        "First response due: %(response_due)s\nResolution due: %(resolution_due)s\n\n%(url)s"
    ) % {
        "number": ticket.number,
        "subject": ticket.subject,
        "customer": ticket.customer.number,
        "priority": ticket.get_priority_display(),
        "status": ticket.get_status_display(),
        "response_due": timezone.localtime(ticket.first_response_due).strftime("%Y-%m-%d %H:%M"),
        "resolution_due": timezone.localtime(ticket.resolution_due).strftime("%Y-%m-%d %H:%M"),
        "url": _ticket_url(ticket),
    }


def _ticket(ticket_id: int) -> Ticket | None:
    return Ticket.objects.select_related("customer", "assignee", "team").filter(pk=ticket_id).first()


def assignment(*, ticket_id: int) -> None:
    ticket = _ticket(ticket_id)
    if ticket is None or ticket.assignee is None:
        return
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("[CIM] Ticket %(number)s was assigned to you") % {"number": ticket.number}
        _send(subject, _summary(ticket), _addresses([ticket.assignee]), "assignment")


def escalation(*, ticket_id: int, reason: str) -> None:
    ticket = _ticket(ticket_id)
    if ticket is None:
        return
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("[CIM] Ticket %(number)s escalated to level %(level)s") % {
            "number": ticket.number,
            "level": ticket.escalation_level,
        }
        body = _("Reason: %(reason)s") % {"reason": reason} + "\n\n" + _summary(ticket)
        _send(subject, body, escalation_recipients(ticket), "escalation")


def sla_breach(*, ticket_id: int, clock: str) -> None:
    ticket = _ticket(ticket_id)
    if ticket is None:
        return
    with translation.override(settings.LANGUAGE_CODE):
        if clock == "first_response":
            subject = _("[CIM] Ticket %(number)s missed its first-response deadline")
        else:
            subject = _("[CIM] Ticket %(number)s missed its resolution deadline")
        _send(subject % {"number": ticket.number}, _summary(ticket), escalation_recipients(ticket), "SLA breach")


def reply_to_customer(*, message_id: int) -> None:
    """Email a reply to the customer's primary address; record when it went out."""
    message = TicketMessage.objects.select_related("ticket__customer").filter(pk=message_id).first()
    if message is None:
        return
    email = message.ticket.customer.emails.filter(is_primary=True).first()
    if email is None:
        return
    with translation.override(settings.LANGUAGE_CODE):
        ticket = message.ticket
        subject = _("Re: [%(number)s] %(subject)s") % {"number": ticket.number, "subject": ticket.subject}
        if _send(subject, message.body, [email.address], "reply"):
            TicketMessage.objects.filter(pk=message.pk).update(emailed_at=timezone.now())
