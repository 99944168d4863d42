"""Roles, what each may do, and which customers each sees. The one table every check reads."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMINISTRATOR = "administrator", _("Administrator")
    MANAGER = "manager", _("Manager")
    SALES = "sales", _("Sales")
    SERVICE = "service", _("Service")
    MARKETING = "marketing", _("Marketing")
    ANALYST = "analyst", _("Analyst")
    AUDITOR = "auditor", _("Auditor")


class Scope(models.TextChoices):
    OWN = "own", _("Own customers")
    TEAM = "team", _("Team's customers")
    DEPARTMENT = "department", _("Department's customers (the team and the teams under it)")
    ALL = "all", _("All customers")


class Perm(models.TextChoices):
    CUSTOMER_VIEW = "customer.view", _("View customers")
    CUSTOMER_CHANGE = "customer.change", _("Create and edit customers")
    CUSTOMER_ARCHIVE = "customer.archive", _("Archive customers")
    CUSTOMER_TAG = "customer.tag", _("Tag customers")
    CUSTOMER_REVEAL = "customer.reveal", _("Reveal masked personal data (audited)")
    CUSTOMER_EXPORT = "customer.export", _("Export customers")
    CUSTOMER_IMPORT = "customer.import", _("Import customers")
    CUSTOMER_MERGE = "customer.merge", _("Merge and unmerge customers")
    CUSTOMER_SHARE = "customer.share", _("Share customers, lists and segments with other teams")
    QUALITY_MANAGE = "quality.manage", _("Scan for duplicates and train the matching model")
    ACTIVITY_LOG = "activity.log", _("Log interactions and follow-up tasks")
    ORDER_MANAGE = "order.manage", _("Create, refund and cancel orders; manage products")
    ORDER_IMPORT = "order.import", _("Import orders and interactions")
    TICKET_HANDLE = "ticket.handle", _("Handle tickets and complaints")
    SURVEY_MANAGE = "survey.manage", _("Send satisfaction surveys and read their results")
    PERFORMANCE_VIEW = "performance.view", _("View staff performance")
    ANALYTICS_VIEW = "analytics.view", _("View customer analytics (RFM, lifetime value)")
    ANALYTICS_MANAGE = "analytics.manage", _("Enter acquisition costs and schedule reports")
    SEGMENT_MANAGE = "segment.manage", _("Create and edit segments, static lists and tag rules")
    CARE_MANAGE = "care.manage", _("Manage customer care plans and run them")
    CAMPAIGN_MANAGE = "campaign.manage", _("Create, send, pause and cancel email campaigns")
    SETTINGS_MANAGE = "settings.manage", _("Manage tags, custom fields and numbering")
    USERS_MANAGE = "users.manage", _("Manage users and teams")
    AUDIT_VIEW = "audit.view", _("View the audit log")
    PRIVACY_MANAGE = "privacy.manage", _("Handle data-subject requests, erasure, retention and privacy registers")
    BACKUP_MANAGE = "backup.manage", _("Make and verify backups")
    AUTOMATION_MANAGE = "automation.manage", _("Build, dry-run and switch on automation rules")
    WEBHOOK_MANAGE = "webhook.manage", _("Manage webhook endpoints and replay deliveries")
    MESSAGE_SEND = "message.send", _("Send messages to customers and manage message templates")


_EDITOR = {
    Perm.CUSTOMER_REVEAL,
    Perm.CUSTOMER_VIEW,
    Perm.CUSTOMER_CHANGE,
    Perm.CUSTOMER_ARCHIVE,
    Perm.CUSTOMER_TAG,
    Perm.CUSTOMER_SHARE,
    Perm.ACTIVITY_LOG,
}
_SERVICE = {Perm.TICKET_HANDLE, Perm.SURVEY_MANAGE}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.ADMINISTRATOR: frozenset(Perm),
    Role.MANAGER: frozenset(
        _EDITOR
        | _SERVICE
        | {
            Perm.AUDIT_VIEW,
            Perm.CUSTOMER_EXPORT,
            Perm.CUSTOMER_IMPORT,
            Perm.CUSTOMER_MERGE,
            Perm.ORDER_MANAGE,
            Perm.ORDER_IMPORT,
            Perm.PERFORMANCE_VIEW,
            Perm.ANALYTICS_VIEW,
            Perm.ANALYTICS_MANAGE,
            Perm.SEGMENT_MANAGE,
            Perm.AUTOMATION_MANAGE,
            Perm.CARE_MANAGE,
            Perm.CAMPAIGN_MANAGE,
            Perm.MESSAGE_SEND,
        }
    ),
    Role.SALES: frozenset(_EDITOR | {Perm.ORDER_MANAGE}),
    Role.SERVICE: frozenset(
        _SERVICE
        | {
            Perm.CUSTOMER_VIEW,
            Perm.CUSTOMER_CHANGE,
            Perm.CUSTOMER_REVEAL,
            Perm.CUSTOMER_TAG,
            Perm.CUSTOMER_SHARE,
            Perm.ACTIVITY_LOG,
        }
    ),
    Role.MARKETING: frozenset(
        {
            Perm.CUSTOMER_VIEW,
            Perm.CUSTOMER_TAG,
            Perm.CUSTOMER_SHARE,
            Perm.CUSTOMER_EXPORT,
            Perm.CUSTOMER_IMPORT,
            Perm.SURVEY_MANAGE,
            Perm.ANALYTICS_VIEW,
            Perm.ANALYTICS_MANAGE,
            Perm.SEGMENT_MANAGE,
            Perm.AUTOMATION_MANAGE,
            Perm.CARE_MANAGE,
            Perm.CAMPAIGN_MANAGE,
            Perm.MESSAGE_SEND,
        }
    ),
    Role.ANALYST: frozenset(
        {
            Perm.CUSTOMER_VIEW,
            Perm.CUSTOMER_EXPORT,
            Perm.PERFORMANCE_VIEW,
            Perm.ANALYTICS_VIEW,
            Perm.ANALYTICS_MANAGE,
            Perm.SEGMENT_MANAGE,
        }
    ),
    Role.AUDITOR: frozenset({Perm.CUSTOMER_VIEW, Perm.AUDIT_VIEW}),
}

# Which customers each role sees (record scope), the one table `Customer.objects.visible_to` reads. A manager
# sees their department: their team and every team under it (Team.parent).
ROLE_SCOPE: dict[str, str] = {
    Role.ADMINISTRATOR: Scope.ALL,
    Role.MANAGER: Scope.DEPARTMENT,
    Role.SALES: Scope.OWN,
    Role.SERVICE: Scope.TEAM,
    Role.MARKETING: Scope.ALL,
    Role.ANALYST: Scope.ALL,
    Role.AUDITOR: Scope.ALL,
}


class FieldAccess(models.TextChoices):
    """What a role may do with one kind of sensitive field (the PI registry's MaskKind) of a customer it sees."""

    MASKED = "masked", _("Masked")
    VIEW = "view", _("Unmasked, read only")
    OWN = "own", _("Unmasked and editable on own customers, masked on others")
    EDIT = "edit", _("Unmasked and editable")


# Field-level access, per role and per kind of sensitive field (MaskKind of cim.privacy.registry): every field
# the registry marks sensitive is covered through its kind, and a kind a role does not name falls back to "*".
# Editing also needs Perm.CUSTOMER_CHANGE; names and other merely personal fields are never masked.
FIELD_ACCESS: dict[str, dict[str, str]] = {
    Role.ADMINISTRATOR: {"*": FieldAccess.EDIT},
    Role.MANAGER: {"*": FieldAccess.EDIT},
    Role.SALES: {"*": FieldAccess.OWN},
    Role.SERVICE: {"*": FieldAccess.MASKED, "phone": FieldAccess.EDIT},  # phones for call-backs
    Role.MARKETING: {"*": FieldAccess.MASKED},
    Role.ANALYST: {"*": FieldAccess.MASKED},
    Role.AUDITOR: {"*": FieldAccess.MASKED},
}


def field_access(role: str, mask_kind: str) -> str:
    table = FIELD_ACCESS.get(role, {})
    return table.get(mask_kind, table.get("*", FieldAccess.MASKED))


def has_perm(user, perm: str) -> bool:
    """Whether an active user's role grants `perm`."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    return perm in ROLE_PERMISSIONS.get(user.role, frozenset())


def scope_of(user) -> str:
    return ROLE_SCOPE.get(user.role, Scope.OWN)
