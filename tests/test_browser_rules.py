"""Automation rules in a real browser: build trigger → conditions → steps (a branch with its own condition, a
wait, steps reordered), save, dry-run it on a segment, switch it on."""

import re

import pytest
from playwright.sync_api import expect

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.automation.models import Rule
from cim.customers.tests.factories import make_customer
from cim.segments.services import segment_create

pytestmark = pytest.mark.browser


def test_build_a_rule_in_the_editor(page, live_server, transactional_db, screenshots):
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    make_customer(admin, display_name="王芳", gender="female")
    make_customer(admin, display_name="李雷", gender="male")
    everyone = segment_create(actor=admin, name="全部客户", rules={"match": "all", "rules": []})
    browser_log_in(page, live_server.url, "alice")

    page.goto(f"{live_server.url}/automation/rules/")
    page.locator("#new-rule").click()
    page.fill("#id_name", "贵宾欢迎")
    page.locator("#trigger-event").select_option("customer.tag_added")
    page.locator("#trigger-tag").fill("VIP")
    # Conditions: the segment builder, as on the segment page.
    builder = page.locator("#rule-builder")
    builder.locator(".add-condition").first.click()
    row = builder.locator(".rule-condition").nth(0)
    row.locator("select[aria-label=field]").select_option("gender")
    row.locator("select").nth(2).select_option("female")
    expect(page.locator("#rules-count")).to_contain_text("1")
    # Step 1: a tag; step 2: a branch on the gender with a wait in `then`.
    steps = page.locator("#steps-editor")
    steps.locator(".add-step").last.click()
    page.locator('.rule-step[data-step="1"] input').fill("欢迎")
    steps.locator(".add-step").last.click()
    page.locator('.rule-step[data-step="2"] select').first.select_option("branch")
    branch = page.locator('.rule-step[data-step="2"]')
    branch.get_by_role("button", name=re.compile("condition|条件")).click()
    branch.locator("select").nth(1).select_option("gender")
    branch.locator("select").nth(3).select_option("female")
    branch.locator(".add-step").first.click()
    then_step = page.locator('.rule-step[data-step="2.then.1"]')
    then_step.locator("select").first.select_option("wait")
    then_step.locator("input").first.fill("3")
    # Move the branch above the tag step.
    page.locator('.rule-step[data-step="2"] button').filter(has_text="↑").first.click()
    expect(page.locator('.rule-step[data-step="1"] select').first).to_have_value("branch")
    page.screenshot(path=screenshots / "rule-editor.png", full_page=True)
    page.locator("#save-rule").click()
    page.wait_for_url(re.compile(r"/automation/rules/\d+/$"), timeout=60_000)

    rule = Rule.objects.get()
    assert rule.trigger == {"event": "customer.tag_added", "tag": "VIP"}
    assert rule.conditions["rules"][0]["field"] == "gender"
    assert [step["action"] for step in rule.steps] == ["branch", "add_tag"]
    assert rule.steps[0]["then"] == [{"action": "wait", "days": 3}]
    assert rule.steps[1] == {"action": "add_tag", "tag": "欢迎"}

    page.locator("#id_segment").select_option(str(everyone.pk))
    page.locator("#dry-run").click()
    expect(page.locator("#dry-run-result")).to_contain_text("1")
    assert "王芳" in page.content() and "李雷" not in page.locator("#dry-run-form ~ table").inner_text()
    page.locator("#activate").click()
    expect(page.locator("#deactivate")).to_be_visible()
    assert Rule.objects.get().is_active
