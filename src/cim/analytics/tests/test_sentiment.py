"""Feedback text analysis: accuracy on labelled Chinese and English feedback, known keywords and topics, the
refresh (new, changed, removed, idempotent), and the page, API and CLI that show it."""

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override

from cim.accounts.roles import Role
from cim.activities.models import Interaction
from cim.analytics.models import FeedbackSentiment
from cim.analytics.sentiment import feedback_summary, language_of, sentiment_analyse, sentiment_refresh
from cim.analytics.tasks import feedback_sentiment_refresh
from cim.core.schedule import PERIODIC
from cim.customers.tests.factories import make_customer
from cim.service.models import Survey
from cim.service.services import ticket_create

DATA = Path(__file__).parent / "data"


def labelled(name: str, language: str) -> list[tuple[str, str, str]]:
    rows = [line.rstrip("\n").split("\t") for line in (DATA / name).read_text(encoding="utf-8").splitlines()]
    return [
        (label, topic, text) for lang, label, topic, text in (r for r in rows if r[0][:1] != "#") if lang == language
    ]


# Measured: the set the cue lists were tuned on, and a second set written before and never tuned on (the honest
# figure); on that second set the models alone score 60% (zh) and 85% (en). See docs/analytics.md.
@pytest.mark.parametrize(
    ("name", "language", "minimum"),
    [
        ("feedback_labelled.tsv", "zh", 0.95),
        ("feedback_labelled.tsv", "en", 0.97),
        ("feedback_heldout.tsv", "zh", 0.85),
        ("feedback_heldout.tsv", "en", 0.90),
    ],
)
def test_sentiment_accuracy_on_labelled_feedback(name, language, minimum):
    rows = labelled(name, language)
    assert len(rows) >= 20
    results = [(label, sentiment_analyse(text)) for label, _topic, text in rows]
    assert all(result.language == language for _label, result in results)
    accuracy = sum(label == result.label for label, result in results) / len(rows)
    assert accuracy >= minimum, f"{name} {language}: {accuracy:.3f}"


def test_topic_accuracy_on_labelled_feedback():
    rows = labelled("feedback_labelled.tsv", "zh") + labelled("feedback_labelled.tsv", "en")
    hits = sum(sentiment_analyse(text).topic == topic for _label, topic, text in rows)
    assert hits / len(rows) >= 0.84  # measured 76 of 90


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("App老是闪退，根本没法下单。", "zh"),  # an English name in a Chinese sentence
        ("Mr 王 was rude to me on the phone.", "en"),  # a Chinese name in an English one
        ("", "en"),
    ],
)
def test_language_by_the_share_of_chinese_characters(text, language):
    assert language_of(text) == language


def test_known_keywords_and_topics():
    delivery = sentiment_analyse("快递太慢了，说好三天到结果拖了十天。")
    assert (delivery.label, delivery.topic, delivery.language) == ("negative", "delivery", "zh")
    assert {"快递", "太慢"} <= set(delivery.keywords)
    price = sentiment_analyse("The discount code didn't work and I was charged the full price.")
    assert (price.label, price.topic) == ("negative", "price")
    assert "discount code" in price.keywords
    assert all(word == word.lower() for word in price.keywords)
    # "不满意" is one cue, not "满意" after a "不"; English words match whole: no "ship" in "relationship".
    assert sentiment_analyse("对这次的处理结果不满意。").label == "negative"
    assert sentiment_analyse("We value our relationship.").topic == ""
    assert sentiment_analyse("请问我的订单什么时候发货？").label == "neutral"
    # Traditional characters are read as simplified: the same model, word lists and keywords.
    refund = sentiment_analyse("退款兩週了還沒到賬")
    assert (refund.label, refund.topic, refund.language, refund.keywords[0]) == ("negative", "refund", "zh", "退款")
    assert sentiment_analyse("   ") == ("neutral", 0.0, (), "", "en")


