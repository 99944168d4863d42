"""Field-level masking: the formats, and a matrix of role × sensitive field × output channel showing the raw
value exactly where docs/permissions.md says and the masked form everywhere else; editing denied; reveal audited."""

import datetime
import io
import json

import pytest
from django.test import Client
from django.urls import reverse

from cim.accounts.models import Team
from cim.accounts.roles import FIELD_ACCESS, Perm, Role, Scope, has_perm
from cim.audit.models import AuditEvent
from cim.customers.filters import CustomerFilter
from cim.customers.models import Customer, Phone
from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_update
from cim.customers.tests.factories import make_customer
from cim.ingest.export import customers_export
from cim.ingest.tests.test_export import read_csv, read_xlsx
from cim.privacy.masking import (
    MaskedInstanceSaved,
    field_policy,
    mask_customer,
    mask_date,
    mask_email,
    mask_id_number,
    mask_phone,
    reveal_fields,
)
from cim.privacy.registry import MaskKind, sensitive_fields

pytestmark = pytest.mark.django_db

PHONE, PHONE_MASKED = "+8613812345678", "+86 138****5678"
RAW_PHONE, RAW_PHONE_MASKED = "138-1234-5678", "138****5678"
EMAIL, EMAIL_MASKED = "zhangsanfeng@qq.com", "z***@qq.com"
STREET = "建国路88号院3号楼"
BIRTHDAY, BIRTHDAY_MASKED = "1990-05-17", "****-05-17"

# The documented policy (docs/permissions.md), on a customer the user owns: which kinds each role sees unmasked.
ALL_KINDS = {MaskKind.PHONE, MaskKind.EMAIL, MaskKind.ADDRESS, MaskKind.DATE, MaskKind.ID_NUMBER}
UNMASKED = {
    Role.ADMINISTRATOR: ALL_KINDS,
    Role.MANAGER: ALL_KINDS,
    Role.SALES: ALL_KINDS,  # their own customers
    Role.SERVICE: {MaskKind.PHONE},  # call-backs
    Role.MARKETING: set(),
    Role.ANALYST: set(),
    Role.AUDITOR: set(),
}
# kind → (raw values that must not leak, their masked forms)
VALUES = {
    MaskKind.PHONE: ([PHONE], [PHONE_MASKED]),
    MaskKind.EMAIL: ([EMAIL], [EMAIL_MASKED]),
    MaskKind.ADDRESS: ([STREET], ["****"]),
    MaskKind.DATE: ([BIRTHDAY], [BIRTHDAY_MASKED]),
}
ROLES = [r.value for r in Role]


def test_mask_formats():
    assert mask_phone("+8613812345678") == "+86 138****5678"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+14155552671") == "+1 415***2671"
    assert mask_email("zhangsan@qq.com") == "z***@qq.com"
    assert mask_id_number("110101199003071234") == "110101********1234"
    assert mask_date(datetime.date(1990, 5, 17)) == "****-05-17"
    assert mask_date("1990-05-17") == "****-05-17"


def test_every_sensitive_field_of_the_registry_has_a_policy_and_a_masker():
    for entry in sensitive_fields():
        assert entry.mask in {k.value for k in MaskKind} - {MaskKind.NAME}
        for role in Role:
            assert "*" in FIELD_ACCESS[role] or entry.mask in FIELD_ACCESS[role]
    assert {"phone.number", "phone.raw", "email.address", "address.street", "customer.birthday"} <= set(reveal_fields())


@pytest.fixture
def owned(users, admin_user):
    """One customer per role, owned by that role's user (inside every role's record scope)."""
    return {
        role: make_customer(
            admin_user,
            display_name=f"张三丰{i}",
            owner_id=users[role].pk,
            team_id=users[role].team_id,
            birthday=BIRTHDAY,
            phones=[{"number": RAW_PHONE, "is_primary": True}],
            emails=[{"address": EMAIL, "is_primary": True}],
            addresses=[{"province": "北京市", "city": "北京市", "district": "朝阳区", "street": STREET}],
        )
        for i, role in enumerate(ROLES)
    }


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _text(response) -> str:
    assert response.status_code == 200
    return json.dumps(response.json(), ensure_ascii=False)


