"""`{% options %}` writes a select's options as the template engine would: escaped, the chosen ones selected."""

from django.template import Context, Template


def test_options_are_escaped_and_marked_selected():
    html = Template("{% load cim %}{% options choices %}").render(
        Context({"choices": [(1, "华东 & 华南", True), ('"x"', "<b>", False)]})
    )
    assert html == (
        '<option value="1" selected>华东 &amp; 华南</option><option value="&quot;x&quot;">&lt;b&gt;</option>'
    )
