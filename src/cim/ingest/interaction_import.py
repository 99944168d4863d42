"""Importing interactions: the call logs of a call centre, the visit and follow-up records (跟进记录) of another CRM,
one row an interaction, matched to existing customers as orders are and never creating one.

Kinds, directions and outcomes are read from the words exports use (电话回访 is a call, 呼入 inbound, 未接通 no
answer); an outcome no word names is kept in the details rather than dropped. A row its customer already has
(same kind, time, subject and details) counts as unchanged, so a file can be imported twice.
"""

import hashlib
import math
import re
from datetime import UTC, datetime
from functools import lru_cache

from django.db import connection
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.accounts.models import User
from cim.activities.models import Interaction
from cim.audit.services import audit_record
from cim.ingest.history_rows import (
    CUSTOMER_KEY_TARGETS,
    customer_keys,
    customer_of,
    customers_found,
    history_auto_map,
    history_mapping_errors,
    parse_time,
)
from cim.ingest.importer import BatchImporter, ImportCounts
from cim.ingest.mapping import fold_header
from cim.ingest.models import ImportJob
from cim.ingest.readers import RowProblem

# target → (label, headers that mean it, compared folded like customer headers).
INTERACTION_TARGETS: dict[str, tuple] = {
    **CUSTOMER_KEY_TARGETS,
    "occurred_at": (
        gettext_lazy("Time"),
        "时间 日期 跟进时间 沟通时间 联系时间 拜访时间 通话时间 呼叫时间 开始时间 记录时间 "
        "occurredat time date datetime calltime starttime",
    ),
    "kind": (gettext_lazy("Kind"), "类型 跟进方式 沟通方式 联系类型 互动类型 方式 kind type"),
    "direction": (gettext_lazy("Direction"), "方向 呼叫类型 呼叫方向 通话类型 direction calltype"),
    "duration": (gettext_lazy("Duration"), "时长 通话时长 持续时间 duration talktime"),
    "subject": (gettext_lazy("Subject"), "主题 标题 事项 摘要 subject title"),
    "body": (
        gettext_lazy("Details"),
        "内容 详情 跟进内容 沟通内容 跟进记录 沟通记录 记录 备注 描述 body content details notes note description",
    ),
    "outcome": (gettext_lazy("Outcome"), "结果 跟进结果 通话结果 沟通结果 通话状态 outcome result"),
    "staff": (
        gettext_lazy("Staff (user names or names)"),
        "跟进人 负责人 销售 坐席 客服 员工 经办人 拜访人 staff agent salesrep",
    ),
    "contacts": (gettext_lazy("Customer's people present"), "客户联系人 参与人 对接人 contacts attendees"),
}
Kind, Direction, Outcome = Interaction.Kind, Interaction.Direction, Interaction.Outcome
# Judged by the first of these whose words a value holds, the most telling first: 微信电话 is WeChat.
KIND_HINTS = (
    (Kind.WECHAT, "微信 企微 wechat weixin"),
    (Kind.SMS, "短信 sms"),
    (Kind.EMAIL, "邮件 email"),
    (Kind.VISIT, "拜访 上门 走访 到店 来访 visit"),
    (Kind.MEETING, "会议 面谈 会面 见面 meeting"),
    (Kind.CALL, "电话 通话 呼入 呼出 来电 去电 外呼 call phone"),
    (Kind.NOTE, "备注 笔记 记录 其他 note other"),
)
DIRECTION_HINTS = (
    (Direction.OUTBOUND, "呼出 去电 外呼 拨出 拨打 outbound outgoing"),
    (Direction.INBOUND, "呼入 来电 接听 inbound incoming"),
)
OUTCOME_HINTS = (
    (Outcome.NO_ANSWER, "未接 未接通 无人接听 占线 关机 停机 空号 noanswer missed busy unanswered"),
    (Outcome.LEFT_MESSAGE, "留言 语音信箱 leftmessage voicemail"),
    (Outcome.NOT_INTERESTED, "无意向 没兴趣 不感兴趣 拒绝 notinterested"),
    (Outcome.INTERESTED, "有意向 意向 感兴趣 interested"),
    (Outcome.FOLLOW_UP, "待跟进 需跟进 再联系 followup"),
    (Outcome.RESOLVED, "已解决 解决 resolved"),
    (Outcome.REACHED, "接通 已接通 已联系 成功 reached answered connected"),
)
_CLOCK = re.compile(r"^(?:(\d{1,4}):)?(\d{1,2}):(\d{1,2})$")
_SPOKEN = re.compile(
    r"^(?:(\d{1,4})\s*(?:小时|时|h))?\s*(?:(\d{1,6})\s*(?:分钟|分|m|min))?\s*(?:(\d{1,8})\s*(?:秒钟|秒|s|sec))?$"
)
MAX_MINUTES = 7 * 24 * 60  # a week: longer is not the length of one interaction
_SECONDS_HEADER = re.compile(r"秒|\bsec|\(s\)|（s）", re.IGNORECASE)
_NAMES = re.compile(r"[,，;；、|/\n]+")
WANTED = "cim_interactions_wanted"  # SQLite: the (customer, time) pairs of a batch, joined to the interactions

