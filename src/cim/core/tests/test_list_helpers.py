"""Template helpers of long lists write what the template engine's own tags would: `{% options %}` a select's
options, escaped, the chosen ones selected; `|customer_url` the address `{% url %}` reverses."""

import pytest
from django.template import Context, Template
from django.urls import clear_script_prefix, reverse, set_script_prefix

from cim.core.templatetags.cim import customer_url


def test_options_are_escaped_and_marked_selected():
    html = Template("{% load cim %}{% options choices %}").render(
        Context({"choices": [(1, "华东 & 华南", True), ('"x"', "<b>", False)]})
    )
    assert html == (
        '<option value="1" selected>华东 &amp; 华南</option><option value="&quot;x&quot;">&lt;b&gt;</option>'
    )


@pytest.mark.parametrize("prefix", ["/", "/cim/"])
def test_customer_url_is_what_reverse_gives_under_any_script_prefix(prefix):
    set_script_prefix(prefix)
    try:
        for number in ("C2026-000001-7", "VIP-1", "客户 1"):
            assert customer_url(number) == reverse("customers:detail", args=[number])
    finally:
        clear_script_prefix()
