"""Every write to automation rules: create, change, switch on and off, delete."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm, has_perm
from cim.audit.services import audit_record
from cim.automation.models import Rule, RuleRun
from cim.automation.rules import rules_index_reset
from cim.automation.rules_definition import conditions_validate, steps_validate, trigger_validate
from cim.customers.services import PermissionDenied
from cim.quality.normalize import clean_text

EDITABLE = ("name", "description", "trigger", "conditions", "steps", "max_depth", "rate_minutes")


def _require(actor) -> None:
    if actor is not None and not has_perm(actor, Perm.AUTOMATION_MANAGE):
        raise PermissionDenied(Perm.AUTOMATION_MANAGE)


def _values(changes: dict, rule: Rule | None) -> dict:
    errors: dict[str, list[str]] = {}
    values: dict = {}
    if "name" in changes or rule is None:
        name = clean_text(changes.get("name") or "")
        if not 1 <= len(name) <= 100:
            errors["name"] = [_("A name has 1 to 100 characters.")]
        elif Rule.objects.filter(name=name).exclude(pk=rule.pk if rule else None).exists():
            errors["name"] = [_("A rule with this name exists.")]
        values["name"] = name
    if "description" in changes:
        description = clean_text(changes["description"] or "")
        if len(description) > 500:
            errors["description"] = [_("At most 500 characters.")]
        values["description"] = description
    for name, check in (("trigger", trigger_validate), ("conditions", conditions_validate), ("steps", steps_validate)):
        if name in changes or rule is None:
            try:
                values[name] = check(changes.get(name))
            except ValidationError as error:
                errors.update(error.message_dict)
    for name, low, high in (("max_depth", 1, 10), ("rate_minutes", 0, 525_600)):
        if name in changes:
            value = changes[name]
            whole = not isinstance(value, bool) and isinstance(value, int | str) and str(value).strip().isdigit()
            if whole and low <= int(value) <= high:
                values[name] = int(value)
            else:
                errors[name] = [_("Give a whole number from %(low)s to %(high)s.") % {"low": low, "high": high}]
    if errors:
        raise ValidationError(errors)
    return values


def _changed() -> None:
    rules_index_reset()
    transaction.on_commit(rules_index_reset)


def rule_create(*, actor, name: str, trigger, steps, conditions=None, description: str = "", **options) -> Rule:
    """A new rule, switched off until someone activates it (after a dry run)."""
    _require(actor)
    changes = {"name": name, "description": description, "trigger": trigger, "conditions": conditions}
    changes.update(steps=steps, **options)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationError({key: [_("This field cannot be set.")] for key in sorted(unknown)})
    with transaction.atomic():
        values = _values(changes, None)
        rule = Rule.objects.create(**values, created_by=actor if actor and actor.is_authenticated else None)
        audit_record(actor=actor, action="rule.create", target=rule, fields=list(values))
    return rule


def rule_update(*, rule: Rule, actor, **changes) -> Rule:
    """Change a rule. Changing its steps ends its unfinished runs: their place in the old steps means nothing in
    the new ones."""
    _require(actor)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationError({key: [_("This field cannot be changed.")] for key in sorted(unknown)})
    with transaction.atomic():
        rule = Rule.objects.select_for_update().get(pk=rule.pk)
        values = _values(changes, rule)
        changed = [key for key, value in values.items() if getattr(rule, key) != value]
        if not changed:
            return rule
        for key in changed:
            setattr(rule, key, values[key])
        rule.save(update_fields=[*changed, "updated_at"])
        if "steps" in changed:
            RuleRun.objects.filter(rule=rule, status__in=(RuleRun.Status.PENDING, RuleRun.Status.WAITING)).update(
                status=RuleRun.Status.STOPPED, error=_("Stopped: the rule's steps changed."), next_at=None
            )
        audit_record(actor=actor, action="rule.update", target=rule, fields=changed)
        _changed()
    return rule


def rule_activate(*, rule: Rule, actor, active: bool = True) -> Rule:
    """Switch a rule on (it reacts to events from now on) or off (its runs pause where they are)."""
    _require(actor)
    if rule.is_active == active:
        return rule
    with transaction.atomic():
        rule.is_active = active
        # A date rule switched on today selects today's customers at its next hourly evaluation.
        rule.dates_done_on = None
        rule.save(update_fields=["is_active", "dates_done_on", "updated_at"])
        audit_record(actor=actor, action="rule.activate" if active else "rule.deactivate", target=rule)
        _changed()
    return rule


def rule_delete(*, rule: Rule, actor) -> None:
    """Delete a rule with its runs and their step logs."""
    _require(actor)
    with transaction.atomic():
        audit_record(actor=actor, action="rule.delete", target=rule, note=rule.name)
        rule.delete()
        _changed()