def test_a_configured_taxonomy_replaces_the_built_in_one(settings, tmp_path):
    taxonomy = tmp_path / "topics.json"
    taxonomy.write_text(
        json.dumps({"packaging": {"label": "包装", "words": ["包装", "packaging"]}}, ensure_ascii=False),
        encoding="utf-8",
    )
    settings.CIM_FEEDBACK_TOPICS_FILE = str(taxonomy)
    assert sentiment_analyse("包装破了，物流也慢。").topic == "packaging"
    assert sentiment_analyse("The packaging was torn.").topic == "packaging"
    assert sentiment_analyse("Delivery was late.").topic == ""


@pytest.fixture
def feedback(admin_user):
    """A complaint by ticket, a happy survey comment and a neutral call note, two customers."""
    angry = make_customer(admin_user, display_name="李雷")
    happy = make_customer(admin_user, display_name="Jane Doe")
    ticket = ticket_create(
        customer=angry,
        subject="快递太慢",
        description="等了一个星期还没发货，客服也不给个说法。",
        channel="phone",
        actor=admin_user,
    )
    now = timezone.now()
    survey = Survey.objects.create(
        kind="csat",
        customer=happy,
        channel="email",
        token_digest="0" * 64,
        expires_at=now + timedelta(days=14),
        answered_at=now,
        score=5,
        comment="The support agent was very patient and solved my problem quickly, thank you!",
    )
    Survey.objects.create(  # answered without a comment: nothing to analyse
        kind="nps", customer=happy, channel="email", token_digest="1" * 64, expires_at=now, answered_at=now, score=9
    )
    note = Interaction.objects.create(
        customer=happy, kind="call", occurred_at=now - timedelta(days=1), body="Please change the delivery address."
    )
    return ticket, survey, note


def test_refresh_analyses_each_source_once_then_only_what_changed(feedback):
    ticket, survey, note = feedback
    run = sentiment_refresh(limit=2)  # a run's limit: the rest waits for the next one
    assert (run.analysed, run.removed, run.by_label) == (2, 0, {"negative": 1, "positive": 1})
    run = sentiment_refresh()
    assert (run.analysed, run.by_label) == (1, {"neutral": 1})
    rows = {row.source: row for row in FeedbackSentiment.objects.all()}
    assert (rows["ticket"].object_id, rows["ticket"].customer_id) == (ticket.pk, ticket.customer_id)
    assert (rows["ticket"].label, rows["ticket"].topic, rows["ticket"].language) == ("negative", "delivery", "zh")
    assert rows["ticket"].written_at == ticket.created_at
    assert (rows["survey"].label, rows["survey"].topic, rows["survey"].language) == ("positive", "service", "en")
    assert rows["survey"].written_at == survey.answered_at
    assert (rows["interaction"].label, rows["interaction"].topic) == ("neutral", "delivery")
    assert sentiment_refresh().analysed == 0

    ticket.subject, ticket.description = "物流问题", "问题已经解决了，谢谢客服，非常满意。"
    ticket.save()
    run = sentiment_refresh()
    assert (run.analysed, run.by_label) == (1, {"positive": 1})
    assert FeedbackSentiment.objects.get(source="ticket").label == "positive"

    note.delete()
    assert (sentiment_refresh().removed, FeedbackSentiment.objects.count()) == (1, 2)


def test_refresh_pages_through_many_texts_newest_first(admin_user):
    customer = make_customer(admin_user)
    now = timezone.now()
    notes = Interaction.objects.bulk_create(
        Interaction(customer=customer, kind="note", occurred_at=now, body=f"客户第{i}次来电，快递太慢。")
        for i in range(5)
    )
    assert sentiment_refresh(batch=2, limit=3).analysed == 3
    newest = {note.pk for note in notes[2:]}
    assert set(FeedbackSentiment.objects.values_list("object_id", flat=True)) == newest
    assert sentiment_refresh(batch=2).analysed == 2
    assert FeedbackSentiment.objects.filter(label="negative", topic="delivery").count() == 5


