"""Access events: logins, failed logins, logouts, refused requests (403) and changes made in Django's admin.

Recorded from Django's own signals (which django-allauth sends too) and from one middleware, so every login form,
every page and every API endpoint is covered without each of them remembering to.
"""

import ipaddress
import json

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model

from cim.audit.services import audit_record

USER_TYPE = "accounts.user"
_ADMIN_ACTIONS = {ADDITION: "admin.add", CHANGE: "admin.change", DELETION: "admin.delete"}


def client_ip(request) -> str:
    """The client's address: from `CIM_CLIENT_IP_HEADER` behind a proxy (its last entry), else REMOTE_ADDR."""
    if request is None:
        return ""
    header = settings.CIM_CLIENT_IP_HEADER
    forwarded = request.META.get(header, "").split(",")[-1].strip() if header else ""
    for candidate in (forwarded, request.META.get("REMOTE_ADDR", "")):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return ""


def _ip_note(request) -> str:
    ip = client_ip(request)
    return f"ip={ip}" if ip else ""


def login_record(*, user, request) -> None:
    audit_record(actor=user, action="auth.login", target=user, note=_ip_note(request))


def logout_record(*, user, request) -> None:
    if user is None:  # a logout without a session: nothing happened
        return
    audit_record(actor=user, action="auth.logout", target=user, note=_ip_note(request))


def login_failed_record(*, credentials: dict, request) -> None:
    """A refused login: the username tried (never the password) and the client's address."""
    user_model = get_user_model()
    username = str(
        credentials.get(user_model.USERNAME_FIELD) or credentials.get("login") or credentials.get("email") or ""
    )[:150]
    known = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).values_list("pk", flat=True)
    note = " ".join(filter(None, [f"username={json.dumps(username, ensure_ascii=False)}", _ip_note(request)]))
    audit_record(
        actor=None,
        action="auth.login_failed",
        target=None,
        target_type=USER_TYPE,
        target_id=str(known.first() or ""),
        note=note,
    )


def access_denied_record(*, request) -> None:
    """A 403 on a page or the API: who, which view, which path (never the query string, which may hold values)."""
    user = request.user if getattr(request, "user", None) is not None and request.user.is_authenticated else None
    user = user or getattr(request, "auth", None)  # API calls authenticate by token, not by session
    match = getattr(request, "resolver_match", None)
    audit_record(
        actor=user if getattr(user, "is_authenticated", False) else None,
        action="access.denied",
        target=None,
        target_type="view",
        target_id=(match.view_name if match else "")[:40],
        note=" ".join(filter(None, [f"{request.method} {request.path}"[:400], _ip_note(request)])),
    )


def admin_change_record(*, entry: LogEntry) -> None:
    """A change made in Django's admin, which bypasses the services: which object, which fields (never values)."""
    fields: list[str] = []
    try:
        for part in json.loads(entry.change_message or "[]"):
            fields += part.get("changed", {}).get("fields", [])
    except (ValueError, AttributeError):
        pass
    content_type = entry.content_type
    audit_record(
        actor=entry.user,
        action=_ADMIN_ACTIONS.get(entry.action_flag, "admin.change"),
        target=None,
        target_type=f"{content_type.app_label}.{content_type.model}"[:60] if content_type else "admin",
        target_id=str(entry.object_id or "")[:40],
        fields=fields,
    )
