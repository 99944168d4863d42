"""Every write to segments: definitions, static-list members, and the set-based refresh of memberships and the
tags that tag rules keep."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm, has_perm
from cim.audit.services import audit_record, audit_record_bulk
from cim.automation.events import event_wanted, events_publish
from cim.customers import choices as c
from cim.customers.models import Customer, CustomerTag, Tag
from cim.customers.services import PermissionDenied
from cim.privacy.models import ProcessingRestriction
from cim.quality.normalize import clean_text
from cim.segments.models import Segment, SegmentMember
from cim.segments.rules import referenced_segments, rules_condition, rules_validate

BATCH = 5000
MATCHING = "cim_segment_matching"
EDITABLE = ("name", "description", "kind", "rules", "tag")


def _require(actor, perm: str = Perm.SEGMENT_MANAGE) -> None:
    if actor is not None and not has_perm(actor, perm):
        raise PermissionDenied(perm)


def current_customers():
    """Customers a segment may hold: not archived, not merged away, and not restricted to storage at their request
    (GDPR Art. 18, PIPL Art. 44): a segment is a use of their data."""
    return (
        Customer.objects.exclude(status=c.Status.ARCHIVED)
        .filter(merged_into__isnull=True)
        .exclude(pk__in=ProcessingRestriction.objects.values("customer_id"))
    )


def _values(changes: dict, segment: Segment | None) -> dict:
    errors: dict[str, list[str]] = {}
    values = {}
    if "name" in changes or segment is None:
        name = clean_text(changes.get("name") or "")
        if not 1 <= len(name) <= 100:
            errors["name"] = [_("A name has 1 to 100 characters.")]
        elif Segment.objects.filter(name=name).exclude(pk=segment.pk if segment else None).exists():
            errors["name"] = [_("A segment with this name exists.")]
        values["name"] = name
    if "description" in changes:
        description = clean_text(changes["description"] or "")
        if len(description) > 500:
            errors["description"] = [_("At most 500 characters.")]
        values["description"] = description
    kind = changes.get("kind", segment.kind if segment else Segment.Kind.DYNAMIC)
    if kind not in Segment.Kind.values:
        errors["kind"] = [_("Choose dynamic or static.")]
    elif segment is not None and kind != segment.kind:
        errors["kind"] = [_("A segment's kind cannot change; create a new segment.")]
    values["kind"] = kind
    if kind == Segment.Kind.DYNAMIC and ("rules" in changes or segment is None):
        try:
            values["rules"] = rules_validate(changes.get("rules"), segment_id=segment.pk if segment else None)
        except ValidationError as error:
            errors.update(error.message_dict)
        else:
            if segment is not None and _cycles(segment.pk, values["rules"]):
                errors["rules"] = [_("These rules name a segment that names this one: a loop.")]
    if "tag" in changes:
        values["tag"] = _tag(changes["tag"], segment, errors)
    if errors:
        raise ValidationError(errors)
    return values


def _tag(name, segment: Segment | None, errors: dict) -> Tag | None:
    name = clean_text(name or "")
    if not name:
        return None
    if len(name) > 50:
        errors["tag"] = [_("A tag has 1 to 50 characters.")]
        return None
    tag, _created = Tag.objects.get_or_create(name=name)
    owner = Segment.objects.filter(tag=tag).exclude(pk=segment.pk if segment else None).first()
    if owner is not None:
        errors["tag"] = [_("The segment “%(name)s” already keeps this tag.") % {"name": owner.name}]
    return tag


def _cycles(segment_id: int, rules: dict) -> bool:
    """Whether following the segments these rules name leads back to `segment_id`."""
    seen, todo = set(), referenced_segments(rules)
    while todo:
        pk = todo.pop()
        if pk == segment_id:
            return True
        if pk not in seen:
            seen.add(pk)
            for other in Segment.objects.filter(pk=pk).values_list("rules", flat=True):
                todo |= referenced_segments(other or {"rules": []})
    return False


def segment_create(
    *, actor, name: str, kind: str = Segment.Kind.DYNAMIC, rules=None, description="", tag=""
) -> Segment:
    """A new segment; a dynamic one is filled at once."""
    _require(actor)
    with transaction.atomic():
        values = _values({"name": name, "description": description, "kind": kind, "rules": rules, "tag": tag}, None)
        segment = Segment.objects.create(**values, created_by=actor if actor and actor.is_authenticated else None)
        audit_record(actor=actor, action="segment.create", target=segment, fields=list(values))
        segment_refresh(segment=segment, actor=actor)
    return segment


def segment_update(*, segment: Segment, actor, **changes) -> Segment:
    """Change a segment's definition; members and its tag follow at once."""
    _require(actor)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationError({name: [_("This field cannot be changed.")] for name in sorted(unknown)})
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(pk=segment.pk)
        values = _values(changes, segment)
        changed = [name for name, value in values.items() if getattr(segment, name) != value]
        if not changed:
            return segment
        for name in changed:
            setattr(segment, name, values[name])
        segment.save(update_fields=[*changed, "updated_at"])
        audit_record(actor=actor, action="segment.update", target=segment, fields=changed)
        segment_refresh(segment=segment, actor=actor)
    return segment


