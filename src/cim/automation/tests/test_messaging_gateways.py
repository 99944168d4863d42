"""The SMS and WeChat gateways' HTTP APIs, against a local server that checks each request the way the gateway's
documentation says it does: Aliyun's ACS3-HMAC-SHA256 and Tencent Cloud's TC3-HMAC-SHA256 signatures recomputed
from the request as received, WeChat's access tokens."""

import datetime
import hashlib
import hmac
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from django.core.management import call_command
from django.urls import reverse

from cim.automation.message_receipts import receipt_key, receipt_urls
from cim.automation.messaging import messages_deliver, messages_queue
from cim.automation.models import Message, MessageTemplate
from cim.customers.models import ExternalId
from cim.customers.tests.factories import make_customer
from cim.privacy.services import consent_record

ALIYUN = ("LTAI-test-id", "aliyun-secret")
TENCENT = ("AKID-test-id", "tencent-secret")


def aliyun_signature_ok(method: str, target: str, headers, body: bytes, secret: str) -> bool:
    """Aliyun V3 signature, server side: canonical request from what arrived, HMAC-SHA256 with the secret."""
    scheme, _sep, rest = headers["Authorization"].partition(" ")
    fields = dict(part.split("=", 1) for part in rest.split(","))
    signed = fields["SignedHeaders"].split(";")
    split = urlsplit(target)
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in parse_qsl(split.query))
    canonical = "\n".join(
        [
            method,
            split.path or "/",
            "&".join(f"{k}={v}" for k, v in pairs),
            "".join(f"{name}:{headers[name].strip()}\n" for name in signed),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        scheme == "ACS3-HMAC-SHA256"
        and fields["Credential"] == ALIYUN[0]
        and headers["x-acs-content-sha256"] == hashlib.sha256(body).hexdigest()
        and {"host", "x-acs-action", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"} <= set(signed)
        and hmac.compare_digest(expected, fields["Signature"])
    )


def tencent_signature_ok(headers, body: bytes, secret: str) -> bool:
    """TC3-HMAC-SHA256, server side: derived key from date and service, canonical request from what arrived."""
    scheme, _sep, rest = headers["Authorization"].partition(" ")
    fields = dict(part.strip().split("=", 1) for part in rest.split(","))
    secret_id, day, service, terminator = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            "".join(
                f"{name}:{headers[name].strip().lower() if name == 'x-tc-action' else headers[name]}\n"
                for name in signed
            ),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    timestamp = headers["X-TC-Timestamp"]
    scope = f"{day}/{service}/{terminator}"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = ("TC3" + secret).encode()
    for part in (day, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    day_of_timestamp = datetime.datetime.fromtimestamp(int(timestamp), datetime.UTC).strftime("%Y-%m-%d")
    return (
        scheme == "TC3-HMAC-SHA256"
        and secret_id == TENCENT[0]
        and (service, terminator) == ("sms", "tc3_request")
        and day == day_of_timestamp
        and {"content-type", "host"} <= set(signed)
        and hmac.compare_digest(expected, fields["Signature"])
    )


class Gateway(BaseHTTPRequestHandler):
    """Answers like the gateways, after checking the request; keeps what it accepted in `server.accepted`."""

    def log_message(self, *args):
        pass

    def _reply(self, status: int, answer: dict) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query))
        if split.path == "/cgi-bin/gettoken":  # WeCom
            ok = (query.get("corpid"), query.get("corpsecret")) == ("corp-1", "wecom-secret")
            return self._reply(
                200,
                {"errcode": 0, "access_token": "wecom-token", "expires_in": 7200}
                if ok
                else {"errcode": 40001, "errmsg": "invalid credential"},
            )
        if split.path == "/cgi-bin/token":  # official account
            ok = (query.get("grant_type"), query.get("appid"), query.get("secret")) == (
                "client_credential",
                "wx-app",
                "wx-secret",
            )
            return self._reply(
                200,
                {"access_token": "oa-token", "expires_in": 7200}
                if ok
                else {"errcode": 40013, "errmsg": "invalid appid"},
            )
        return self._reply(404, {})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query))
        accepted = self.server.accepted
        if "x-acs-action" in self.headers:
            if not aliyun_signature_ok("POST", self.path, self.headers, body, self.server.aliyun_secret):
                return self._reply(
                    400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched"}
                )
            accepted.append(("aliyun", query))
            return self._reply(200, {"Code": "OK", "Message": "OK", "BizId": f"biz-{len(accepted)}", "RequestId": "r"})
        if "X-TC-Action" in self.headers:
            if not tencent_signature_ok(self.headers, body, self.server.tencent_secret):
                return self._reply(
                    200, {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "x"}}}
                )
            request = json.loads(body)
            accepted.append(("tencent", request))
            status = {"SerialNo": f"serial-{len(accepted)}", "PhoneNumber": request["PhoneNumberSet"][0], "Code": "Ok"}
            return self._reply(200, {"Response": {"SendStatusSet": [status], "RequestId": "r"}})
        if split.path == "/cgi-bin/message/send" and query.get("access_token") == "wecom-token":
            accepted.append(("wecom", json.loads(body)))
            return self._reply(200, {"errcode": 0, "errmsg": "ok", "msgid": f"wecom-{len(accepted)}"})
        if split.path == "/cgi-bin/message/template/send" and query.get("access_token") == "oa-token":
            accepted.append(("official_account", json.loads(body)))
            return self._reply(200, {"errcode": 0, "errmsg": "ok", "msgid": 1000 + len(accepted)})
        return self._reply(200, {"errcode": 40014, "errmsg": "invalid access_token"})