def _channels(user, customer, api_client) -> dict[str, str]:
    """Each output channel the role may use, as text to search for values."""
    page = _client(user)
    api = api_client(user)
    out = {
        "detail page": page.get(reverse("customers:detail", args=[customer.number])).content.decode(),
        "list page": page.get(reverse("customers:list")).content.decode(),
        "search results page": page.get(reverse("customers:list"), {"q": customer.display_name}).content.decode(),
        "API detail": _text(api.get(f"/api/v1/customers/{customer.number}")),
        "API list": _text(api.get("/api/v1/customers")),
        "API search": _text(api.get("/api/v1/customers", {"q": customer.display_name})),
    }
    if has_perm(user, Perm.CUSTOMER_EXPORT):
        for fmt, read in (("csv", read_csv), ("xlsx", read_xlsx)):
            buffer = io.BytesIO()
            customers_export(user=user, filters=CustomerFilter(q=customer.display_name), fmt=fmt, out=buffer)
            out[f"{fmt} export"] = json.dumps(read(buffer.getvalue()), ensure_ascii=False, default=str)
    return out


@pytest.mark.parametrize("role", ROLES)
def test_each_channel_shows_the_raw_value_exactly_where_the_policy_allows(users, owned, api_client, role):
    user, customer = users[role], owned[role]
    channels = _channels(user, customer, api_client)
    for kind, (raws, masked) in VALUES.items():
        shown = kind in UNMASKED[role]
        for channel, text in channels.items():
            # Pages show dates in the language's format.
            expected = ["1990"] if kind == MaskKind.DATE and "page" in channel else raws
            for raw, mask in zip(expected, masked, strict=True):
                if channel in ("list page", "search results page", "API list", "API search") and kind in (
                    MaskKind.ADDRESS,
                    MaskKind.DATE,
                ):
                    assert raw not in text, (role, kind, channel)  # lists show neither
                    continue
                if shown:
                    assert raw in text, (role, kind, channel, "should be unmasked")
                else:
                    assert raw not in text, (role, kind, channel, "leaks")
                    assert mask in text, (role, kind, channel, "should show the masked form")
    if MaskKind.PHONE not in UNMASKED[role]:
        # The number as entered is masked too.
        assert RAW_PHONE not in channels["detail page"] and RAW_PHONE_MASKED in channels["detail page"]


def test_sales_sees_a_customer_it_does_not_own_masked(users, admin_user):
    """Sales sees its own customers unmasked; others' (reachable with a wider scope) masked."""
    sales = users[Role.SALES]
    policy = field_policy(sales)
    assert policy.shows(MaskKind.PHONE, sales.pk)
    assert not policy.shows(MaskKind.PHONE, admin_user.pk)
    theirs = make_customer(admin_user, phones=[{"number": RAW_PHONE}], birthday=BIRTHDAY, owner_id=admin_user.pk)
    theirs = Customer.objects.prefetch_related("phones").get(pk=theirs.pk)
    mask_customer(sales, theirs)
    assert theirs.birthday == BIRTHDAY_MASKED and theirs.phones.all()[0].number == PHONE_MASKED
    assert {"customer.birthday", "phone.number"} <= theirs.masked_fields


def test_a_masked_instance_cannot_be_saved(users, owned):
    customer = Customer.objects.prefetch_related("phones").get(pk=owned[Role.MARKETING].pk)
    mask_customer(users[Role.MARKETING], customer)
    with pytest.raises(MaskedInstanceSaved):
        customer.save()
    with pytest.raises(MaskedInstanceSaved):
        customer.phones.all()[0].save()
    assert Phone.objects.get(customer=customer).number == PHONE