def segment_delete(*, segment: Segment, actor) -> None:
    """Delete a segment and its memberships; tags it kept stay on the customers. Refused while another segment's
    rules name it, or a campaign or care plan sends to it."""
    _require(actor)
    users = [s.name for s in Segment.objects.exclude(pk=segment.pk) if segment.pk in referenced_segments(s.rules or {})]
    if users:
        raise ValidationError({"segment": [_("Used by the rules of: %(names)s.") % {"names": ", ".join(users)}]})
    try:
        with transaction.atomic():
            audit_record(actor=actor, action="segment.delete", target=segment, note=segment.name)
            segment.delete()
    except ProtectedError as error:  # a campaign or a care plan still sends to it
        names = sorted({f"{obj._meta.verbose_name} “{obj}”" for obj in error.protected_objects})
        raise ValidationError({"segment": [_("Still used by %(names)s.") % {"names": ", ".join(names)}]}) from None


def segment_members_add(*, segment: Segment, customer_ids: Iterable[int], actor) -> int:
    """Add customers to a static list; returns how many were new to it."""
    _require(actor, Perm.CUSTOMER_TAG)
    if segment.kind != Segment.Kind.STATIC:
        raise ValidationError({"segment": [_("Only a static list takes members by hand.")]})
    ids = list(dict.fromkeys(customer_ids))
    with transaction.atomic():
        have = set(
            SegmentMember.objects.filter(segment=segment, customer_id__in=ids).values_list("customer_id", flat=True)
        )
        new = [pk for pk in ids if pk not in have]
        now = timezone.now()
        SegmentMember.objects.bulk_create(
            [SegmentMember(segment=segment, customer_id=pk, added_at=now) for pk in new], batch_size=BATCH
        )
        if new:
            audit_record(actor=actor, action="segment.members_add", target=segment, note=str(len(new)))
            events_publish("segment.entered", customer_ids=new, data={"segment": segment.pk})
        _finish(segment, actor, now)
    return len(new)


def segment_members_remove(*, segment: Segment, customer_ids: Iterable[int], actor) -> int:
    """Take customers off a static list; returns how many were on it."""
    _require(actor, Perm.CUSTOMER_TAG)
    if segment.kind != Segment.Kind.STATIC:
        raise ValidationError({"segment": [_("Only a static list takes members by hand.")]})
    with transaction.atomic():
        members = SegmentMember.objects.filter(segment=segment, customer_id__in=list(customer_ids))
        gone = list(members.values_list("customer_id", flat=True))
        removed, _detail = members.delete()
        if removed:
            audit_record(actor=actor, action="segment.members_remove", target=segment, note=str(removed))
            events_publish("segment.left", customer_ids=gone, data={"segment": segment.pk})
        _finish(segment, actor, timezone.now())
    return removed


