"""Feedback text analysis (客户反馈分析): the sentiment, keywords and business topic of ticket texts, survey comments
and interaction notes, in Chinese and English, with models that ship inside their packages (nothing is downloaded):

- language: the share of Chinese characters among the letters (see `language_of`); traditional characters are
  read as simplified (OpenCC);
- sentiment: SnowNLP's naive Bayes model, trained on Chinese shopping reviews, and VADER's English lexicon and rules;
- keywords: jieba's TF-IDF over content words (its IDF table ships with it) and YAKE for English;
- topic: the configured taxonomy's words in both languages (`CIM_FEEDBACK_TOPICS_FILE` replaces the built-in one).

Both models were made for reviews that praise or complain; service texts are often neither (questions, requests),
and both read a polite "please"/"请问" or a product's name as a mood. So a question or request without a feedback
cue is damped towards neutral, and short lists of service cues the models miss ("still hasn't shipped", "还没到账")
move the score. The accuracy on labelled sets in both languages is in docs/analytics.md.

The models load on first use (about 4 s for SnowNLP and jieba), so importing this module costs nothing.
"""

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache as django_cache
from django.db.models import Count, Exists, OuterRef
from django.db.models.functions import TruncMonth, TruncWeek
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cim.activities.models import Interaction
from cim.analytics.models import FeedbackSentiment
from cim.customers.models import Customer
from cim.service.models import Survey, Ticket

BATCH = 2000
# Texts one hourly run analyses at most (about 5 minutes of Chinese text on one core): a long history is worked
# off over several runs, newest first, and a run never overlaps the next.
HOURLY_LIMIT = 100_000
CACHE_SECONDS = 600
PERIODS = {"week": TruncWeek, "month": TruncMonth}
DEFAULT_PERIODS = 12
KEYWORDS = 5
# Content words only: jieba's TF-IDF otherwise ranks pronouns and particles (请问, 一下, 还是) among the keywords.
CONTENT_POS = ("n", "nr", "ns", "nt", "nz", "nw", "vn", "v", "a", "an", "ad", "i", "l", "eng")
# |score| from which a text is positive or negative; between them it is neutral.
THRESHOLD = 0.3
CUE_WEIGHT = 0.6
INQUIRY_DAMPING = 0.25

Label = FeedbackSentiment.Label


def _words(text: str) -> list[str]:
    return [word.strip() for word in text.split(",")]


# Business topics (key → label, words in both languages): the first topic with the most matches wins.
TOPICS: dict[str, tuple[str, list[str]]] = {
    "delivery": (
        _("Delivery"),
        _words(
            "物流, 快递, 发货, 送货, 配送, 包裹, 到货, 签收, 派送, 收货, "
            "delivery, delivered, deliver, shipping, shipped, ship, courier, parcel, package, tracking, "
            "arrived, arrive, dispatch, dispatched"
        ),
    ),
    "price": (
        _("Price"),
        _words(
            "价格, 价位, 贵, 便宜, 划算, 性价比, 优惠, 折扣, 降价, 涨价, 报价, 实惠, 活动价, 优惠券, "
            "price, prices, expensive, cheap, cheaper, value for money, discount, bargain, cost, charged, "
            "coupon, sale, overpriced, vat"
        ),
    ),
    "quality": (
        _("Quality"),
        _words(
            "质量, 品质, 做工, 面料, 材质, 坏了, 破损, 掉色, 起球, 划痕, 瑕疵, 味道, 耐用, 口感, 二手, "
            "quality, broke, broken, faulty, defect, defective, scratched, faded, shrank, stitching, material, "
            "well made, flimsy, smells"
        ),
    ),
    "service": (
        _("Service"),
        _words(
            "客服, 服务, 态度, 售后, 店员, 回复, 耐心, 电话, 推脱, "
            "service, support, agent, staff, rude, helpful, called, call back, complaint, warranty, "
            "installation"
        ),
    ),
    "refund": (
        _("Refunds and returns"),
        _words("退款, 退货, 退钱, 到账, 换货, 退回, refund, refunded, return, returned, money back, exchange"),
    ),
    "app": (
        _("App and website"),
        _words(
            "小程序, 网站, 页面, 闪退, 登录, 账号, 手机号, 绑定, "
            "app, website, site, checkout, check out, login, log in, crash, crashing, account, password"
        ),
    ),
    "product": (
        _("Product"),
        _words("产品, 商品, 功能, 尺码, 颜色, 机器, product, model, item, feature, size, colour, color, machine"),
    ),
}

