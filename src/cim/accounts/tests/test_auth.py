"""ASVS Level 2 authentication: mandatory MFA for administrators, lockout, password rules, session lifetime."""

import io
import json
import time

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from cim.accounts.middleware import AUTH_AT, SEEN_AT
from cim.accounts.models import User
from cim.accounts.roles import Role
from cim.accounts.services import user_create
from cim.accounts.testing import totp_activate, totp_code, totp_secret
from cim.audit.models import AuditEvent

pytestmark = pytest.mark.django_db
PASSWORD = "Correct-Horse-42"


@pytest.fixture(autouse=True)
def _empty_cache():
    # Rate limits and used TOTP codes live in the cache; each test starts with none.
    cache.clear()
    yield
    cache.clear()


def _log_in(client, username, password=PASSWORD, **extra):
    return client.post(reverse("account_login"), {"login": username, "password": password}, **extra)


# MFA


def test_administrator_without_mfa_is_sent_to_totp_setup_first(django_capture_on_commit_callbacks):
    admin, _ = user_create(username="root", role=Role.ADMINISTRATOR, password=PASSWORD)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert _log_in(client, "root").status_code == 302
    for url in (reverse("customers:list"), reverse("api_tokens"), "/admin/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == reverse("mfa_activate_totp"), url
    # The API answers in JSON, not with a redirect.
    response = client.get("/api/v1/customers")
    assert response.status_code == 403 and response.json()["code"] == "mfa_required"

    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200 and "two-factor authentication" in page.content.decode()
    secret = client.session["mfa.totp.secret"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302 and response["Location"] == reverse("mfa_view_recovery_codes")
    assert Authenticator.objects.filter(user=admin, type=Authenticator.Type.TOTP).exists()
    assert AuditEvent.objects.filter(action="mfa.authenticator_add", actor=admin).exists()

    # The recovery codes are shown once, then only masked.
    codes = client.get(reverse("mfa_view_recovery_codes")).context["unused_codes"]
    assert len(codes) == 10 and all(c != "****" for c in codes)
    again = client.get(reverse("mfa_view_recovery_codes")).context["unused_codes"]
    assert set(again) == {"****"}
    assert client.get(reverse("customers:list")).status_code == 200


def test_administrator_logs_in_with_password_then_totp_code():
    admin, _ = user_create(username="root", role=Role.ADMINISTRATOR, password=PASSWORD)
    totp_activate(admin)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = _log_in(client, "root")
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session  # not logged in before the second factor
    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert wrong.status_code == 200 and "Incorrect code." in wrong.content.decode()
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(totp_secret(admin))})
    assert response.status_code == 302 and response["Location"] == reverse("customers:list")
    assert client.get(reverse("customers:list")).status_code == 200


@pytest.mark.parametrize(("steps_ago", "accepted"), [(1, True), (2, False)])
def test_a_code_of_the_last_period_is_still_accepted_an_older_one_is_not(steps_ago, accepted):
    admin, _ = user_create(username="root", role=Role.ADMINISTRATOR, password=PASSWORD)
    secret = totp_activate(admin)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    _log_in(client, "root")
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret, at=time.time() - 30 * steps_ago)})
    assert (response.status_code == 302) is accepted


def test_a_recovery_code_replaces_the_app_once():
    admin, _ = user_create(username="root", role=Role.ADMINISTRATOR, password=PASSWORD)
    totp_activate(admin)
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    code = RecoveryCodes(Authenticator.objects.get(user=admin, type="recovery_codes")).get_unused_codes()[0]
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    _log_in(client, "root")
    assert client.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302
    client.post(reverse("account_logout"))
    _log_in(client, "root")
    assert client.post(reverse("mfa_authenticate"), {"code": code}).status_code == 200  # used up


def test_an_administrator_cannot_switch_off_their_totp(users):
    admin = users[Role.ADMINISTRATOR]
    client = Client()
    client.force_login(admin)
    client.post(reverse("mfa_deactivate_totp"))
    assert Authenticator.objects.filter(user=admin, type=Authenticator.Type.TOTP).exists()


def test_other_roles_may_log_in_without_mfa(users):
    client = Client()
    _log_in(client, "sales-user")
    assert client.get(reverse("customers:list")).status_code == 200


