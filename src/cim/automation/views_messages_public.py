"""The links in messages, opened by customers without logging in: the open pixel, tracked links and unsubscribe.

Opening the unsubscribe link shows a confirmation (mail scanners open links too); the withdrawal is a POST, which
is also what a mail client sends for RFC 8058 one-click unsubscribe — without a session or a CSRF token, so the
signed token in the URL is the only authority, and it names one message.
"""

import base64

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from cim.automation.message_tracking import (
    message_click,
    message_for_unsubscribe,
    message_open,
    message_unsubscribe,
)
from cim.ingest.views_forms import client_ip
from cim.privacy.models import ConsentPurpose

_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _language(request) -> str:
    wanted = request.GET.get("lang") or request.POST.get("lang") or ""
    return wanted if wanted in dict(settings.LANGUAGES) else translation.get_language()


def _render(request, template: str, context: dict, language: str, status: int = 200):
    with translation.override(language):
        response = render(request, template, {**context, "language": language}, status=status)
    response["Content-Language"] = language
    return response


@never_cache
def message_open_view(request, token: str):
    message_open(token=token)
    return HttpResponse(_PIXEL, content_type="image/gif")


@never_cache
def message_click_view(request, token: str):
    url = message_click(token=token)
    if url is None or not url.startswith(("https://", "http://")):
        return _render(request, "automation/messages/public/invalid.html", {}, _language(request), status=404)
    return HttpResponseRedirect(url)


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def message_unsubscribe_view(request, token: str):
    language = _language(request)
    message = message_for_unsubscribe(token=token)
    if message is None:
        return _render(request, "automation/messages/public/invalid.html", {}, language, status=404)
    with translation.override(language):
        purpose = str(ConsentPurpose(message.purpose).label)
    if request.method == "GET":
        return _render(request, "automation/messages/public/unsubscribe.html", {"purpose": purpose}, language)
    message_unsubscribe(
        token=token,
        ip=client_ip(request),
        user_agent=request.headers.get("User-Agent", "")[:300],
        language=language,
    )
    if request.POST.get("List-Unsubscribe") == "One-Click":  # a mail client, not a person: no page to show
        return HttpResponse(status=200)
    context = {"purpose": purpose, "done": True}
    return _render(request, "automation/messages/public/unsubscribe.html", context, language)