# Feedback cues the models miss: service complaints and praise that name no feeling ("two weeks and no refund").
NEGATIVE_CUES = {
    "zh": _words(
        "还没, 没收到, 没到, 没发货, 不发货, 太慢, 太贵, 太差, 很差, 不满意, 失望, 坏了, 压坏, 破损, 没人, "
        "不回复, 不负责, 推脱, 闪退, 卡住, 被坑, 降价, 用不了, "
        "没法用, 不如, 再也不, 麻烦死"
    ),
    "en": _words(
        "hasn't, haven't, has not, have not, still not, not received, never received, nobody, no one, "
        "no reply, no response, never, late, delayed, damaged, too expensive, overpriced, waste of money, "
        "nightmare, crash, crashing, stuck, scratched, didn't work, doesn't work"
    ),
}
POSITIVE_CUES = {
    "zh": _words("满意, 很快, 及时, 不错, 好评, 推荐, 谢谢, 感谢, 回购, 方便, 好用, 专业, 值"),
    "en": _words("on time, quickly, value for money, smooth, recommend"),
}
# A question or a request: what service texts are when they are not feedback.
INQUIRY = {
    "zh": re.compile(
        r"[?？]\s*$|[吗呢][。.!！]?\s*$|^(请问|请|麻烦|想了解|想咨询|我想|能不能|能否|可以|怎么|如何|是否|有没有)"
    ),
    "en": re.compile(
        r"\?\s*$|^(please|can|could|would|how|what|when|where|which|is|are|do|does|will|i'd like|i would like)\b",
        re.IGNORECASE,
    ),
}
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


class Analysis(NamedTuple):
    label: str
    score: float  # -1 (negative) … 1 (positive)
    keywords: tuple[str, ...]
    topic: str  # a key of the taxonomy, or "" when no topic's words occur
    language: str  # "zh" or "en"


def language_of(text: str) -> str:
    """Chinese ("zh") when Chinese characters are at least a quarter of the letters, else English ("en").

    Only these two languages are analysed, so the question is which analyser reads a text; the script answers it
    in microseconds and tells mixed texts apart (an English brand in a Chinese sentence, a Chinese name in an
    English one), where a language-identification model would add a dependency and a model file for nothing."""
    cjk = len(_CJK.findall(text))
    return "zh" if cjk and cjk * 4 >= cjk + len(_LATIN.findall(text)) else "en"


def topics() -> dict[str, tuple[str, list[str]]]:
    """The taxonomy in force: the built-in one, or the JSON file `CIM_FEEDBACK_TOPICS_FILE` names
    (`{"key": {"label": "…", "words": ["…", …]}, …}`, in the order topics win ties)."""
    return _topics_from(settings.CIM_FEEDBACK_TOPICS_FILE)


@cache
def _topics_from(path: str) -> dict[str, tuple[str, list[str]]]:
    if not path:
        return TOPICS
    with open(path, encoding="utf-8") as file:
        return {key: (entry.get("label", key), list(entry["words"])) for key, entry in json.load(file).items()}


def topic_label(key: str) -> str:
    """The topic's label; a topic no longer configured keeps its key."""
    return str(topics().get(key, (key, []))[0]) if key else str(_("Other"))


@cache
def _matcher(words: tuple[str, ...]) -> re.Pattern:
    """One pattern for a list of words, longest first so that "不满意" wins over "满意"; English words match whole
    (a "ship" is not in "relationship"), Chinese ones anywhere, as Chinese has no spaces."""
    parts = [
        rf"(?<![a-z]){re.escape(word)}(?![a-z])" if word.isascii() else re.escape(word)
        for word in sorted({w.lower() for w in words}, key=len, reverse=True)
    ]
    return re.compile("|".join(parts))


