"""The navigation bar: the menu each role sees, in each language, with the current page marked."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from cim.accounts.roles import Role

pytestmark = pytest.mark.django_db


def menu(user, path: str, language: str) -> str:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    page = client.get(path).content.decode()
    return page[page.index('<ul class="navbar-nav me-auto">') : page.index("</nav>")]


def test_the_menu_offers_what_the_role_may_open(users):
    admin_menu = menu(users[Role.ADMINISTRATOR], "/", "en")
    sales_menu = menu(users[Role.SALES], "/", "en")
    assert reverse("audit:list") in admin_menu and reverse("backups:list") in admin_menu
    assert reverse("audit:list") not in sales_menu and reverse("analytics:dashboard") not in sales_menu
    assert reverse("customers:create") in sales_menu  # sales may add customers
    assert reverse("customers:create") not in menu(users[Role.AUDITOR], "/", "en")


def test_the_menu_speaks_the_users_language_and_marks_the_page(users):
    user = users[Role.MANAGER]
    chinese, english = menu(user, "/", "zh-hans"), menu(user, "/", "en")
    assert "客户" in chinese and "Customers" not in chinese and "Customers" in english
    on_segments = menu(user, reverse("segments:list"), "en")
    active = re.findall(r'class="nav-link active" href="([^"]+)"', on_segments)
    assert active == [reverse("segments:list")]
    assert re.findall(r'class="nav-link active" href="([^"]+)"', english) == [reverse("customers:list")]
