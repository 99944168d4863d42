import argparse
import json

from django.core.exceptions import ValidationError
from django.db.models import Count

from cim.accounts.models import User
from cim.automation.message_admin import message_send, message_template_list
from cim.automation.message_receipts import receipt_urls
from cim.automation.messaging import messages_deliver
from cim.automation.models import Message, MessageTemplate
from cim.automation.models.messages import MessageStatus
from cim.core.commands import ReportingCommand
from cim.customers.models import Customer
from cim.segments.models import Segment


class Command(ReportingCommand):
    help = (
        "Messages to customers: `templates` lists the message templates; `send TEMPLATE_ID (NUMBER…|--segment ID) "
        "--user U` sends one by hand (consent, caps and quiet hours apply); `status` counts messages by status "
        "(of one customer with --customer, of one campaign with --campaign); `deliver` sends what is due now; "
        "`receipt-urls` prints where the SMS gateways and WeChat are to send delivery receipts."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        templates = actions.add_parser("templates", help="the message templates")
        send = actions.add_parser("send", help="send a template to customers or a segment")
        send.add_argument("template", type=int, help="the template's id (see `cim messages templates`)")
        send.add_argument("numbers", nargs="*", help="customer numbers")
        send.add_argument("--segment", type=int, help="send to this segment's members too")
        send.add_argument("--context", default="{}", help="extra template context as a JSON object")
        send.add_argument("--key", default="", help="idempotency key: running the same send again is a no-op")
        send.add_argument("--user", required=True, help="username the messages are sent as")
        status = actions.add_parser("status", help="messages by status")
        status.add_argument("--customer", default="", help="one customer's number")
        status.add_argument("--campaign", type=int, help="one campaign's id")
        deliver = actions.add_parser("deliver", help="send due messages now, as the worker does")
        urls = actions.add_parser("receipt-urls", help="the delivery receipt URLs to set in the providers' consoles")
        for sub in (templates, send, status, deliver, urls):
            sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"_{action.replace('-', '_')}")(**options)
        except ValidationError as error:
            raise self.fail(" ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None

    def _templates(self, **options):
        rows = [
            {"id": t.pk, "name": t.name, "channel": t.channel, "purpose": t.purpose, "language": t.language}
            | {"active": t.is_active}
            for t in message_template_list()
        ]
        lines = [
            f"{r['id']:>5}  {r['name']}  ({r['channel']}, {r['purpose']}, {r['language']})"
            + ("" if r["active"] else "  [inactive]")
            for r in rows
        ]
        self.report("\n".join([*lines, f"{len(rows)} templates."]), {"templates": rows})

    def _send(self, *, template, numbers, segment, context, key, user, **options):
        actor = User.objects.filter(username=user, is_active=True).first()
        if actor is None:
            raise self.fail(f"No active user {user!r}.")
        chosen = MessageTemplate.objects.filter(pk=template).first()
        if chosen is None:
            raise self.fail(f"No message template {template}.")
        group = None
        if segment is not None:
            group = Segment.objects.filter(pk=segment).first()
            if group is None:
                raise self.fail(f"No segment {segment}.")
        try:
            extra = json.loads(context)
        except ValueError:
            raise self.fail("--context must be a JSON object.") from None
        if not isinstance(extra, dict):
            raise self.fail("--context must be a JSON object.")
        found = dict(Customer.objects.filter(number__in=numbers).values_list("number", "pk"))
        if unknown := sorted(set(numbers) - set(found)):
            raise self.fail("Unknown customer numbers: " + " ".join(unknown))
        ids = list(found.values())
        if not ids and group is None:
            raise self.fail("Give customer numbers or --segment.")
        result = message_send(
            template=chosen, customer_ids=ids, segment=group, extra_context=extra, key=key, actor=actor
        )
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(result.suppressed.items()))
        self.report(
            f"{result.queued:,} queued, {sum(result.suppressed.values()):,} not sent"
            + (f" ({reasons})" if reasons else "")
            + (f", {result.duplicates:,} already sent before" if result.duplicates else "")
            + ".",
            {"queued": result.queued, "suppressed": result.suppressed, "duplicates": result.duplicates},
        )

    def _status(self, *, customer, campaign, **options):
        messages = Message.objects.all()
        if customer:
            messages = messages.filter(customer__number=customer)
        if campaign is not None:
            messages = messages.filter(campaign_id=campaign)
        counts = dict(messages.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        lines = [f"{status:>11}  {counts[status]:,}" for status in MessageStatus.values if status in counts]
        self.report("\n".join([*lines, f"{sum(counts.values()):,} messages."]), {"statuses": counts})

    def _deliver(self, **options):
        run = messages_deliver()
        self.report(
            f"{run.sent:,} sent, {run.failed:,} failed, {run.retried:,} to retry, {run.suppressed:,} not sent, "
            f"{run.deferred:,} deferred past quiet hours, {run.review:,} to review.",
            {"sent": run.sent, "failed": run.failed, "retried": run.retried, "suppressed": run.suppressed}
            | {"deferred": run.deferred, "review": run.review},
        )

    def _receipt_urls(self, **options):
        urls = receipt_urls()
        self.report("\n".join(f"{provider:>16}  {url}" for provider, url in urls.items()), {"urls": urls})