def _count(words: list[str], text: str) -> int:
    return len(_matcher(tuple(words)).findall(text)) if words else 0


def _cues(text: str, language: str) -> int:
    """Positive cues less negative ones, matched in one pass so that a negated praise counts once, as negative."""
    positive = set(POSITIVE_CUES[language])
    found = _matcher(tuple(POSITIVE_CUES[language] + NEGATIVE_CUES[language])).findall(text)
    return sum(1 if cue in positive else -1 for cue in found)


def topic_of(text: str) -> str:
    lowered = text.lower()
    hits = {key: _count(words, lowered) for key, (_label, words) in topics().items()}
    best = max(hits.values(), default=0)
    return next(key for key, n in hits.items() if n == best) if best else ""


@cache
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


@cache
def _snownlp():
    from snownlp import SnowNLP

    return SnowNLP


@cache
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@cache
def _jieba():
    import jieba
    import jieba.analyse

    jieba.setLogLevel(logging.WARNING)  # it announces building its dictionary on the log at each start
    return jieba.analyse


@cache
def _yake():
    import yake

    return yake.KeywordExtractor(lan="en", n=2, top=KEYWORDS, dedupLim=0.7)


def model_score(text: str, language: str) -> float:
    """The model's own score, -1 … 1."""
    if language == "zh":
        return 2 * _snownlp()(text).sentiments - 1
    return _vader().polarity_scores(text)["compound"]


def keywords_of(text: str, language: str) -> tuple[str, ...]:
    if language == "zh":
        return tuple(_jieba().extract_tags(text, topK=KEYWORDS, allowPOS=CONTENT_POS))
    found: list[str] = []
    for phrase, _weight in _yake().extract_keywords(text):
        if phrase.lower() not in found:
            found.append(phrase.lower())
    return tuple(found)


def sentiment_analyse(text: str) -> Analysis:
    """The sentiment label and score, keywords, topic and language of one text."""
    return _analyse(text.strip(), settings.CIM_FEEDBACK_TOPICS_FILE)


@lru_cache(maxsize=20_000)  # short survey comments repeat ("好评", "Great service"); per taxonomy, as topics differ
def _analyse(text: str, _taxonomy: str) -> Analysis:
    language = language_of(text)
    if not text:
        return Analysis(Label.NEUTRAL, 0.0, (), "", language)
    if language == "zh":
        # The models and word lists are in simplified Chinese; keywords from Hong Kong and Taiwan then count as one.
        text = _t2s().convert(text)
    cues = _cues(text.lower(), language)
    score = model_score(text, language)
    if not cues and INQUIRY[language].search(text):
        score *= INQUIRY_DAMPING
    score = max(-1.0, min(1.0, score + CUE_WEIGHT * cues))
    label = Label.POSITIVE if score >= THRESHOLD else Label.NEGATIVE if score <= -THRESHOLD else Label.NEUTRAL
    return Analysis(label.value, round(score, 4), keywords_of(text, language), topic_of(text), language)


# Where feedback comes from: (source, the rows with text, when a row last changed, when it was written, its text).
def _sources():
    return [
        (
            FeedbackSentiment.Source.TICKET,
            Ticket.objects.all(),
            "updated_at",
            "created_at",
            ("subject", "description"),
        ),
        (
            FeedbackSentiment.Source.SURVEY,
            Survey.objects.filter(answered_at__isnull=False).exclude(comment=""),
            "answered_at",
            "answered_at",
            ("comment",),
        ),
        (
            # Interactions are never edited: analysed once.
            FeedbackSentiment.Source.INTERACTION,
            Interaction.objects.exclude(subject="", body=""),
            "created_at",
            "occurred_at",
            ("subject", "body"),
        ),
    ]


UPDATED = ["customer", "language", "label", "score", "keywords", "topic", "written_at", "analysed_at"]


@dataclass
class SentimentRun:
    analysed: int
    removed: int
    by_label: dict[str, int]