# One row after parsing, a plain tuple because it crosses between processes:
# (row number, errors [(column, message)], customer keys,
#  (kind, direction, occurred_at in UTC, duration in minutes, subject, body, outcome), staff names, contacts).
PreparedInteraction = tuple[int, list, tuple, tuple, tuple, list]


@lru_cache(maxsize=1024)
def _hinted(hints: tuple, text: str) -> str:
    folded = fold_header(text)
    return next((value for value, words in hints if any(fold_header(w) in folded for w in words.split())), "")


def interaction_kind(text: str) -> str:
    """The kind an export's word means ("" when none): 电话回访 → call, 上门拜访 → visit, 微信沟通 → wechat."""
    folded = fold_header(text)
    return folded if folded in Kind.values else _hinted(KIND_HINTS, text)


def parse_minutes(text: str, *, in_seconds: bool) -> int | None:
    """A duration as call centres write it (00:05:32, 5:32, 5分32秒, 1小时, 332 with `in_seconds`), in whole
    minutes, rounded up as phone bills count."""
    text = text.strip().lower()
    try:
        number = float(text)
    except ValueError:
        match = _CLOCK.match(text) or _SPOKEN.match(text)
        if match is None or not any(match.groups()):
            return None
        hours, minutes, seconds = (int(part or 0) for part in match.groups())
        if match.re is _CLOCK and seconds > 59:
            return None
        seconds += 60 * minutes + 3600 * hours
    else:
        if not math.isfinite(number) or number < 0:
            return None
        seconds = number if in_seconds else number * 60
    minutes = math.ceil(seconds / 60)
    return minutes if minutes <= MAX_MINUTES else None


def interaction_auto_map(columns: list[str]) -> dict[str, str]:
    return history_auto_map(INTERACTION_TARGETS, columns)


def interaction_target_choices() -> list[tuple[str, str]]:
    return [(target, str(label)) for target, (label, _h) in INTERACTION_TARGETS.items()]


def interaction_mapping_errors(mapping: dict[str, str], columns: list[str]) -> list[str]:
    problems = history_mapping_errors(INTERACTION_TARGETS, mapping, columns)
    if "occurred_at" not in mapping.values():
        problems.append(_("Map a column to the time of the interaction."))
    return problems


