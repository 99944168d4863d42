"""Segments in a real browser: build rules with a nested NOT group, watch the live count, save with a tag rule,
open the members in the customer list — in Chinese, then the saved rules read back in English."""

import re

import pytest
from playwright.sync_api import expect

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.customers.services import customers_tag
from cim.customers.tests.factories import make_customer
from cim.segments.models import Segment

pytestmark = pytest.mark.browser


def log_in(page, live_server, username):
    browser_log_in(page, live_server.url, username)


def test_build_a_segment_with_a_not_group_and_a_tag_rule(page, live_server, transactional_db, screenshots):
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    fang = make_customer(admin, display_name="王芳", gender="female", source_channel="wechat")
    make_customer(admin, display_name="赵敏", gender="female", source_channel="website")
    make_customer(admin, display_name="李雷", gender="male", source_channel="wechat")
    blocked = make_customer(admin, display_name="周芷若", gender="female", source_channel="wechat")
    customers_tag(customer_ids=[blocked.pk], add=["黑名单"], actor=admin)
    log_in(page, live_server, "alice")

    page.goto(f"{live_server.url}/segments/new/")
    page.fill("#id_name", "微信女客")
    page.fill("#id_tag", "微信女性")
    builder = page.locator("#rule-builder")
    # gender is female
    builder.locator(".add-condition").first.click()
    row = builder.locator(".rule-condition").nth(0)
    row.locator("select[aria-label=field]").select_option("gender")
    row.locator("select[aria-label=operator]").select_option("eq")
    builder.locator(".rule-condition").nth(0).locator("select").nth(2).select_option("female")
    # source channel is WeChat
    builder.locator(".add-condition").first.click()
    row = builder.locator(".rule-condition").nth(1)
    row.locator("select[aria-label=field]").select_option("source_channel")
    builder.locator(".rule-condition").nth(1).locator("select").nth(2).select_option("wechat")
    expect(page.locator("#rules-count")).to_contain_text("2")
    # NOT (has any of the tags 黑名单)
    builder.locator(".add-group").first.click()
    group = builder.locator(".rule-group .rule-group")
    group.locator("input[type=checkbox]").check()
    group.locator(".add-condition").click()
    inner = group.locator(".rule-condition")
    inner.locator("select[aria-label=field]").select_option("tag")
    inner.locator("input").fill("黑名单")
    expect(page.locator("#rules-count")).to_contain_text("1")
    assert "王芳" in page.locator("#rules-sample").inner_text()
    page.screenshot(path=screenshots / "segment-builder-zh.png", full_page=True)
    # Saving fills the segment and its tag at once: give a loaded machine time.
    page.locator("#segment-form button[type=submit]").click(timeout=60_000)
    page.wait_for_url(re.compile(r"/segments/\d+/$"), timeout=60_000)

    segment = Segment.objects.get(name="微信女客")
    assert segment.size == 1 and list(fang.tags.values_list("name", flat=True)) == ["微信女性"]
    page.locator("#segment-customers").click()
    page.wait_for_url(re.compile(rf"\?segment={segment.pk}$"))
    assert "王芳" in page.locator("#results").inner_text()
    assert "赵敏" not in page.locator("#results").inner_text()

    page.goto(f"{live_server.url}/segments/{segment.pk}/")
    page.locator("button[name=language][value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")  # the choice is saved before the next page
    page.goto(f"{live_server.url}/segments/{segment.pk}/")
    summary = page.locator("#rule-summary").inner_text()
    assert summary == "all of (Gender is Female; Source channel is WeChat; not all of (Tags has any of 黑名单))"
    page.screenshot(path=screenshots / "segment-detail-en.png", full_page=True)