def sentiment_refresh(*, batch: int = BATCH, limit: int | None = None) -> SentimentRun:
    """Analyse the feedback written or changed since it was last analysed (or moved to another customer by a
    merge), newest first, a batch at a time and at most `limit` texts; drop the rows whose text is gone. A second
    run with nothing new does nothing."""
    analysed, removed, by_label = 0, 0, Counter()
    for source, rows, changed, written, fields in _sources():
        current = FeedbackSentiment.objects.filter(
            source=source,
            object_id=OuterRef("pk"),
            customer_id=OuterRef("customer_id"),
            analysed_at__gte=OuterRef(changed),
        )
        stale = rows.exclude(Exists(current)).order_by("-pk").values_list("pk", "customer_id", written, *fields)
        last = None
        # Pages by primary key: each page is a fresh query, so writes never disturb an open cursor.
        while limit is None or analysed < limit:
            size = batch if limit is None else min(batch, limit - analysed)
            page = list((stale if last is None else stale.filter(pk__lt=last))[:size])
            if not page:
                break
            last = page[-1][0]
            found = []
            for pk, customer_id, written_at, *texts in page:
                result = sentiment_analyse("\n".join(t for t in texts if t))
                by_label[result.label] += 1
                found.append(
                    FeedbackSentiment(
                        source=source,
                        object_id=pk,
                        customer_id=customer_id,
                        language=result.language,
                        label=result.label,
                        score=result.score,
                        keywords=list(result.keywords),
                        topic=result.topic,
                        written_at=written_at,
                    )
                )
            # analysed_at is auto_now: set at the write, after the source rows were read.
            FeedbackSentiment.objects.bulk_create(
                found,
                update_conflicts=True,
                unique_fields=["source", "object_id"],
                update_fields=UPDATED,
                batch_size=batch,
            )
            analysed += len(found)
        # NOT EXISTS, not NOT IN: PostgreSQL rescans a NOT IN subquery per row once it outgrows work_mem.
        gone = FeedbackSentiment.objects.filter(source=source).exclude(Exists(rows.filter(pk=OuterRef("object_id"))))
        removed += gone.delete()[0]
    if analysed or removed:
        django_cache.delete_many([f"analytics:sentiment:{period}:{DEFAULT_PERIODS}" for period in PERIODS])
    return SentimentRun(analysed=analysed, removed=removed, by_label=dict(by_label))


@dataclass
class FeedbackSummary:
    period: str  # week or month
    since: datetime
    totals: dict[str, int]  # label → texts
    shares: list[dict]  # {period, positive, neutral, negative}: counts per period
    negative_by_topic: dict[str, list[int]]  # topic → negative texts per period, in `periods` order
    periods: list[str]  # ISO dates of the periods' first days
    topic_labels: dict[str, str]  # set on each read
    keywords: list[tuple[str, int]]  # in all feedback
    negative_keywords: list[tuple[str, int]]


def feedback_summary(*, period: str = "week", periods: int = DEFAULT_PERIODS) -> FeedbackSummary:
    """Shares of each label per week or month, negative feedback per topic and period, and the top keywords, over
    the last `periods` periods; kept in the cache for a while (the refresh clears it)."""
    key = f"analytics:sentiment:{period}:{periods}"
    found = django_cache.get(key)
    if found is None:
        found = _summary(period, periods)
        django_cache.set(key, found, CACHE_SECONDS)
    # In the reader's language, not in that of whoever filled the cache.
    found.topic_labels = {topic: topic_label(topic) for topic in [*topics(), *found.negative_by_topic, ""]}
    return found


