import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

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


def api_token_create(*, user: User, name: str = "", actor: User | None = None) -> tuple[ApiToken, str]:
    """Issue a token; the raw value is returned once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, name=name, prefix=raw[:12], digest=token_digest(raw))
        audit_record(actor=actor or user, action="api_token.create", target=token)
    return token, raw


def api_token_revoke(*, token: ApiToken, actor: User) -> ApiToken:
    if token.revoked_at:
        return token
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="api_token.revoke", target=token)
    return token


def api_token_authenticate(raw: str) -> User | None:
    """The active user a raw bearer token belongs to, or None."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    # Touch at most once a minute so reads stay reads.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def user_password_changed(*, user: User) -> User:
    """Record a password change the user made themselves; a one-time password is no longer pending."""
    with transaction.atomic():
        if user.must_change_password:
            user.must_change_password = False
            user.save(update_fields=["must_change_password"])
        audit_record(actor=user, action="user.password_change", target=user, fields=["password"])
    return user
