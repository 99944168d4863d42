"""@mentions in notes: who is found, who is notified, and the error for a colleague who cannot see the customer."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cim.accounts.roles import Role
from cim.accounts.services import user_create
from cim.activities.follow_up_selectors import follow_up_owners
from cim.activities.follow_ups import follow_up_create
from cim.activities.history_schemas import InteractionInput
from cim.activities.interactions import interaction_log
from cim.activities.mentions import mentions_find
from cim.activities.models import Interaction, Notification
from cim.audit.models import AuditEvent
from cim.customers.sharing import share_create
from cim.customers.tests.factories import make_customer


def _user(username, team, role=Role.SALES, first="", last=""):
    user = user_create(username=username, role=role, password="Correct-Horse-42", team=team)[0]
    user.first_name, user.last_name = first, last
    user.save(update_fields=["first_name", "last_name"])
    return user


@pytest.fixture
def world(team, other_team):
    writer = _user("writer", team, Role.MANAGER)
    colleague = _user("wangwei", team, Role.SERVICE, first="伟", last="王")
    outsider = _user("lina", other_team, Role.SERVICE, first="娜", last="李")
    customer = make_customer(writer, display_name="提及客户", team_id=team.pk)
    return {"writer": writer, "colleague": colleague, "outsider": outsider, "customer": customer, "north": other_team}


def _log(world, body, actor=None):
    return interaction_log(
        customer=world["customer"], data=InteractionInput(kind="note", body=body), actor=actor or world["writer"]
    )


def test_names_are_found_by_user_name_and_full_name(world):
    found = mentions_find("请 @wangwei 和 @李娜请跟进，抄送 someone@example.com 与 @所有人")
    assert {m.user.username for m in found} == {"wangwei", "lina"}
    assert [m.user.username for m in mentions_find("@wangwei请回电。@writer.")] == ["wangwei", "writer"]
    assert mentions_find("没有提及") == []


def test_a_shared_name_must_be_written_as_a_user_name(world, team):
    _user("wangwei2", team, first="伟", last="王")
    with pytest.raises(ValidationError) as error:
        mentions_find("@王伟 请看")
    assert "mentions" in error.value.message_dict
    assert [m.user.username for m in mentions_find("@wangwei2 请看")] == ["wangwei2"]


def test_a_mention_notifies_with_a_link_to_the_customer(world):
    interaction = _log(world, "@王伟 请回访，客户想续约")
    note = Notification.objects.get(user=world["colleague"])
    assert note.url == reverse("customers:detail", args=[world["customer"].number])
    assert world["customer"].number in note.title and "提及客户" not in note.title
    assert AuditEvent.objects.filter(action="interaction.mention", target_id=str(interaction.pk)).exists()
    _log(world, "@writer 自己提及自己")
    assert not Notification.objects.filter(user=world["writer"]).exists()


def test_a_colleague_who_cannot_see_the_customer_is_an_error(world):
    with pytest.raises(ValidationError) as error:
        _log(world, "@lina 请协助")
    assert "@lina" in error.value.message_dict["body"][0]
    assert not Interaction.objects.exists() and not Notification.objects.exists()
    share_create(actor=world["writer"], team=world["north"], customer=world["customer"], reason="协助")
    _log(world, "@lina 请协助")
    assert Notification.objects.filter(user=world["outsider"]).count() == 1


def test_follow_up_notes_mention_too_and_share_recipients_may_own_them(world):
    assert world["outsider"] not in follow_up_owners(customer=world["customer"])
    share_create(actor=world["writer"], team=world["north"], customer=world["customer"], reason="协助")
    assert world["outsider"] in follow_up_owners(customer=world["customer"])
    due = timezone.now() + datetime.timedelta(days=1)
    follow_up_create(
        customer=world["customer"],
        title="回访",
        due_at=due,
        actor=world["writer"],
        owner=world["writer"],
        notes="@lina 请一起",
    )
    assert Notification.objects.filter(user=world["outsider"]).exists()


def test_the_page_shows_the_error_on_the_note(world):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world["writer"])
    url = reverse("activities:interaction_create", args=[world["customer"].number])
    response = client.post(url, {"kind": "note", "body": "@lina 请协助", "occurred_at": ""})
    assert response.status_code == 200
    assert "cannot see this customer" in response.content.decode()