def _period_start(period: str, periods: int) -> datetime:
    today = timezone.localdate()
    if period == "week":
        first = today - timedelta(days=today.weekday() + 7 * (periods - 1))
    else:
        months = today.year * 12 + today.month - 1 - (periods - 1)
        first = today.replace(year=months // 12, month=months % 12 + 1, day=1)
    return timezone.make_aware(datetime.combine(first, datetime.min.time()))


def _summary(period: str, periods: int) -> FeedbackSummary:
    since = _period_start(period, periods)
    window = FeedbackSentiment.objects.filter(written_at__gte=since)
    grouped = (
        window.annotate(start=PERIODS[period]("written_at"))
        .values_list("start", "label", "topic")
        .annotate(n=Count("pk"))
        .order_by()
    )
    starts: list[str] = []
    current = since.date()
    while current <= timezone.localdate():
        starts.append(current.isoformat())
        current = current + timedelta(days=7) if period == "week" else (current + timedelta(days=32)).replace(day=1)
    shares = {start: {"period": start, **dict.fromkeys(Label.values, 0)} for start in starts}
    negative: dict[str, list[int]] = {}
    totals = dict.fromkeys(Label.values, 0)
    for start, label, topic, n in grouped:
        day = (timezone.localtime(start).date() if isinstance(start, datetime) else start).isoformat()
        if day not in shares:
            continue
        shares[day][label] += n
        totals[label] += n
        if label == Label.NEGATIVE:
            negative.setdefault(topic, [0] * len(starts))[starts.index(day)] += n
    everything, negatives = Counter(), Counter()
    # The most recent texts speak for the period: capped so a page never reads a million keyword lists.
    for label, words in window.order_by("-written_at").values_list("label", "keywords")[:50_000]:
        everything.update(words)
        if label == Label.NEGATIVE:
            negatives.update(words)
    return FeedbackSummary(
        period=period,
        since=since,
        totals=totals,
        shares=list(shares.values()),
        negative_by_topic=dict(sorted(negative.items(), key=lambda item: -sum(item[1]))),
        periods=starts,
        topic_labels={},
        keywords=everything.most_common(20),
        negative_keywords=negatives.most_common(20),
    )


@dataclass
class NegativeItem:
    source: str
    object_id: int
    customer_number: str
    customer_name: str
    topic: str
    topic_label: str
    score: float
    keywords: list[str]
    written_at: datetime
    text: str
    url: str


def latest_negative(*, user, limit: int = 20) -> list[NegativeItem]:
    """The newest negative feedback on customers `user` may see, with its text and a link to where it was written."""
    rows = list(
        FeedbackSentiment.objects.filter(
            label=Label.NEGATIVE, customer__in=Customer.objects.visible_to(user).values("pk")
        ).select_related("customer")[:limit]
    )
    ids: dict[str, list[int]] = {}
    for row in rows:
        ids.setdefault(row.source, []).append(row.object_id)
    Source = FeedbackSentiment.Source
    tickets, texts = {}, {}
    for pk, number, subject, description in Ticket.objects.filter(pk__in=ids.get(Source.TICKET, [])).values_list(
        "pk", "number", "subject", "description"
    ):
        tickets[pk] = number
        texts[(Source.TICKET, pk)] = f"{subject}: {description}" if description else subject
    surveys = {}
    for pk, comment, ticket_number in Survey.objects.filter(pk__in=ids.get(Source.SURVEY, [])).values_list(
        "pk", "comment", "ticket__number"
    ):
        texts[(Source.SURVEY, pk)] = comment
        surveys[pk] = ticket_number
    for pk, subject, body in Interaction.objects.filter(pk__in=ids.get(Source.INTERACTION, [])).values_list(
        "pk", "subject", "body"
    ):
        texts[(Source.INTERACTION, pk)] = f"{subject}: {body}" if subject and body else subject or body
    items = []
    for row in rows:
        number = row.customer.number
        if row.source == Source.TICKET and row.object_id in tickets:
            url = reverse("service:ticket_detail", args=[tickets[row.object_id]])
        elif row.source == Source.SURVEY and surveys.get(row.object_id):
            url = reverse("service:ticket_detail", args=[surveys[row.object_id]])
        elif row.source == Source.INTERACTION:
            url = reverse("activities:interaction", args=[row.object_id])
        else:
            url = reverse("customers:detail", args=[number])
        items.append(
            NegativeItem(
                source=row.source,
                object_id=row.object_id,
                customer_number=number,
                customer_name=row.customer.display_name,
                topic=row.topic,
                topic_label=topic_label(row.topic),
                score=row.score,
                keywords=row.keywords,
                written_at=row.written_at,
                text=texts.get((row.source, row.object_id), "")[:200],
                url=url,
            )
        )
    return items
