"""The automation rules API: definitions, activation, dry run on a segment, and the runs with their steps."""

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from cim.accounts.roles import Perm, has_perm
from cim.automation.models import RuleRun
from cim.automation.rules import rule_dry_run
from cim.automation.rules_selectors import rule_get, rule_list, rule_runs
from cim.automation.rules_services import rule_activate, rule_create, rule_delete, rule_update
from cim.core.pagination import keyset_page
from cim.customers.services import PermissionDenied
from cim.segments.selectors import segment_get

router = Router(tags=["automation rules"])
TRIGGER_HELP = (
    '{"event": <catalogue event or "date">, …filters}: `field` (customer.updated), `tag`, `stage`, `segment` '
    "(segment.entered/left, required), `survey`, `form`, `name` (event.tracked, required); for dates "
    '{"event": "date", "kind": "birthday" | "date_field" (+ `field`, `days`) | "since_last_order" | '
    '"since_last_contact" (+ `days`)}. See docs/automation.md.'
)
STEPS_HELP = (
    'Ordered steps: {"action": "set_field"|"add_tag"|"remove_tag"|"set_stage"|"set_owner"|"create_task"|'
    '"add_to_list"|"wait"|"branch", …}; a branch is {"action": "branch", "if": <rule tree>, "then": [...], '
    '"else": [...]}; a wait has `days` or a date `field`.'
)


def _require(request) -> None:
    if not has_perm(request.auth, Perm.AUTOMATION_MANAGE):
        raise PermissionDenied(Perm.AUTOMATION_MANAGE)


class RuleOut(Schema):
    id: int
    name: str
    description: str
    trigger: dict[str, Any]
    conditions: dict[str, Any]
    steps: list[dict[str, Any]]
    is_active: bool
    max_depth: int
    rate_minutes: int
    created_at: datetime
    updated_at: datetime


class RuleIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=500)
    trigger: dict[str, Any] = Field(description=TRIGGER_HELP)
    conditions: dict[str, Any] | None = Field(None, description="A rule tree of the segment rule language")
    steps: list[dict[str, Any]] = Field(description=STEPS_HELP)
    max_depth: int = Field(3, ge=1, le=10, description="Loop guard: how deep runs may cause one another")
    rate_minutes: int = Field(
        60, ge=0, le=525_600, description="At most one run per customer in this time; 0: no limit"
    )


class RulePatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    trigger: dict[str, Any] | None = Field(None, description=TRIGGER_HELP)
    conditions: dict[str, Any] | None = None
    steps: list[dict[str, Any]] | None = Field(None, description=STEPS_HELP)
    max_depth: int | None = Field(None, ge=1, le=10)
    rate_minutes: int | None = Field(None, ge=0, le=525_600)


class StepOut(Schema):
    index: int
    action: str
    outcome: str
    detail: str
    error: str = ""


class RunOut(Schema):
    id: int
    customer: str = Field(description="The customer's number")
    trigger_key: str
    depth: int
    status: RuleRun.Status
    current_step: int
    next_at: datetime | None
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    steps: list[StepOut]

    @staticmethod
    def resolve_customer(obj) -> str:
        return obj.customer.number

    @staticmethod
    def resolve_steps(obj) -> list:
        return list(obj.steps.all())


class RunPage(Schema):
    items: list[RunOut]
    next_cursor: str | None


class DryRunIn(Schema):
    segment_id: int = Field(ge=1, description="The segment (or static list) to try the rule on")
    limit: int = Field(50, ge=1, le=500, description="How many customers to show with their steps")


class PlannedCustomerOut(Schema):
    customer: str
    steps: list[StepOut]


class DryRunOut(Schema):
    affected: int = Field(description="Customers of the segment the conditions let through")
    customers: list[PlannedCustomerOut]


@router.get("/rules", response=list[RuleOut], summary="Automation rules")
def list_rules(request):
    _require(request)
    return rule_list()


@router.post("/rules", response={201: RuleOut}, summary="Create a rule (switched off until activated)")
def create(request, body: RuleIn):
    _require(request)
    return Status(201, rule_create(actor=request.auth, **body.model_dump()))


@router.get("/rules/{automation_rule_id}", response=RuleOut)
def read(request, automation_rule_id: int):
    _require(request)
    return rule_get(pk=automation_rule_id)


@router.patch("/rules/{automation_rule_id}", response=RuleOut, summary="Change a rule")
def update(request, automation_rule_id: int, body: RulePatch):
    _require(request)
    changes = body.model_dump(exclude_unset=True)
    nulls = sorted(name for name, value in changes.items() if value is None and name != "conditions")
    if nulls:
        raise ValidationError({name: [_("This field cannot be null.")] for name in nulls})
    return rule_update(rule=rule_get(pk=automation_rule_id), actor=request.auth, **changes)


@router.delete("/rules/{automation_rule_id}", response={204: None}, summary="Delete a rule and its runs")
def delete(request, automation_rule_id: int):
    _require(request)
    rule_delete(rule=rule_get(pk=automation_rule_id), actor=request.auth)
    return Status(204, None)


@router.post("/rules/{automation_rule_id}/activate", response=RuleOut, summary="Switch a rule on")
def activate(request, automation_rule_id: int):
    _require(request)
    return rule_activate(rule=rule_get(pk=automation_rule_id), actor=request.auth, active=True)


@router.post("/rules/{automation_rule_id}/deactivate", response=RuleOut, summary="Switch a rule off")
def deactivate(request, automation_rule_id: int):
    _require(request)
    return rule_activate(rule=rule_get(pk=automation_rule_id), actor=request.auth, active=False)


@router.post("/rules/{automation_rule_id}/dry-run", response=DryRunOut, summary="Who in a segment a rule would reach")
def dry_run(request, automation_rule_id: int, body: DryRunIn):
    _require(request)
    rule = rule_get(pk=automation_rule_id)
    result = rule_dry_run(rule=rule, segment=segment_get(pk=body.segment_id), user=request.auth, limit=body.limit)
    return {
        "affected": result.affected,
        "customers": [
            {"customer": customer.number, "steps": [vars(step) for step in steps]} for customer, steps in result.shown
        ],
    }


@router.get("/rules/{automation_rule_id}/runs", response=RunPage, summary="A rule's runs with their steps")
def runs(
    request,
    automation_rule_id: int,
    status: RuleRun.Status | None = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
):
    _require(request)
    rule = rule_get(pk=automation_rule_id)
    items, next_cursor = keyset_page(rule_runs(user=request.auth, rule=rule, status=status), cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}
