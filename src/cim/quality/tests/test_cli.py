"""`cim dedupe`, `cim merge` and `cim unmerge`: the same work as the pages, for scripts."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from cim.customers.models import Customer, ExternalId
from cim.customers.tests.factories import make_customer
from cim.quality.models import DuplicateCandidate, MergeRecord
from cim.quality.selectors import link_sides


def run(*args) -> dict:
    out = io.StringIO()
    call_command(*args, "--json", stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture
def people(admin_user):
    first = make_customer(admin_user, display_name="张三", phones=[{"number": "13812345678"}], birthday="1990-01-02")
    twin = make_customer(admin_user, display_name="張三", phones=[{"number": "138 1234 5678"}], birthday="1990/1/2")
    ExternalId.objects.create(customer=twin, system="shop", value="S-2")
    make_customer(admin_user, display_name="张三", phones=[{"number": "13999998888"}], birthday="1961-11-30")
    make_customer(admin_user, display_name="李四")
    DuplicateCandidate.objects.all().delete()  # found at creation: the scan must find them again by itself
    return first, twin


def test_dedupe_records_the_pairs_and_writes_the_clusters(tmp_path, people):
    first, twin = people
    result = run("dedupe", "--clusters", str(tmp_path / "clusters.csv"))
    assert (result["customers"], result["pairs"], result["clusters"]) == (4, 1, 1)
    pair = DuplicateCandidate.objects.get()
    assert (pair.customer, pair.other, pair.detected_by) == (twin, first, "scan")
    assert pair.probability > 0.9 and pair.contributions["phones"] > 0
    with (tmp_path / "clusters.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["cluster_id", "customer_number", "external_id", "match_probability"]
    assert {(r["customer_number"], r["external_id"]) for r in rows} == {(first.number, ""), (twin.number, "S-2")}
    assert len({r["cluster_id"] for r in rows}) == 1


def test_a_rescan_keeps_what_people_decided(people):
    run("dedupe")
    DuplicateCandidate.objects.update(status="distinct")
    assert run("dedupe")["pairs"] == 1
    assert DuplicateCandidate.objects.get().status == "distinct"


def test_merge_dry_run_merge_and_unmerge(people):
    first, twin = people
    dry = run("merge", first.number, twin.number, "--dry-run", "--choose", f"display_name={twin.number}")
    assert dry["values"]["display_name"] == "張三" and dry["provenance"]["display_name"] == twin.number
    assert not MergeRecord.objects.exists()
    merged = run("merge", first.number, twin.number)
    assert Customer.objects.get(pk=twin.pk).merged_into_id == first.pk
    assert run("unmerge", str(merged["merge"])) == {"merge": merged["merge"], "undone": True}
    assert Customer.objects.get(pk=twin.pk).status == "active"
    with pytest.raises(CommandError, match=r"already been undone|已被撤销"):
        run("unmerge", str(merged["merge"]))


def test_merge_of_unknown_customers_fails_clearly(people):
    with pytest.raises(CommandError, match="No customer C2026-999999-9"):
        run("merge", people[0].number, "C2026-999999-9")


def test_pairs_found_at_creation_keep_their_path_and_stale_ones_go(admin_user):
    make_customer(admin_user, display_name="王五", phones=[{"number": "13700001111"}])
    twin = make_customer(admin_user, display_name="王五", phones=[{"number": "13700001111"}])
    other = make_customer(admin_user, display_name="赵六")
    stale = DuplicateCandidate.objects.create(customer=other, other=twin, reason="model", detected_by="scan")
    run("dedupe")
    assert not DuplicateCandidate.objects.filter(pk=stale.pk).exists()
    assert DuplicateCandidate.objects.get(customer=twin).detected_by == "create"


def test_automatic_merging_is_off_unless_a_threshold_is_set(people, settings):
    first, twin = people
    assert run("dedupe")["merged"] == 0 and Customer.objects.get(pk=twin.pk).merged_into_id is None
    settings.CIM_AUTO_MERGE_THRESHOLD = 0.95
    assert run("dedupe")["merged"] == 1
    assert Customer.objects.get(pk=twin.pk).merged_into_id == first.pk
    assert MergeRecord.objects.get().survivor == first


@pytest.fixture
def two_lists(admin_user):
    """The shop's customers and the CRM's, each list holding each person once but for one pair within the shop."""

    def known_to(system: str, value: str, **fields):
        customer = make_customer(admin_user, **fields)
        ExternalId.objects.create(customer=customer, system=system, value=value)
        return customer

    shop = known_to("shop", "S-1", display_name="张三", phones=[{"number": "13812345678"}], birthday="1990-01-02")
    crm = known_to("crm", "C-1", display_name="張三", phones=[{"number": "138 1234 5678"}], birthday="1990/1/2")
    known_to("shop", "S-2", display_name="李四", phones=[{"number": "13900001111"}])
    known_to("shop", "S-3", display_name="李四", phones=[{"number": "13900001111"}])
    known_to("crm", "C-2", display_name="王五")
    make_customer(admin_user, display_name="张三", phones=[{"number": "13812345678"}], birthday="1990-01-02")
    DuplicateCandidate.objects.all().delete()
    return shop, crm


def test_dedupe_link_pairs_the_two_lists_one_to_one(two_lists):
    shop, crm = two_lists
    result = run("dedupe", "--link", "shop", "crm")
    # Only the five customers of the two lists are read; pairs within one list (李四 twice in the shop) are not
    # the link's to find, nor is the third 张三, who is in neither list.
    assert (result["customers"], result["pairs"], result["link"]) == (5, 1, ["shop", "crm"])
    pair = DuplicateCandidate.objects.get()
    assert {pair.customer, pair.other} == {shop, crm} and pair.probability > 0.8


def test_a_customer_known_to_both_lists_is_on_neither_side_of_a_link(two_lists):
    shop, _ = two_lists
    ExternalId.objects.create(customer=shop, system="crm", value="C-3")

    def customers(side) -> set[str]:
        return set(Customer.objects.filter(pk__in=side).values_list("display_name", flat=True))

    in_shop, in_crm = link_sides("shop", "crm")
    assert (customers(in_shop), customers(in_crm)) == ({"李四"}, {"張三", "王五"})
    assert in_shop.count() == 2


def test_a_link_keeps_the_open_pairs_outside_its_lists(two_lists):
    run("dedupe")
    outside = set(DuplicateCandidate.objects.values_list("customer_id", "other_id"))
    run("dedupe", "--link", "shop", "crm")
    assert outside <= set(DuplicateCandidate.objects.values_list("customer_id", "other_id"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--link", "shop", "shop"], "two different systems"),
        (["--link", "shop", "crm", "--threshold", "0.5"], r"above 0\.5"),
    ],
)
def test_dedupe_link_refuses_what_it_cannot_do(two_lists, arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("dedupe", *arguments, stdout=io.StringIO(), stderr=io.StringIO())