def test_bootstrap_admin_changes_the_one_time_password_then_sets_up_mfa(db):
    out = io.StringIO()
    call_command("bootstrap", "--no-demo", "--json", stdout=out)
    password = json.loads(out.getvalue().strip().splitlines()[-1])["password"]
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert _log_in(client, "admin", password)["Location"] == reverse("account_change_password")
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": password, "password1": "Blue-Lantern-77x", "password2": "Blue-Lantern-77x"},
    )
    assert response.status_code == 302
    assert client.get(reverse("customers:list"))["Location"] == reverse("mfa_activate_totp")


# Lockout


def test_repeated_failures_lock_out_the_username_from_that_address(settings, users):
    settings.CIM_LOGIN_FAILURES = 5
    client = Client(HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="203.0.113.7")
    for _ in range(5):
        assert "not correct" in _log_in(client, "sales-user", "wrong-password").content.decode()
    locked = _log_in(client, "sales-user", PASSWORD)  # even the right password, now
    page = locked.content.decode()
    assert locked.status_code == 200 and "Too many failed log-ins for this username from your address" in page
    assert "Wait 15 minutes" in page
    # Another address, or another username from this address, is not locked.
    assert _log_in(Client(REMOTE_ADDR="198.51.100.9"), "sales-user").status_code == 302
    assert _log_in(Client(REMOTE_ADDR="203.0.113.7"), "service-user").status_code == 302
    zh = _log_in(Client(HTTP_ACCEPT_LANGUAGE="zh-hans", REMOTE_ADDR="203.0.113.7"), "sales-user")
    assert zh.status_code == 200 and "alert-danger" in zh.content.decode()
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 5


def test_a_successful_login_does_not_reset_the_failure_count(users):
    client = Client(HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="203.0.113.8")
    for _ in range(4):
        _log_in(client, "sales-user", "wrong-password")
    assert _log_in(client, "sales-user").status_code == 302
    client.post(reverse("account_logout"))
    assert _log_in(client, "sales-user", "wrong-password").status_code == 200
    assert "Too many failed" in _log_in(client, "sales-user", "wrong-password").content.decode()


# Passwords


@pytest.mark.parametrize(
    "password",
    [
        "short-pw-12",  # under 15 characters
        "x" * 129,  # over the maximum
        "1q2w3e4r5t6y7u8i",  # on Django's list of common passwords
    ],
)
def test_weak_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        validate_password(password, User(username="someone"))


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",  # a passphrase with spaces, no digits or capitals: allowed
        "ø" * 64,  # 64 characters, any script
        "一二三四五六七八九十百千万亿兆",  # 15 Chinese characters
        "x" * 40 + " " * 10 + "y" * 78,  # 128 characters
        "738291046518273",  # digits only: no composition rules
    ],
)
def test_long_passphrases_and_any_characters_are_allowed(password):
    validate_password(password, User(username="someone"))


def test_passwords_are_hashed_with_argon2(settings):
    from cim.config import settings as project_settings

    assert project_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    user, _ = user_create(username="hashed", role=Role.SALES, password=PASSWORD)
    assert user.password.startswith("argon2$argon2id$")


# Sessions


def test_the_session_key_changes_at_login(users):
    client = Client()
    client.get(reverse("account_login"))
    client.cookies["sessionid"] = "anonymous-session-key-fixed-by-attacker"
    before = client.session.session_key
    _log_in(client, "sales-user")
    assert client.session.session_key != before
    assert client.session.session_key != "anonymous-session-key-fixed-by-attacker"
    assert client.get(reverse("customers:list")).status_code == 200


def _age_session(client, *, idle: int = 0, since_login: int = 0):
    session = client.session
    now = int(time.time())
    session[SEEN_AT] = now - idle
    session[AUTH_AT] = now - since_login
    session.save()