@dataclass
class SegmentRun:
    segment: Segment
    entered: int
    left: int
    tagged: int
    untagged: int


def segment_refresh(*, segment: Segment, actor=None) -> SegmentRun:
    """Bring a segment's members in line with its rules, and its tag with its members, in set-based SQL."""
    now = timezone.now()
    entered = left = 0
    size = None
    with transaction.atomic():
        if segment.kind == Segment.Kind.DYNAMIC:
            entered, left, size = _sync_members(segment, now)
        tagged, untagged = _finish(segment, actor, now, size)
    return SegmentRun(segment=segment, entered=entered, left=left, tagged=tagged, untagged=untagged)


def segment_refresh_customers(*, segment: Segment, customer_ids: Iterable[int]) -> SegmentRun:
    """Bring a dynamic segment's membership of just these customers (and its tag on them) in line with its rules:
    what automation does right after those customers changed, instead of waiting for the hourly refresh."""
    ids = sorted(set(customer_ids))
    tagged = untagged = 0
    with transaction.atomic():
        entered, left, _matching = _sync_members(segment, timezone.now(), ids)
        if segment.tag_id and (entered or left):
            tagged, untagged = _tag_members(segment, None, ids)
        if entered or left:
            Segment.objects.filter(pk=segment.pk).update(size=F("size") + entered - left)
    return SegmentRun(segment=segment, entered=entered, left=left, tagged=tagged, untagged=untagged)


def _sync_members(segment: Segment, now, customer_ids: list[int] | None = None) -> tuple[int, int, int]:
    """(entered, left, matching): the members made exactly the customers (of `customer_ids`) the rules match."""
    customers = current_customers() if customer_ids is None else current_customers().filter(pk__in=customer_ids)
    matching = (
        customers.filter(rules_condition(segment.rules or {"rules": []}))
        .annotate(member_id=F("pk"))
        .values("member_id")
        .order_by()
    )
    sql, params = matching.query.sql_with_params()
    table = connection.ops.quote_name(SegmentMember._meta.db_table)
    scope, scope_params = "", []
    if customer_ids is not None:
        scope = f" AND customer_id IN ({', '.join(['%s'] * len(customer_ids))})" if customer_ids else " AND 1 = 0"
        scope_params = list(customer_ids)
    # The ids come back only when a rule or a webhook reacts to this segment's joins and leaves.
    wanted = any(event_wanted(name, {"segment": segment.pk}) for name in ("segment.entered", "segment.left"))
    returning = " RETURNING customer_id" if wanted else ""
    with connection.cursor() as cursor:
        # The rules are evaluated once, into a table that the removal, the addition and the size all read.
        cursor.execute(f"CREATE TEMPORARY TABLE {MATCHING} (customer_id bigint PRIMARY KEY)")
        cursor.execute(f"INSERT INTO {MATCHING} (customer_id) {sql}", params)
        count = cursor.rowcount
        # NOT EXISTS, not NOT IN: PostgreSQL hashes a NOT IN list only within work_mem, and beyond it scans the
        # whole list again for every member.
        cursor.execute(
            f"DELETE FROM {table} WHERE segment_id = %s{scope} "
            f"AND NOT EXISTS (SELECT 1 FROM {MATCHING} AS matching "
            f"WHERE matching.customer_id = {table}.customer_id){returning}",
            [segment.pk, *scope_params],
        )
        left = _ids_or_count(cursor, returning, "segment.left", segment)
        # EXCEPT reads the members before the first row goes in. An anti-join may probe the members once per row
        # while inserting, and on PostgreSQL each probe then walks past the rows this statement already added
        # (bench/pg_scale.py at 1M customers: minutes for one segment, slowing to about a hundred rows a second).
        cursor.execute(
            f"INSERT INTO {table} (segment_id, customer_id, added_at) "
            f"SELECT %s, joining.customer_id, %s FROM (SELECT customer_id FROM {MATCHING} "
            f"EXCEPT SELECT customer_id FROM {table} WHERE segment_id = %s) AS joining{returning}",
            [segment.pk, connection.ops.adapt_datetimefield_value(now), segment.pk],
        )
        entered = _ids_or_count(cursor, returning, "segment.entered", segment)
        cursor.execute(f"DROP TABLE {MATCHING}")
    return entered, left, count


