import argparse
import datetime

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime

from cim.accounts.models import User
from cim.automation.models import WebhookDelivery, WebhookEndpoint
from cim.automation.webhook_selectors import DeliveryFilter, delivery_list, endpoint_list
from cim.automation.webhook_sender import deliveries_send, webhook_test_send
from cim.automation.webhooks import deliveries_replay, webhook_endpoint_create, webhook_secret_rotate
from cim.core.commands import ReportingCommand


class Command(ReportingCommand):
    help = (
        "Webhooks: `list`; `create URL (--event TYPE ... | --all-events) (--scope-role ROLE | --scope-user NAME)` "
        "prints the signing secret once; `rotate ID`; `test ID` sends a test message now; `deliveries [--endpoint ID] "
        "[--status S] [--event-type T] [--limit N]`; `replay (--delivery ID | [--endpoint ID] [--since T] "
        "[--until T])` sends failed deliveries again; `send` sends what is due (the worker does it by itself). "
        "See docs/webhooks.md."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="the endpoints")
        create = actions.add_parser("create", help="add an endpoint; prints its secret once")
        create.add_argument("url")
        create.add_argument("--description", default="")
        create.add_argument("--event", action="append", default=[], dest="events", help="an event type (repeat)")
        create.add_argument("--all-events", action="store_true")
        create.add_argument("--scope-role", default="", help="a role that sees every customer")
        create.add_argument("--scope-user", default="", help="or a username whose view applies")
        rotate = actions.add_parser("rotate", help="a new signing secret; the old one signs on for the grace period")
        rotate.add_argument("id", type=int)
        test = actions.add_parser("test", help="send a test message now and print the answer")
        test.add_argument("id", type=int)
        deliveries = actions.add_parser("deliveries", help="the delivery log, newest first")
        deliveries.add_argument("--endpoint", type=int)
        deliveries.add_argument("--status", choices=WebhookDelivery.Status.values, default="")
        deliveries.add_argument("--event-type", default="")
        deliveries.add_argument("--limit", type=int, default=50)
        replay = actions.add_parser("replay", help="send deliveries again (failed and given up, unless --delivery)")
        replay.add_argument("--delivery", type=int, action="append", default=[], help="one delivery (repeat)")
        replay.add_argument("--endpoint", type=int)
        replay.add_argument("--since", help="ISO date-time: created from")
        replay.add_argument("--until", help="ISO date-time: created before")
        send = actions.add_parser("send", help="send what is due now")
        send.add_argument("--seconds", type=float, default=50.0)
        for sub in (listing, create, rotate, test, deliveries, replay, send):
            sub.add_argument("--user", default="", help="username acting (an administrator); default: the system")
            sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

    def handle(self, *args, action: str, **options):
        self.actor = self._user(options.get("user", ""))
        try:
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

    def _endpoint(self, pk: int | None) -> WebhookEndpoint | None:
        if pk is None:
            return None
        found = WebhookEndpoint.objects.filter(pk=pk).first()
        if found is None:
            raise self.fail(f"No webhook endpoint {pk}.")
        return found

    def _when(self, value: str | None, option: str) -> datetime.datetime | None:
        if not value:
            return None
        when = parse_datetime(value)
        if when is None:
            raise self.fail(f"{option} is not an ISO date-time.")
        return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)

    def _list(self, **options):
        rows = [
            {
                "id": e.pk,
                "url": e.url,
                "events": "*" if e.all_events else e.event_types,
                "scope": e.scope_user.username if e.scope_user_id else e.scope_role,
                "active": e.is_active,
                "failures": e.failure_count,
                "waiting": e.waiting,
                "dead": e.dead,
            }
            for e in endpoint_list()
        ]
        for row in rows:
            events = row["events"] if row["events"] == "*" else ",".join(row["events"])
            state = "on" if row["active"] else "OFF"
            self.stdout.write(f"{row['id']:>4} {state:<3} {row['url']}  [{events}]  scope={row['scope']}")
        self.report(f"{len(rows)} endpoints.", {"endpoints": rows})

    def _create(self, *, url, description, events, all_events, scope_role, scope_user, **options):
        data = {"url": url, "description": description, "event_types": events, "all_events": all_events}
        endpoint, secret = webhook_endpoint_create(
            data={**data, "scope_role": scope_role, "scope_user": scope_user or None}, actor=self.actor
        )
        self.report(
            f"Endpoint {endpoint.pk} created. Signing secret (shown once): {secret}",
            {"id": endpoint.pk, "secret": secret},
        )

    def _rotate(self, *, id, **options):
        endpoint = self._endpoint(id)
        secret = webhook_secret_rotate(endpoint=endpoint, actor=self.actor)
        until = endpoint.previous_secret_expires_at
        self.report(
            f"New signing secret of endpoint {id} (shown once): {secret}; "
            f"the previous one signs until {until:%Y-%m-%d %H:%M}.",
            {"id": id, "secret": secret, "previous_valid_until": until},
        )

    def _test(self, *, id, **options):
        delivery = webhook_test_send(endpoint=self._endpoint(id), actor=self.actor)
        data = {"delivery": delivery.pk, "status": delivery.status, "code": delivery.last_status_code}
        data.update(ms=delivery.response_ms, error=delivery.last_error)
        if delivery.status != WebhookDelivery.Status.SUCCEEDED:
            self.report(f"Test failed: {delivery.last_error} (delivery {delivery.pk}, retried by the worker).", data)
            raise self.fail("The test message was not accepted.")
        self.report(f"Test received: HTTP {delivery.last_status_code} in {delivery.response_ms} ms.", data)

    def _deliveries(self, *, endpoint, status, event_type, limit, **options):
        filters = DeliveryFilter(endpoint=endpoint, status=status, event_type=event_type)
        rows = []
        for d in delivery_list(filters=filters)[: max(1, min(limit, 1000))]:
            rows.append(
                {
                    "id": d.pk,
                    "endpoint": d.endpoint_id,
                    "event_type": d.event_type,
                    "status": d.status,
                    "attempts": d.attempts,
                    "code": d.last_status_code,
                    "error": d.last_error,
                    "created_at": d.created_at,
                    "next_attempt_at": d.next_attempt_at,
                }
            )
            code = d.last_status_code or "-"
            self.stdout.write(
                f"{d.pk:>8} {d.created_at:%Y-%m-%d %H:%M:%S} ep{d.endpoint_id} {d.event_type:<24} {d.status:<9} "
                f"x{d.attempts} {code} {d.last_error[:60]}"
            )
        self.report(f"{len(rows)} deliveries.", {"deliveries": rows})

    def _replay(self, *, delivery, endpoint, since, until, **options):
        if delivery:
            found = list(WebhookDelivery.objects.filter(pk__in=delivery))
            if len(found) != len(set(delivery)):
                raise self.fail("No such delivery: " + ", ".join(map(str, set(delivery) - {d.pk for d in found})))
            count = deliveries_replay(actor=self.actor, deliveries=found)
        else:
            count = deliveries_replay(
                actor=self.actor,
                endpoint=self._endpoint(endpoint),
                since=self._when(since, "--since"),
                until=self._when(until, "--until"),
            )
        self.report(f"{count} deliveries queued to be sent again.", {"replayed": count})

    def _send(self, *, seconds, **options):
        run = deliveries_send(seconds=seconds)
        data = {"sent": run.sent, "succeeded": run.succeeded, "failed": run.failed, "disabled": run.disabled}
        self.report(f"{run.sent} sent: {run.succeeded} succeeded, {run.failed} failed.", data)
