"""The links in messages, opened by customers without logging in: the open pixel, tracked links and unsubscribe;
and the delivery receipts the SMS gateways and WeChat push back.

Opening the unsubscribe link shows a confirmation (mail scanners open links too); the withdrawal is a POST, which
is also what a mail client sends for RFC 8058 one-click unsubscribe — without a session or a CSRF token, so the
signed token in the URL is the only authority, and it names one message.
"""

import base64
import json

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from cim.automation.message_receipts import (
    PARSERS,
    WECHAT_PROVIDER,
    ReceiptError,
    receipt_key_valid,
    receipts_apply,
    wechat_receipts,
    wechat_signature_valid,
)
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


def _gateway_answer(provider: str, error: str = "") -> JsonResponse:
    """The answer each gateway documents: anything else makes it push the same reports again."""
    if provider == "aliyun":
        body = {"code": 1 if error else 0, "msg": error or "成功"}
    else:
        body = {"result": 1 if error else 0, "errmsg": error or "OK"}
    return JsonResponse(body, status=400 if error else 200, json_dumps_params={"ensure_ascii": False})


@csrf_exempt
@never_cache
@require_http_methods(["POST"])
def message_receipt_view(request, provider: str, key: str):
    """An SMS gateway's delivery reports; the key in the URL is the only authority (the gateways do not sign)."""
    if not receipt_key_valid(provider, key):
        raise Http404
    try:
        receipts = PARSERS[provider](json.loads(request.body))
    except (ValueError, ReceiptError) as error:  # JSONDecodeError is a ValueError
        return _gateway_answer(provider, f"{type(error).__name__}: {error}"[:200])
    receipts_apply(provider, receipts)
    return _gateway_answer(provider)


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def message_receipt_wechat_view(request):
    """The official account's server URL: GET is WeChat checking the URL (echo `echostr`), POST an event."""
    query = request.GET
    if not wechat_signature_valid(
        signature=query.get("signature", ""), timestamp=query.get("timestamp", ""), nonce=query.get("nonce", "")
    ):
        return HttpResponse("bad signature", status=403, content_type="text/plain")
    if request.method == "GET":
        return HttpResponse(query.get("echostr", ""), content_type="text/plain")
    try:
        receipts = wechat_receipts(request.body)
    except ReceiptError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain")
    receipts_apply(WECHAT_PROVIDER, receipts)
    return HttpResponse("success", content_type="text/plain")  # WeChat's "received, do not resend"
