import argparse
import datetime

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime

from cim.accounts.models import User
from cim.core.commands import ReportingCommand
from cim.customers.models import Customer
from cim.customers.numbering import normalize_number
from cim.privacy import requests as dsr
from cim.privacy.erasure import customer_erase, tombstones_replay
from cim.privacy.models import DataSubjectRequest, IdentityMethod, Law, RequestKind, RetentionRule
from cim.privacy.retention import retention_rule_apply, retention_rule_count
from cim.privacy.selectors import request_list


class Command(ReportingCommand):
    help = (
        "Privacy: `request create NUMBER --kind K [--law pipl|gdpr]`, `request list [--open] [--overdue]`, "
        "`request verify ID --method M`, `request complete ID`, `request reject ID --reason R`, "
        "`request package ID --format json|csv --output FILE`; `erase NUMBER --reason R` (irreversible); "
        "`replay` applies every erasure tombstone again (after a restore); `retention [--apply]` counts (or applies) "
        "the enabled retention rules."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        request = actions.add_parser("request", help="data-subject requests")
        steps = request.add_subparsers(dest="step", required=True)
        create = steps.add_parser("create", help="record a request")
        create.add_argument("number", help="customer number")
        create.add_argument("--kind", required=True, choices=RequestKind.values)
        create.add_argument("--law", default=Law.PIPL, choices=Law.values)
        create.add_argument("--received-at", help="ISO date-time it was received (default now)")
        create.add_argument("--details", default="")
        listing = steps.add_parser("list", help="the register")
        listing.add_argument("--open", action="store_true", help="only open requests")
        listing.add_argument("--overdue", action="store_true", help="only open requests past their deadline")
        verify = steps.add_parser("verify", help="record the identity check")
        verify.add_argument("id", type=int)
        verify.add_argument("--method", required=True, choices=[m for m in IdentityMethod.values if m])
        complete = steps.add_parser("complete", help="complete (erasure erases, restriction restricts)")
        complete.add_argument("id", type=int)
        complete.add_argument("--note", default="")
        reject = steps.add_parser("reject", help="reject with a reason")
        reject.add_argument("id", type=int)
        reject.add_argument("--reason", required=True)
        package = steps.add_parser("package", help="write the access / portability package")
        package.add_argument("id", type=int)
        package.add_argument("--format", dest="fmt", default="json", choices=["json", "csv"])
        package.add_argument("--output", required=True, help="file to write")
        erase = actions.add_parser("erase", help="erase a customer's personal data (irreversible)")
        erase.add_argument("number")
        erase.add_argument("--reason", required=True)
        erase.add_argument("--request", type=int, help="the request id it answers")
        replay = actions.add_parser("replay", help="apply every erasure tombstone again")
        retention = actions.add_parser("retention", help="count, or apply, the enabled retention rules")
        retention.add_argument("--apply", action="store_true")
        subs = (create, listing, verify, complete, reject, package, erase, replay, retention)
        for sub in subs:
            sub.add_argument("--user", default="", help="username acting (an administrator); default: the system")
            sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

    def handle(self, *args, action: str, **options):
        self.actor = self._user(options.get("user", ""))
        try:
            if action == "request":
                getattr(self, f"_request_{options['step']}")(**options)
            else:
                getattr(self, f"_{action}")(**options)
        except ValidationError as error:
            raise self.fail(" ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None

    def _user(self, username: str):
        if not username:
            return None
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise self.fail(f"No active user {username!r}.")
        return user

    def _customer(self, number: str) -> Customer:
        customer = Customer.objects.filter(number=normalize_number(number)).first()
        if customer is None:
            raise self.fail(f"No customer {number}.")
        return customer

    def _request(self, pk: int) -> DataSubjectRequest:
        found = DataSubjectRequest.objects.select_related("customer").filter(pk=pk).first()
        if found is None:
            raise self.fail(f"No request {pk}.")
        return found

    def _out(self, r: DataSubjectRequest) -> dict:
        return {
            "id": r.pk,
            "reference": r.reference,
            "customer": r.customer.number if r.customer_id else None,
            "kind": r.kind,
            "law": r.law,
            "status": r.status,
            "due_at": r.due_at,
            "overdue": r.is_overdue,
        }

    def _request_create(self, *, number, kind, law, received_at, details, **options):
        when = None
        if received_at:
            when = parse_datetime(received_at)
            if when is None:
                raise self.fail("--received-at is not an ISO date-time.")
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.UTC)
        r = dsr.request_create(
            customer=self._customer(number), kind=kind, law=law, received_at=when, details=details, actor=self.actor
        )
        self.report(f"{r.reference} recorded, due {r.due_at:%Y-%m-%d}.", self._out(r))

    def _request_list(self, *, open, overdue, **options):
        rows = [self._out(r) for r in request_list(status="open" if open else "", overdue=overdue)]
        lines = [
            f"{r['reference']}  {r['customer'] or '-':<12} {r['kind']:<13} {r['law']:<5} {r['status']:<12} "
            f"due {r['due_at']:%Y-%m-%d}{'  OVERDUE' if r['overdue'] else ''}"
            for r in rows
        ]
        self.report("\n".join([*lines, f"{len(rows)} requests."]), {"requests": rows})

    def _request_verify(self, *, id, method, **options):
        r = dsr.request_verify(request=self._request(id), method=method, actor=self.actor)
        self.report(f"{r.reference}: identity verified.", self._out(r))

    def _request_complete(self, *, id, note, **options):
        r = dsr.request_complete(request=self._request(id), note=note, actor=self.actor)
        self.report(f"{r.reference}: completed.", self._out(r))

    def _request_reject(self, *, id, reason, **options):
        r = dsr.request_reject(request=self._request(id), reason=reason, actor=self.actor)
        self.report(f"{r.reference}: rejected.", self._out(r))

    def _request_package(self, *, id, fmt, output, **options):
        content, _type, name = dsr.package_download(request=self._request(id), fmt=fmt, actor=self.actor)
        with open(output, "wb") as handle:
            handle.write(content)
        self.report(f"{name}: {len(content):,} bytes written to {output}.", {"file": output, "bytes": len(content)})

    def _erase(self, *, number, reason, request, **options):
        data_request = self._request(request) if request else None
        tombstone = customer_erase(
            customer=self._customer(number), actor=self.actor, reason=reason, request=data_request
        )
        self.report(f"{tombstone.number} erased.", {"number": tombstone.number, "erased_at": tombstone.erased_at})

    def _replay(self, **options):
        count = tombstones_replay(actor=self.actor)
        self.report(f"{count:,} erased customers anonymised again.", {"customers": count})

    def _retention(self, *, apply, **options):
        rows = []
        for rule in RetentionRule.objects.filter(enabled=True):
            count = retention_rule_apply(rule=rule, actor=self.actor) if apply else retention_rule_count(rule=rule)
            rows.append({"rule": rule.name, "action": rule.action, "days": rule.days, "count": count})
        verb = "changed" if apply else "would change"
        lines = [f"{r['rule']}: {r['count']:,} {verb}" for r in rows]
        self.report("\n".join([*lines, f"{len(rows)} rules."]), {"rules": rows, "applied": apply})