def _ids_or_count(cursor, returning: str, event: str, segment: Segment) -> int:
    """How many rows the statement changed; with RETURNING, also each customer's event."""
    if not returning:
        return cursor.rowcount
    ids = [row[0] for row in cursor.fetchall()]
    events_publish(event, customer_ids=ids, data={"segment": segment.pk})
    return len(ids)


def _finish(segment: Segment, actor, now, size: int | None = None) -> tuple[int, int]:
    """The size (counted unless the caller knows it), the refresh time, and the tag rule: exactly the members carry
    the segment's tag."""
    tagged = untagged = 0
    if segment.tag_id:
        tagged, untagged = _tag_members(segment, actor)
    if size is None:
        size = SegmentMember.objects.filter(segment=segment, customer__in=current_customers()).count()
    segment.size = size
    segment.refreshed_at = now
    Segment.objects.filter(pk=segment.pk).update(size=segment.size, refreshed_at=now)
    return tagged, untagged


def _tag_members(segment: Segment, actor, customer_ids: list[int] | None = None) -> tuple[int, int]:
    """Exactly the members carry the segment's tag (of `customer_ids` only, when given)."""
    members = SegmentMember.objects.filter(segment=segment).values("customer_id")
    holders = CustomerTag.objects.filter(tag_id=segment.tag_id)
    if customer_ids is not None:
        members = members.filter(customer_id__in=customer_ids)
        holders = holders.filter(customer_id__in=customer_ids)
    # ~Exists, not exclude(…__in=…): PostgreSQL hashes a NOT IN list only within work_mem (see _sync_members).
    missing = list(
        members.filter(~Exists(holders.filter(customer_id=OuterRef("customer_id")))).values_list(
            "customer_id", flat=True
        )
    )
    extra = list(
        holders.filter(~Exists(members.filter(customer_id=OuterRef("customer_id")))).values_list(
            "customer_id", flat=True
        )
    )
    user = actor if actor is not None and actor.is_authenticated else None
    for start in range(0, len(missing), BATCH):
        CustomerTag.objects.bulk_create(
            [CustomerTag(customer_id=pk, tag_id=segment.tag_id, added_by=user) for pk in missing[start : start + BATCH]]
        )
    for start in range(0, len(extra), BATCH):
        holders.filter(customer_id__in=extra[start : start + BATCH]).delete()
    name = segment.tag.name
    for ids, sign in ((missing, "+"), (extra, "-")):
        if ids:
            # Shown on each customer's timeline as a tag change, with the segment that made it.
            audit_record_bulk(
                actor=actor,
                action="customer.tag",
                target_type="customers.customer",
                target_ids=ids,
                fields=["tags"],
                note=f"{sign}{name} ({segment.name})",
            )
    return len(missing), len(extra)


def segments_refresh(*, actor=None) -> list[SegmentRun]:
    """Refresh every segment, each after the segments its rules name."""
    segments = {s.pk: s for s in Segment.objects.all()}
    done: set[int] = set()
    runs = []

    def visit(pk: int) -> None:
        if pk in done or pk not in segments:
            return
        done.add(pk)
        for other in referenced_segments(segments[pk].rules or {"rules": []}):
            visit(other)
        runs.append(segment_refresh(segment=segments[pk], actor=actor))

    for pk in segments:
        visit(pk)
    return runs
