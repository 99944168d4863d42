import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.models import ApiToken, Team, User
from cim.audit.services import audit_record

TOKEN_PREFIX = "cim_"


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def user_create(
    *,
    username: str,
    role: str,
    password: str | None = None,
    team: Team | None = None,
    email: str = "",
    actor: User | None = None,
) -> tuple[User, str | None]:
    """Create a user. Without a password, a one-time password is generated, returned, and must be changed."""
    one_time = None
    if not password:
        one_time = password = secrets.token_urlsafe(12)
    with transaction.atomic():
        user = User(username=username, role=role, team=team, email=email, must_change_password=one_time is not None)
        user.is_staff = user.is_superuser = role == "administrator"
        user.set_password(password)
        user.full_clean()
        user.save()
        audit_record(actor=actor, action="user.create", target=user, fields=["username", "role", "team"])
    return user, one_time


class TokenRefused(Exception):
    """A bearer token that exists but may not be used: `code` is "token_expired" or "token_revoked"."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def api_token_create(
    *,
    user: User,
    name: str = "",
    scope: str = ApiToken.Scope.READ,
    days: int | None = None,
    actor: User | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token that expires after `days` (default CIM_API_TOKEN_DAYS); the raw value is returned once."""
    days = settings.CIM_API_TOKEN_DAYS if days is None else days
    errors = {}
    if scope not in ApiToken.Scope.values:
        errors["scope"] = _("Select one of: %(choices)s.") % {"choices": ", ".join(ApiToken.Scope.values)}
    if not 1 <= days <= settings.CIM_API_TOKEN_MAX_DAYS:
        errors["days"] = _("Enter a number of days from 1 to %(max)s.") % {"max": settings.CIM_API_TOKEN_MAX_DAYS}
    if len(name) > 100:
        errors["name"] = _("Enter at most %(n)s characters.") % {"n": 100}
    if errors:
        raise ValidationError(errors)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            scope=scope,
            prefix=raw[:12],
            digest=token_digest(raw),
            expires_at=timezone.now() + timedelta(days=days),
        )
        audit_record(actor=actor or user, action="api_token.create", target=token, fields=["scope", "expires_at"])
    return token, raw


def api_token_revoke(*, token: ApiToken, actor: User | None) -> ApiToken:
    if token.revoked_at:
        return token
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="api_token.revoke", target=token)
    return token


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The token a raw bearer value stands for (its user active), or None when unknown.

    Raises TokenRefused for a revoked or expired token, so the caller hears why instead of a bare 401.
    """
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(raw), user__is_active=True).first()
    if token is None:
        return None
    if token.revoked_at is not None:
        raise TokenRefused("token_revoked")
    now = timezone.now()
    if token.expires_at <= now:
        raise TokenRefused("token_expired")
    # Touch at most once a minute so reads stay reads.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def user_password_changed(*, user: User) -> User:
    """Record a password change the user made themselves; a one-time password is no longer pending."""
    with transaction.atomic():
        if user.must_change_password:
            user.must_change_password = False
            user.save(update_fields=["must_change_password"])
        audit_record(actor=user, action="user.password_change", target=user, fields=["password"])
    return user