def test_idle_sessions_end(settings, users):
    settings.CIM_SESSION_IDLE_MINUTES = 30
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    _log_in(client, "sales-user")
    _age_session(client, idle=29 * 60, since_login=29 * 60)
    assert client.get(reverse("customers:list")).status_code == 200
    # That request slid the idle timer forward.
    assert int(time.time()) - client.session[SEEN_AT] < 5
    _age_session(client, idle=31 * 60, since_login=2 * 3600)
    response = client.get(reverse("customers:list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    page = client.get(response["Location"]).content.decode()
    assert "Your session has expired. Please log in again." in page


def test_sessions_end_after_the_absolute_maximum_even_when_busy(settings, users):
    settings.CIM_SESSION_MAX_HOURS = 12
    client = Client()
    _log_in(client, "sales-user")
    _age_session(client, idle=10, since_login=12 * 3600 - 60)
    assert client.get(reverse("customers:list")).status_code == 200
    _age_session(client, idle=10, since_login=12 * 3600 + 60)
    assert client.get(reverse("customers:list")).status_code == 302
    assert client.get("/api/v1/customers").status_code == 401


def test_session_cookie_flags(settings):
    from cim.config import settings as project_settings

    assert project_settings.SESSION_COOKIE_HTTPONLY and project_settings.SESSION_COOKIE_SAMESITE == "Lax"
    assert project_settings.SESSION_COOKIE_AGE == project_settings.CIM_SESSION_MAX_HOURS * 3600
    assert project_settings.CSRF_COOKIE_SECURE == project_settings.SESSION_COOKIE_SECURE


# The deploy check


def test_deploy_check_warns_about_admins_without_mfa_and_insecure_cookies(settings, users):
    from cim.accounts.checks import check_administrators_mfa, check_session_settings

    assert check_administrators_mfa() == []  # the fixture's administrator has TOTP
    user_create(username="root", role=Role.ADMINISTRATOR, password=PASSWORD)
    warnings = check_administrators_mfa()
    assert [w.id for w in warnings] == ["cim.accounts.W001"] and "root" in warnings[0].msg

    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    settings.CIM_SESSION_IDLE_MINUTES = 240
    ids = {w.id for w in check_session_settings()}
    assert {"cim.accounts.W002", "cim.accounts.W005"} <= ids
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.CIM_SESSION_IDLE_MINUTES = 30
    assert check_session_settings() == []


def test_more_roles_can_be_made_to_use_mfa(settings, users):
    settings.CIM_MFA_REQUIRED_ROLES = ["sales"]
    client = Client()
    _log_in(client, "sales-user")
    assert client.get(reverse("customers:list"))["Location"] == reverse("mfa_activate_totp")
    other = Client()
    _log_in(other, "service-user")
    assert other.get(reverse("customers:list")).status_code == 200


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_account_pages_use_the_cim_layout(users, language):
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    for name in ("account_login", "account_reset_password", "account_signup"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert 'class="navbar-brand' in response.content.decode() and f'lang="{language}"' in response.content.decode()
    client.force_login(users[Role.ADMINISTRATOR])
    for name in ("mfa_index", "account_change_password", "account_reauthenticate", "api_tokens"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert 'class="navbar-brand' in response.content.decode()
    if language == "zh-hans":
        # allauth's own strings come translated with it.
        assert (
            "两步验证" in client.get(reverse("mfa_index")).content.decode()
            or "双因素" in client.get(reverse("mfa_index")).content.decode()
        )


def test_nobody_can_sign_up(db):
    response = Client().post(
        reverse("account_signup"),
        {"username": "mallory", "password1": "Blue-Lantern-77x", "password2": "Blue-Lantern-77x"},
    )
    assert response.status_code == 200 and not User.objects.filter(username="mallory").exists()


def test_password_reset_by_email_link(db, mailoutbox):
    user, _ = user_create(username="carol", role=Role.SALES, password=PASSWORD, email="carol@example.com")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post(reverse("account_reset_password"), {"email": "carol@example.com"})
    assert response.status_code == 302 and len(mailoutbox) == 1
    link = next(word for word in mailoutbox[0].body.split() if "/password/reset/key/" in word)
    form_url = client.get(link)["Location"]
    response = client.post(form_url, {"password1": "Quiet-River-Lamp-9", "password2": "Quiet-River-Lamp-9"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("Quiet-River-Lamp-9")
    assert AuditEvent.objects.filter(action="user.password_change", target_id=str(user.pk)).exists()


def test_the_admin_site_logs_in_through_cims_login_not_its_own(users):
    response = Client().get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    # Posting a password to the admin's own form does not log in either (an administrator must give a TOTP code).
    client = Client()
    client.post("/admin/login/?next=/admin/", {"username": "administrator-user", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