class InteractionPreparer:
    """Parses rows without touching the database, so it can run in another process."""

    def __init__(self, job: ImportJob):
        self.column = {target: column for column, target in job.mapping.items() if target}
        self.in_seconds = bool(_SECONDS_HEADER.search(self.column.get("duration", "")))
        # A call log without a kind column holds calls; another file without one, notes.
        self.default_kind = Kind.CALL if {"direction", "duration"} & set(self.column) else Kind.NOTE

    def __call__(self, batch: list[tuple[int, dict | RowProblem]]) -> list[PreparedInteraction]:
        return [self.prepare(number, record) for number, record in batch]

    def prepare(self, number: int, record: dict | RowProblem) -> PreparedInteraction:
        if isinstance(record, RowProblem):
            return number, [("", record.message)], (), (), (), []
        text = {target: str(record.get(column) or "").strip() for target, column in self.column.items()}
        errors = []
        keys = customer_keys(text, self.column, errors)
        moment = parse_time(text["occurred_at"]) if text.get("occurred_at") else None
        if moment is None:
            errors.append((self.column["occurred_at"], _("Enter a time like 2024-05-01 13:05 or 2024/5/1.")))
        kind = interaction_kind(text["kind"]) if text.get("kind") else self.default_kind
        if not kind:
            errors.append((self.column["kind"], _("Unknown kind of interaction.")))
        duration = None
        if text.get("duration"):
            duration = parse_minutes(text["duration"], in_seconds=self.in_seconds)
            if duration is None:
                errors.append((self.column["duration"], _("Enter a duration like 00:05:32, 5分32秒 or 90.")))
        subject = text.get("subject", "")
        if len(subject) > 200:
            errors.append((self.column["subject"], _("The subject is longer than 200 characters.")))
        if errors:
            return number, errors, (), (), (), []
        body = [text.get("body", "")]
        direction = _hinted(DIRECTION_HINTS, text["direction"]) if text.get("direction") else ""
        outcome = _hinted(OUTCOME_HINTS, text["outcome"]) if text.get("outcome") else ""
        # Words none of the hints knows are kept where a person reads them.
        for target, value in (("direction", direction), ("outcome", outcome)):
            if text.get(target) and not value:
                body.append(f"{self.column[target]}: {text[target]}")
        staff = tuple(name.strip() for name in _NAMES.split(text.get("staff", "")) if name.strip())
        contacts = [name.strip() for name in _NAMES.split(text.get("contacts", "")) if name.strip()]
        details = (kind, direction, moment.astimezone(UTC), duration, subject, "\n".join(b for b in body if b), outcome)
        return number, [], keys, details, staff, contacts


def _staff_by_name() -> dict[str, int]:
    """Active users by user name and by name, as exports write staff: 王芳 (姓名), Fang Wang, wangfang."""
    staff: dict[str, int] = {}
    for pk, username, first, last in User.objects.filter(is_active=True).values_list(
        "pk", "username", "first_name", "last_name"
    ):
        for name in (f"{last}{first}", f"{first} {last}", f"{last} {first}", username):
            if name.strip():
                staff.setdefault(fold_header(name), pk)
    return staff


