"""Login (django-allauth), the forced change of a one-time password, password change, logout, the language switch."""

import pytest
from django.test import Client
from django.urls import reverse

from cim.accounts.roles import Role
from cim.accounts.services import user_create
from cim.audit.models import AuditEvent

pytestmark = pytest.mark.django_db
PASSWORD = "Correct-Horse-42"


def test_login_page_renders_in_both_languages():
    assert "Log in" in Client(HTTP_ACCEPT_LANGUAGE="en").get(reverse("login")).content.decode()
    response = Client(HTTP_ACCEPT_LANGUAGE="zh-hans").get(reverse("login"))
    assert response.status_code == 200 and b'lang="zh-hans"' in response.content


def test_login_then_customer_list(users):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post(reverse("login"), {"login": "sales-user", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("customers:list")
    assert client.get(reverse("customers:list")).status_code == 200


def test_wrong_password_is_shown(users):
    response = Client(HTTP_ACCEPT_LANGUAGE="en").post(reverse("login"), {"login": "sales-user", "password": "no"})
    assert response.status_code == 200
    assert "The username and/or password you specified are not correct." in response.content.decode()


def test_one_time_password_must_be_changed_first(db):
    user, one_time = user_create(username="newbie", role=Role.SALES)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post(reverse("login"), {"login": "newbie", "password": one_time})
    assert response["Location"] == reverse("account_change_password")
    # Every page sends them back until the password is changed.
    assert client.get(reverse("customers:list"))["Location"] == reverse("account_change_password")
    assert client.get(reverse("customers:create"))["Location"] == reverse("account_change_password")
    page = client.get(reverse("account_change_password")).content.decode()
    assert "one-time password" in page
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": one_time, "password1": "Blue-Lantern-77", "password2": "Blue-Lantern-77"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("customers:list")
    user.refresh_from_db()
    assert not user.must_change_password and user.check_password("Blue-Lantern-77")
    assert AuditEvent.objects.filter(action="user.password_change", target_id=str(user.pk)).exists()
    assert client.get(reverse("customers:list")).status_code == 200


def test_password_change_errors(users):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(users[Role.SALES])
    response = client.post(
        reverse("account_change_password"), {"oldpassword": "wrong", "password1": "x", "password2": "y"}
    )
    assert response.status_code == 200
    assert "Please type your current password." in response.content.decode()


def test_old_password_url_still_leads_to_the_change_page(users):
    client = Client()
    client.force_login(users[Role.SALES])
    assert client.get("/password/")["Location"] == reverse("account_change_password")


def test_logout_is_a_post(users):
    client = Client()
    client.force_login(users[Role.SALES])
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("customers:list")).status_code == 302


def test_language_switch(users):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(users[Role.SALES])
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert b'lang="en"' in client.get("/").content
    page = client.get("/").content.decode()
    assert 'name="language" value="zh-hans"' in page and 'action="/i18n/setlang/"' in page
