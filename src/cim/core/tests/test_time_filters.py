"""`|minute` and `|iso` show times exactly as the date filter they replace on long lists, in local time."""

from datetime import UTC, datetime

from django.template import Context, Template


def render(source: str, when) -> str:
    return Template("{% load cim %}" + source).render(Context({"when": when}))


def test_minute_and_iso_show_what_the_date_filter_shows_in_local_time(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    late_evening_utc = datetime(2026, 12, 31, 17, 5, 9, 123456, tzinfo=UTC)  # already 1 January in Shanghai
    assert render("{{ when|minute }}", late_evening_utc) == "2027-01-01 01:05"
    assert render("{{ when|minute }}", late_evening_utc) == render('{{ when|date:"Y-m-d H:i" }}', late_evening_utc)
    assert render("{{ when|iso }}", late_evening_utc) == render("{{ when|date:'c' }}", late_evening_utc)
    assert render("{{ when|minute }}|{{ when|iso }}", None) == "|"