def _aware(moment: datetime) -> datetime:
    """A time as the database returns it to a plain query: aware on PostgreSQL, naive in UTC on SQLite."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fingerprint(customer_id: int, kind: str, occurred_at: datetime, subject: str, body: str) -> bytes:
    """What makes two interactions the same one, in 16 bytes (a run keeps those of every row it counted)."""
    text = "\x1f".join((str(customer_id), kind, occurred_at.astimezone(UTC).isoformat(), subject, body))
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class InteractionImporter(BatchImporter):
    """The state one run of an interaction import carries from batch to batch."""

    preparer = InteractionPreparer

    def __init__(self, job: ImportJob, actor, dry_run: bool):
        super().__init__(job, actor, dry_run)
        self.staff = _staff_by_name()
        self.staff_column = next((column for column, target in job.mapping.items() if target == "staff"), "")
        # Rows of this run already counted, so that a dry run (whose batches are rolled back) counts as the import.
        self.seen: set[bytes] = set()

    def _write(self, batch: list[PreparedInteraction], errors: list, counts: ImportCounts) -> None:
        good = []
        for line in batch:
            if line[1]:
                self._reject(errors, counts, line[0], line[1])
            else:
                good.append(line)
        found = customers_found([line[2] for line in good], self.system)
        rows = []
        for row, _errors, keys, details, staff_names, contacts in good:
            customer_id = customer_of(found, keys)
            if customer_id is None:
                self._reject(errors, counts, row, [("", _("No customer matches this row; none was created."))])
                continue
            staff = [self.staff.get(fold_header(name)) for name in staff_names]
            unknown = [name for name, pk in zip(staff_names, staff, strict=True) if pk is None]
            if unknown:
                message = _("Unknown staff: %(names)s.") % {"names": ", ".join(unknown)}
                self._reject(errors, counts, row, [(self.staff_column, message)])
                continue
            rows.append((customer_id, details, staff, contacts))
        existing = self._existing(rows)
        new = []
        for customer_id, details, staff, contacts in rows:
            kind, _direction, occurred_at, _duration, subject, body, _outcome = details
            fingerprint = _fingerprint(customer_id, kind, occurred_at, subject, body)
            if fingerprint in self.seen or fingerprint in existing:
                counts.unchanged += 1
                continue
            self.seen.add(fingerprint)
            new.append((customer_id, details, staff, contacts))
        self._insert(new)
        counts.created += len(new)

    def _existing(self, rows: list) -> set[bytes]:
        """Fingerprints of the interactions the batch's customers already have at the batch's times: one lookup
        in the (customer, time) index per pair, however long the customers' histories."""
        if not rows:
            return set()
        pairs = sorted({(customer_id, details[2]) for customer_id, details, _s, _p in rows})
        table = connection.ops.quote_name(Interaction._meta.db_table)
        select = f"SELECT i.customer_id, i.kind, i.occurred_at, i.subject, i.body FROM {table} i JOIN "
        on = " ON i.customer_id = w.customer_id AND i.occurred_at = w.occurred_at"
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                customers, times = zip(*pairs, strict=True)
                cursor.execute(
                    f"{select}unnest(%s::bigint[], %s::timestamptz[]) AS w (customer_id, occurred_at){on}",
                    [list(customers), list(times)],
                )
            else:
                cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {WANTED} (customer_id integer, occurred_at text)")
                cursor.execute(f"DELETE FROM {WANTED}")
                adapt = connection.ops.adapt_datetimefield_value
                cursor.executemany(f"INSERT INTO {WANTED} VALUES (%s, %s)", [(c, adapt(t)) for c, t in pairs])
                cursor.execute(f"{select}{WANTED} w{on}")
            return {_fingerprint(c, kind, _aware(at), subject, body) for c, kind, at, subject, body in cursor}

    def _insert(self, new: list) -> None:
        if not new:
            return
        interactions = Interaction.objects.bulk_create([self._interaction(*row) for row in new], batch_size=2000)
        Interaction.staff.through.objects.bulk_create(
            [
                Interaction.staff.through(interaction_id=interaction.pk, user_id=user_id)
                for interaction, (_c, _d, staff, _p) in zip(interactions, new, strict=True)
                for user_id in dict.fromkeys(staff)
            ],
            batch_size=2000,
        )
        # One entry per batch, not per interaction: each names its import job, which this entry names.
        audit_record(actor=self.actor, action="interaction.import", target=self.job, note=f"{len(new)} interactions")

    def _interaction(self, customer_id: int, details: tuple, staff: list[int], contacts: list[str]) -> Interaction:
        kind, direction, occurred_at, duration, subject, body, outcome = details
        return Interaction(
            customer_id=customer_id,
            kind=kind,
            direction=direction,
            occurred_at=occurred_at,
            duration_minutes=duration,
            subject=subject,
            body=body,
            outcome=outcome,
            contacts=contacts,
            logged_by_id=staff[0] if staff else None,  # who made the call or the visit logged it
            import_job=self.job,
        )
