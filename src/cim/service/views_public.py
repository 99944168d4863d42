"""The public survey page a customer opens from an email or a text message: no login, made for phones.

Opening the link only shows the question (mail scanners open links too); the answer is a POST, rate-limited per
network, recorded once. A forged, altered, replaced, expired or used link gets a page saying so, never a 500.
"""

import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django_ratelimit.core import get_usage

from cim.ingest.views_forms import _rate_key, client_ip
from cim.service import conf
from cim.service.choices import SCORE_RANGE, SurveyKind
from cim.service.surveys import Outcome, survey_answer, survey_from_token

PROBLEMS = {
    Outcome.INVALID: (
        404,
        _("This survey link is not valid. Please use the link in the most recent message we sent you."),
    ),
    Outcome.EXPIRED: (410, _("This survey link has expired. Thank you for your time all the same.")),
    Outcome.USED: (410, _("This survey has already been answered. Thank you!")),
}
CSAT_LABELS = {
    1: _("Very dissatisfied"),
    2: _("Dissatisfied"),
    3: _("Neutral"),
    4: _("Satisfied"),
    5: _("Very satisfied"),
}


def _language(request) -> str:
    wanted = request.GET.get("lang") or request.POST.get("lang") or ""
    return wanted if wanted in dict(settings.LANGUAGES) else translation.get_language()


def _render(request, template: str, context: dict, language: str, status: int = 200):
    with translation.override(language):
        response = render(request, template, {**context, "language": language}, status=status)
    response["Content-Language"] = language
    return response


def _unavailable(request, language: str, outcome: Outcome):
    status, message = PROBLEMS[outcome]
    context = {"message": message, "outcome": outcome.value}
    return _render(request, "service/public/unavailable.html", context, language, status=status)


def _over_limit(request) -> int | None:
    key = _rate_key(client_ip(request))
    usage = get_usage(
        request, group="service.survey", key=lambda _g, _r: key, rate=conf.survey_rate_per_ip(), increment=True
    )
    if usage is not None and usage["should_limit"]:
        return max(usage["time_left"], 1)
    return None


def _scores(kind: str) -> list[tuple[int, str]]:
    low, high = SCORE_RANGE[SurveyKind(kind)]
    return [(n, CSAT_LABELS.get(n, "") if kind == SurveyKind.CSAT else "") for n in range(low, high + 1)]


@never_cache
def survey_view(request, token: str):
    language = _language(request)
    survey, problem = survey_from_token(token)
    if problem is not None:
        return _unavailable(request, language, problem)
    error, chosen, comment = "", None, ""
    if request.method == "POST":
        if wait := _over_limit(request):
            minutes = math.ceil(wait / 60)
            with translation.override(language):
                message = ngettext(
                    "Too many answers came from your network. Please try again in %(minutes)s minute.",
                    "Too many answers came from your network. Please try again in %(minutes)s minutes.",
                    minutes,
                ) % {"minutes": minutes}
            response = _render(request, "service/public/limited.html", {"message": message}, language, status=429)
            response["Retry-After"] = str(wait)
            return response
        comment = request.POST.get("comment", "")
        try:
            chosen = int(request.POST.get("score", ""))
            survey, outcome = survey_answer(token=token, score=chosen, comment=comment, ip=client_ip(request))
        except (ValueError, ValidationError):
            with translation.override(language):
                error = str(_("Please choose a score."))
        else:
            if outcome != Outcome.ANSWERED:
                return _unavailable(request, language, outcome)
            return _render(request, "service/public/thanks.html", {"survey": survey}, language)
    context = {
        "survey": survey,
        "scores": _scores(survey.kind),
        "error": error,
        "chosen": chosen,
        "comment": comment,
    }
    return _render(request, "service/public/survey.html", context, language, status=422 if error else 200)