@pytest.fixture
def gateway(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    server.accepted, server.aliyun_secret, server.tencent_secret = [], ALIYUN[1], TENCENT[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.CIM_MESSAGE_QUIET_HOURS = ""
    settings.CIM_ALIYUN_SMS_ENDPOINT = settings.CIM_TENCENT_SMS_ENDPOINT = url
    settings.CIM_WECOM_ENDPOINT = settings.CIM_WECHAT_ENDPOINT = url
    settings.CIM_ALIYUN_ACCESS_KEY_ID, settings.CIM_ALIYUN_ACCESS_KEY_SECRET = ALIYUN
    settings.CIM_ALIYUN_SMS_SIGN_NAME = settings.CIM_TENCENT_SMS_SIGN_NAME = "CIM商城"
    settings.CIM_TENCENT_SECRET_ID, settings.CIM_TENCENT_SECRET_KEY = TENCENT
    settings.CIM_TENCENT_SMS_APP_ID = "1400000000"
    settings.CIM_WECOM_CORP_ID, settings.CIM_WECOM_SECRET, settings.CIM_WECOM_AGENT_ID = (
        "corp-1",
        "wecom-secret",
        "1000002",
    )
    settings.CIM_WECHAT_APP_ID, settings.CIM_WECHAT_APP_SECRET = "wx-app", "wx-secret"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def fang(admin_user):
    fang = make_customer(admin_user, display_name="王芳", phones=[{"number": "13800138000"}])
    ExternalId.objects.create(customer=fang, system="wechat", value="openid-fang")
    consent_record(customer=fang, purpose="marketing", text="同意", text_version="1", actor=None)
    return fang


def _send(admin_user, fang, channel: str, **template) -> Message:
    made = MessageTemplate.objects.create(name=f"t-{channel}", channel=channel, purpose="marketing", **template)
    messages_queue(customer_ids=[fang.pk], template=made, key_prefix=f"gw:{channel}", actor=admin_user)
    messages_deliver()
    return Message.objects.get(template=made)


SMS = {
    "body": "【CIM商城】{{ customer.display_name }}，您有一张优惠券",
    "provider_template_id": "SMS_100",
    "params": {"1": "{{ customer.display_name }}", "2": "{{ code }}", "name": "{{ customer.display_name }}"},
}


def test_aliyun_sms_is_signed_as_documented(admin_user, fang, gateway, settings):
    settings.CIM_MESSAGE_SMS_PROVIDER = "aliyun"
    message = _send(admin_user, fang, "sms", **SMS)
    assert (message.status, message.provider, message.provider_message_id) == ("sent", "aliyun", "biz-1")
    [(_kind, query)] = gateway.accepted
    assert query["PhoneNumbers"] == "13800138000" and query["SignName"] == "CIM商城"
    assert query["TemplateCode"] == "SMS_100" and query["OutId"] == str(message.pk)
    assert json.loads(query["TemplateParam"]) == {"1": "王芳", "2": "", "name": "王芳"}


def test_a_wrong_aliyun_secret_is_refused_and_not_retried(admin_user, fang, gateway, settings):
    settings.CIM_MESSAGE_SMS_PROVIDER = "aliyun"
    gateway.aliyun_secret = "the-real-one"
    message = _send(admin_user, fang, "sms", **SMS)
    assert message.status == "failed" and "SignatureDoesNotMatch" in message.error
    assert not gateway.accepted


def test_tencent_sms_is_signed_as_documented(admin_user, fang, gateway, settings):
    settings.CIM_MESSAGE_SMS_PROVIDER = "tencent"
    message = _send(admin_user, fang, "sms", **SMS)
    assert (message.status, message.provider_message_id) == ("sent", "serial-1")
    [(_kind, request)] = gateway.accepted
    assert request["PhoneNumberSet"] == ["+8613800138000"] and request["TemplateId"] == "SMS_100"
    assert request["TemplateParamSet"] == ["王芳", "", "王芳"]  # positional: 1, 2, then the named ones
    assert request["SmsSdkAppId"] == "1400000000" and request["SessionContext"] == str(message.pk)


def test_a_wrong_tencent_secret_is_refused(admin_user, fang, gateway, settings):
    settings.CIM_MESSAGE_SMS_PROVIDER = "tencent"
    gateway.tencent_secret = "the-real-one"
    message = _send(admin_user, fang, "sms", **SMS)
    assert message.status == "failed" and "AuthFailure.SignatureFailure" in message.error


def test_wecom_application_message(admin_user, fang, gateway, settings):
    settings.CIM_MESSAGE_WECHAT_PROVIDER = "wecom"
    message = _send(admin_user, fang, "wechat", body="{{ customer.display_name }}，您好")
    assert (message.status, message.provider, message.provider_message_id) == ("sent", "wecom", "wecom-1")
    assert gateway.accepted == [
        ("wecom", {"touser": "openid-fang", "msgtype": "text", "agentid": 1000002, "text": {"content": "王芳，您好"}})
    ]


def test_official_account_template_message(admin_user, fang, gateway, settings):
    settings.CIM_MESSAGE_WECHAT_PROVIDER = "official_account"
    message = _send(
        admin_user,
        fang,
        "wechat",
        body="会员提醒",
        provider_template_id="tpl-abc",
        params={"first": "{{ customer.display_name }}，您好", "url": "https://shop.example.com/"},
    )
    assert (message.status, message.provider_message_id) == ("sent", "1001")
    assert gateway.accepted == [
        (
            "official_account",
            {
                "touser": "openid-fang",
                "template_id": "tpl-abc",
                "data": {"first": {"value": "王芳，您好"}},
                "url": "https://shop.example.com/",
            },
        )
    ]


def test_a_token_that_cannot_be_had_leaves_the_message_queued(admin_user, fang, gateway, settings):
    settings.CIM_MESSAGE_WECHAT_PROVIDER = "wecom"
    settings.CIM_WECOM_SECRET = "wrong"
    message = _send(admin_user, fang, "wechat", body="您好")
    assert message.status == "queued" and message.attempts == 1 and message.send_after
    assert not gateway.accepted


def test_an_unreachable_gateway_is_retried_later(admin_user, fang, gateway, settings):
    settings.CIM_MESSAGE_SMS_PROVIDER = "aliyun"
    gateway.shutdown()
    gateway.server_close()
    message = _send(admin_user, fang, "sms", **SMS)
    assert message.status == "queued" and message.attempts == 1


# --- Delivery receipts pushed back by the gateways


def _receipt_path(provider: str) -> str:
    return urlsplit(receipt_urls()[provider]).path


@pytest.mark.parametrize(
    ("provider", "report", "answer"),
    [
        (
            "aliyun",
            {"phone_number": "13800138000", "success": True, "err_code": "DELIVERED", "err_msg": "用户接收成功"},
            {"code": 0, "msg": "成功"},
        ),
        (
            "tencent",
            {"mobile": "13800138000", "nationcode": "86", "report_status": "SUCCESS", "errmsg": "DELIVRD"},
            {"result": 0, "errmsg": "OK"},
        ),
    ],
)
def test_an_sms_gateways_receipt_marks_the_message_delivered(
    admin_user, fang, gateway, settings, client, provider, report, answer
):
    settings.CIM_MESSAGE_SMS_PROVIDER = provider
    message = _send(admin_user, fang, "sms", **SMS)
    key = "biz_id" if provider == "aliyun" else "sid"
    stranger = {**report, key: "not-ours"}
    body = json.dumps([{**report, key: message.provider_message_id}, stranger], ensure_ascii=False)
    response = client.post(_receipt_path(provider), body, content_type="application/json")
    assert (response.status_code, response.json()) == (200, answer)
    message.refresh_from_db()
    assert message.status == "delivered"


def test_a_failed_sms_receipt_keeps_the_gateways_reason(admin_user, fang, gateway, settings, client):
    settings.CIM_MESSAGE_SMS_PROVIDER = "tencent"
    message = _send(admin_user, fang, "sms", **SMS)
    report = {"sid": message.provider_message_id, "report_status": "FAIL", "errmsg": "MK:0001", "description": "空号"}
    client.post(_receipt_path("tencent"), json.dumps([report]), content_type="application/json")
    message.refresh_from_db()
    assert (message.status, message.error) == ("failed", "MK:0001: 空号")


def test_sms_receipts_need_the_key_and_well_formed_reports(admin_user, fang, gateway, settings, client):
    settings.CIM_MESSAGE_SMS_PROVIDER = "aliyun"
    message = _send(admin_user, fang, "sms", **SMS)
    report = json.dumps([{"biz_id": message.provider_message_id, "success": True}])
    forged = _receipt_path("aliyun").replace(receipt_key("aliyun"), receipt_key("tencent"))
    assert client.post(forged, report, content_type="application/json").status_code == 404
    for bad in ("not json", json.dumps({"success": True}), json.dumps(["a string"])):
        response = client.post(_receipt_path("aliyun"), bad, content_type="application/json")
        assert response.status_code == 400 and response.json()["code"] == 1
    message.refresh_from_db()
    assert message.status == "sent"


def _wechat_query(token: str, **extra) -> str:
    timestamp, nonce = "1764806400", "4217"
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return "?" + "&".join(
        f"{k}={v}" for k, v in {"signature": signature, "timestamp": timestamp, "nonce": nonce, **extra}.items()
    )


@pytest.mark.parametrize(("status", "expected"), [("success", "delivered"), ("failed:user block", "failed")])
def test_the_official_accounts_job_finish_event_is_a_receipt(
    admin_user, fang, gateway, settings, client, status, expected
):
    settings.CIM_MESSAGE_WECHAT_PROVIDER = "official_account"
    settings.CIM_WECHAT_TOKEN = "wx-token"
    message = _send(
        admin_user, fang, "wechat", body="会员提醒", provider_template_id="tpl-abc", params={"first": "您好"}
    )
    path = _receipt_path("official_account")
    # WeChat checks the server URL first: the echo proves the token is shared.
    assert client.get(path + _wechat_query("wx-token", echostr="e42")).content == b"e42"
    assert client.get(path + _wechat_query("wrong-token", echostr="e42")).status_code == 403
    event = (
        "<xml><ToUserName><![CDATA[gh_cim]]></ToUserName><FromUserName><![CDATA[openid-fang]]></FromUserName>"
        "<CreateTime>1764806400</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{message.provider_message_id}</MsgID>"
        f"<Status><![CDATA[{status}]]></Status></xml>"
    )
    assert client.post(path + _wechat_query("wrong-token"), event, content_type="text/xml").status_code == 403
    bomb = '<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Event>&a;</Event></xml>'
    for bad in ("not xml", bomb):
        assert client.post(path + _wechat_query("wx-token"), bad, content_type="text/xml").status_code == 400
    response = client.post(path + _wechat_query("wx-token"), event, content_type="text/xml")
    assert (response.status_code, response.content) == (200, b"success")
    message.refresh_from_db()
    assert message.status == expected


def test_receipt_urls_are_shown_to_administrators_and_printed_by_the_cli(admin_user, client, settings):
    settings.CIM_SITE_URL = "https://cim.example.com"
    client.force_login(admin_user)
    page = client.get(reverse("automation:message_templates")).content.decode()
    assert receipt_urls()["aliyun"] in page and "/m/r/wechat/" in page
    out = io.StringIO()
    call_command("messages", "receipt-urls", "--json", stdout=out)
    assert json.loads(out.getvalue())["urls"]["tencent"] == (
        f"https://cim.example.com/m/r/tencent/{receipt_key('tencent')}/"
    )