def test_the_worker_analyses_new_feedback_every_hour(feedback):
    assert PERIODIC["cim.analytics.tasks.feedback_sentiment_refresh"].every == timedelta(hours=1)
    assert feedback_sentiment_refresh.call() == 3
    assert feedback_sentiment_refresh.call() == 0


def test_summary_counts_shares_and_negative_topics_by_period(feedback):
    sentiment_refresh()
    summary = feedback_summary(period="week", periods=4)
    assert summary.totals == {"positive": 1, "neutral": 1, "negative": 1}
    assert len(summary.periods) == len(summary.shares) == 4
    this_week = summary.shares[-1]
    assert this_week["positive"] + this_week["negative"] >= 2  # the ticket and the survey were written now
    assert sum(map(sum, summary.negative_by_topic.values())) == 1
    assert list(summary.negative_by_topic) == ["delivery"]
    assert dict(summary.negative_keywords).get("快递") == 1
    months = feedback_summary(period="month", periods=3)
    assert len(months.periods) == 3 and all(day.endswith("-01") for day in months.periods)


def test_page_shows_shares_trend_keywords_and_latest_negative(client, admin_user, feedback):
    ticket, _survey, _note = feedback
    sentiment_refresh()
    client.force_login(admin_user)
    with override("en"):
        overview = client.get(reverse("analytics:overview"))
        assert reverse("analytics:feedback") in overview.content.decode()
        page = client.get(reverse("analytics:feedback"), {"period": "month"})
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-label="negative"' in html and 'data-topic="delivery"' in html
    assert reverse("service:ticket_detail", args=[ticket.number]) in html  # the latest negative, linked
    assert "李雷" in html and "feedback-data" in html
    detail = client.get(reverse("service:ticket_detail", args=[ticket.number]))
    assert 'id="feedback-sentiment"' in detail.content.decode()


def test_page_needs_analytics_permission(client, users):
    client.force_login(users[Role.SERVICE])
    assert client.get(reverse("analytics:feedback")).status_code == 403


def test_api_summary_and_latest_negative_only_on_customers_the_user_may_see(
    api_client, admin_user, make_user, other_team, feedback
):
    sentiment_refresh()
    everything = api_client(admin_user).get("/api/v1/analytics/sentiment").json()
    assert everything["totals"] == {"positive": 1, "neutral": 1, "negative": 1}
    assert [(t["topic"], t["label"], sum(t["negative"])) for t in everything["negative_by_topic"]] == [
        ("delivery", "Delivery", 1)
    ]
    [latest] = everything["latest_negative"]
    assert (latest["source"], latest["customer"], latest["topic"]) == (
        "ticket",
        feedback[0].customer.number,
        "delivery",
    )
    assert latest["url"] == reverse("service:ticket_detail", args=[feedback[0].number])
    # A manager of another team sees the counts of all feedback, but no text of customers outside the team.
    outsider = api_client(make_user(Role.MANAGER, username="north", team=other_team))
    scoped = outsider.get("/api/v1/analytics/sentiment").json()
    assert (scoped["totals"], scoped["latest_negative"]) == (everything["totals"], [])


def test_api_rejects_an_unknown_period(api_client, admin_user):
    response = api_client(admin_user).get("/api/v1/analytics/sentiment", {"period": "day"})
    assert response.status_code == 422
    assert "period" in json.dumps(response.json())


def test_cli_analyses_one_text_or_refreshes(feedback):
    out = StringIO()
    call_command("analytics", "sentiment", "--text", "质量太差了，用了两天就坏了。", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert (result["label"], result["topic"], result["language"]) == ("negative", "quality", "zh")
    out = StringIO()
    call_command("analytics", "sentiment", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert (data["analysed"], data["totals"]["negative"]) == (3, 1)
    out = StringIO()
    call_command("analytics", "sentiment", "--period", "month", stdout=out)
    assert out.getvalue().startswith("Analysed 0 new or changed texts")