def test_editing_a_masked_field_is_refused_per_field(users, owned, api_client):
    service, customer = users[Role.SERVICE], owned[Role.SERVICE]
    with pytest.raises(Exception) as caught:
        customer_update(customer=customer, data=CustomerInput(emails=[{"address": "new@qq.com"}]), actor=service)
    assert set(caught.value.message_dict) == {"emails"}
    # Phones are theirs to change; unchanged masked fields sent back are no change at all.
    customer_update(customer=customer, data=CustomerInput(phones=[{"number": "13900001111"}]), actor=service)
    response = api_client(service).patch(
        f"/api/v1/customers/{customer.number}", {"birthday": "2000-01-01"}, content_type="application/json"
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error" and [d["field"] for d in body["details"]] == ["birthday"]
    assert Customer.objects.get(pk=customer.pk).birthday == datetime.date(1990, 5, 17)


def test_the_form_shows_masked_fields_read_only_and_saves_the_rest(users, owned):
    service, customer = users[Role.SERVICE], owned[Role.SERVICE]
    client = _client(service)
    page = client.get(reverse("customers:edit", args=[customer.number])).content.decode()
    assert EMAIL not in page and EMAIL_MASKED in page and STREET not in page and BIRTHDAY not in page
    assert 'data-locked="emails"' in page and 'name="emails-0-address"' not in page
    assert 'name="birthday"' in page and "disabled" in page
    post = {"kind": "person", "display_name": "张三丰改", "gender": "", "lifecycle_stage": customer.lifecycle_stage}
    post |= {"status": "active", "phones-0-number": RAW_PHONE, "phones-0-kind": "mobile", "phones-primary": "0"}
    post |= {"owner": service.pk, "team": service.team_id}
    response = client.post(reverse("customers:edit", args=[customer.number]), post)
    assert response.status_code == 302, response.content.decode()[:2000]
    customer.refresh_from_db()
    assert customer.display_name == "张三丰改"
    assert customer.birthday == datetime.date(1990, 5, 17)
    assert [e.address for e in customer.emails.all()] == [EMAIL]
    assert [a.street for a in customer.addresses.all()] == [STREET]


def test_reveal_is_audited_without_the_value(users, owned, api_client):
    marketing_customer = owned[Role.MARKETING]
    service = users[Role.SERVICE]
    customer = owned[Role.SERVICE]
    response = api_client(service).post(
        f"/api/v1/customers/{customer.number}/reveal",
        {"fields": ["email.address", "customer.birthday"]},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["values"] == {"email.address": [EMAIL], "customer.birthday": [BIRTHDAY]}
    event = AuditEvent.objects.get(action="customer.reveal")
    assert event.actor == service and event.target_id == str(customer.pk)
    assert event.fields == ["customer.birthday", "email.address"]
    assert EMAIL not in json.dumps(event.fields) + event.note
    bad = api_client(service).post(
        f"/api/v1/customers/{customer.number}/reveal", {"fields": ["customer.notes"]}, content_type="application/json"
    )
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "fields"
    denied = api_client(users[Role.MARKETING]).post(
        f"/api/v1/customers/{marketing_customer.number}/reveal",
        {"fields": ["phone.number"]},
        content_type="application/json",
    )
    assert denied.status_code == 403
    assert AuditEvent.objects.filter(action="customer.reveal").count() == 1


def test_reveal_button_on_the_page(users, owned):
    service, customer = users[Role.SERVICE], owned[Role.SERVICE]
    client = _client(service)
    page = client.get(reverse("customers:detail", args=[customer.number])).content.decode()
    assert 'data-reveal="email.address"' in page and 'data-reveal="phone.number"' not in page
    response = client.post(
        reverse("customers:reveal", args=[customer.number]), {"field": "email.address"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and EMAIL in response.content.decode()
    assert AuditEvent.objects.filter(action="customer.reveal", fields=["email.address"]).exists()
    marketing = _client(users[Role.MARKETING])
    page = marketing.get(reverse("customers:detail", args=[owned[Role.MARKETING].number])).content.decode()
    assert "data-reveal=" not in page
    assert marketing.post(reverse("customers:reveal", args=[customer.number]), {"field": "email.address"}).status_code
    assert not AuditEvent.objects.filter(action="customer.reveal", actor=users[Role.MARKETING]).exists()


def test_department_scope_sees_child_teams(make_user, admin_user, team):
    child = Team.objects.create(name="华东销售一组", parent=team)
    grandchild = Team.objects.create(name="华东销售一组甲", parent=child)
    elsewhere = Team.objects.create(name="华南销售部")
    manager = make_user(Role.MANAGER, "dept-manager", team=team)
    child_manager = make_user(Role.MANAGER, "child-manager", team=child)
    deep = make_customer(admin_user, display_name="孙", team_id=grandchild.pk, owner_id=child_manager.pk)
    mid = make_customer(admin_user, display_name="子", team_id=child.pk, owner_id=child_manager.pk)
    stranger = make_user(Role.SALES, "south-sales", team=elsewhere)
    far = make_customer(admin_user, display_name="远", team_id=elsewhere.pk, owner_id=stranger.pk)
    from cim.accounts.roles import ROLE_SCOPE

    assert ROLE_SCOPE[Role.MANAGER] == Scope.DEPARTMENT
    assert set(Customer.objects.visible_to(manager)) >= {deep, mid}
    assert far not in set(Customer.objects.visible_to(manager))
    assert set(Customer.objects.visible_to(child_manager)) >= {deep, mid}
    parent_only = make_customer(admin_user, display_name="父", team_id=team.pk, owner_id=manager.pk)
    assert parent_only not in set(Customer.objects.visible_to(child_manager))


def test_list_query_count_is_the_same_masked_or_not(users, owned, api_client, django_assert_max_num_queries):
    for role in (Role.ADMINISTRATOR, Role.MARKETING):
        client = _client(users[role])
        client.get(reverse("customers:list"))
        with django_assert_max_num_queries(15):
            assert client.get(reverse("customers:list")).status_code == 200
        api = api_client(users[role])
        api.get("/api/v1/customers")
        with django_assert_max_num_queries(8):
            assert api.get("/api/v1/customers").status_code == 200


def test_cli_permissions_and_reveal(users, owned):
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("permissions", "--json", stdout=out)
    table = json.loads(out.getvalue().splitlines()[-1])
    assert table["service"]["fields"]["phone.number"] == "edit"
    assert table["marketing"]["fields"]["customer.birthday"] == "masked"
    assert table["manager"]["scope"] == "department"
    out = io.StringIO()
    customer = owned[Role.SERVICE]
    call_command("reveal", customer.number, "email.address", "--user", users[Role.SERVICE].username, stdout=out)
    assert EMAIL in out.getvalue()
    assert AuditEvent.objects.filter(action="customer.reveal", actor=users[Role.SERVICE]).count() == 1
    with pytest.raises(CommandError):
        call_command("reveal", customer.number, "email.address", "--user", users[Role.MARKETING].username)


def test_the_change_history_shows_past_sensitive_values_masked(users, owned, admin_user):
    from cim.activities.timeline import timeline_page

    customer = owned[Role.ADMINISTRATOR]
    customer_update(
        customer=customer,
        data=CustomerInput(birthday="1991-06-01", phones=[{"number": "13900001111"}]),
        actor=admin_user,
    )
    entries = timeline_page(customer_id=customer.pk, kinds=["change"]).entries
    shown = json.dumps([entry.changes for entry in entries], ensure_ascii=False)
    assert "13900001111" not in shown and "+86 139****1111" in shown
    assert "1991-06-01" not in shown and "****-06-01" in shown
    assert PHONE not in shown
