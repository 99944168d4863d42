"""Delivery receipts the SMS gateways and WeChat push back, turned into message statuses (docs/messages.md).

- Aliyun SMS (SmsReport, HTTP batch push) and Tencent Cloud SMS (status callback) POST a JSON array of reports to
  a URL configured in their consoles. Neither signs its requests, so the URL carries a key derived from
  SECRET_KEY (`receipt_key`); `cim messages receipt-urls` prints the URLs.
- A WeChat official account sends TEMPLATESENDJOBFINISH events, as XML, to the account's server URL, signed with
  the token set in its backend (CIM_WECHAT_TOKEN).

Each report names the provider's message id (Aliyun `biz_id`, Tencent `sid`, WeChat `MsgID`), which is what the
provider returned when the message was sent; `message_status_update` moves the message forward only.
"""

import hashlib
import hmac
from dataclasses import dataclass

from defusedxml import DefusedXmlException, ElementTree
from django.conf import settings
from django.urls import reverse
from django.utils.crypto import salted_hmac

from cim.automation.message_tracking import message_status_update
from cim.automation.models.messages import MessageStatus
from cim.service.conf import site_url

SMS_PROVIDERS = ("aliyun", "tencent")
WECHAT_PROVIDER = "official_account"


class ReceiptError(ValueError):
    """The request is not a receipt this provider sends; the message says why, for the provider's console."""


@dataclass(frozen=True)
class Receipt:
    provider_message_id: str
    status: str  # delivered or failed
    detail: str


def receipt_key(provider: str) -> str:
    """The key in a provider's receipt URL: stable for one SECRET_KEY, different per provider."""
    return salted_hmac("cim.automation.message_receipts", provider).hexdigest()[:32]


def receipt_key_valid(provider: str, key: str) -> bool:
    return provider in SMS_PROVIDERS and hmac.compare_digest(receipt_key(provider), key)


def receipt_urls() -> dict[str, str]:
    """Where each provider is to send its receipts (to paste into its console)."""
    urls = {
        provider: site_url() + reverse("automation:message_receipt", args=[provider, receipt_key(provider)])
        for provider in SMS_PROVIDERS
    }
    urls[WECHAT_PROVIDER] = site_url() + reverse("automation:message_receipt_wechat")
    return urls


def _reports(payload) -> list[dict]:
    reports = payload if isinstance(payload, list) else [payload]
    if not reports or not all(isinstance(report, dict) for report in reports):
        raise ReceiptError("expected a JSON array of report objects")
    return reports


def aliyun_receipts(payload) -> list[Receipt]:
    """Aliyun SmsReport: `biz_id`, `success` (true/false), `err_code`, `err_msg`."""
    receipts = []
    for report in _reports(payload):
        if not report.get("biz_id"):
            raise ReceiptError("a report without biz_id")
        ok = report.get("success") in (True, "true")
        detail = "" if ok else f"{report.get('err_code', '')}: {report.get('err_msg', '')}".strip(": ")
        receipts.append(Receipt(str(report["biz_id"]), MessageStatus.DELIVERED if ok else MessageStatus.FAILED, detail))
    return receipts


def tencent_receipts(payload) -> list[Receipt]:
    """Tencent SMS status callback: `sid`, `report_status` (SUCCESS/FAIL), `errmsg`, `description`."""
    receipts = []
    for report in _reports(payload):
        if not report.get("sid") or report.get("report_status") not in ("SUCCESS", "FAIL"):
            raise ReceiptError("a report without sid or report_status SUCCESS/FAIL")
        ok = report["report_status"] == "SUCCESS"
        detail = "" if ok else f"{report.get('errmsg', '')}: {report.get('description', '')}".strip(": ")
        receipts.append(Receipt(str(report["sid"]), MessageStatus.DELIVERED if ok else MessageStatus.FAILED, detail))
    return receipts


PARSERS = {"aliyun": aliyun_receipts, "tencent": tencent_receipts}


def wechat_signature_valid(*, signature: str, timestamp: str, nonce: str) -> bool:
    """WeChat's server-URL signature: SHA-1 of the token, timestamp and nonce, sorted and joined."""
    token = settings.CIM_WECHAT_TOKEN
    if not token:
        return False
    expected = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return hmac.compare_digest(expected, signature)


def wechat_receipts(body: bytes) -> list[Receipt]:
    """The official account's TEMPLATESENDJOBFINISH event (`MsgID`, `Status`: success, `failed:user block`,
    `failed: system failed`); other events sent to the server URL carry no receipt."""
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException) as error:  # entities and DTDs are refused, not expanded
        raise ReceiptError(f"not XML we accept: {error}") from None
    if (root.findtext("Event") or "").upper() != "TEMPLATESENDJOBFINISH":
        return []
    message_id, status = (root.findtext("MsgID") or "").strip(), (root.findtext("Status") or "").strip()
    if not message_id:
        raise ReceiptError("TEMPLATESENDJOBFINISH without MsgID")
    ok = status == "success"
    return [Receipt(message_id, MessageStatus.DELIVERED if ok else MessageStatus.FAILED, "" if ok else status)]


def receipts_apply(provider: str, receipts: list[Receipt]) -> None:
    """Each receipt moves its message forward; one about a message CIM does not know, or already further on, is
    ignored (the gateway has done its part)."""
    for receipt in receipts:
        message_status_update(
            provider=provider,
            provider_message_id=receipt.provider_message_id,
            status=receipt.status,
            detail=receipt.detail,
        )
