"""The providers that carry messages, one interface for every channel (docs/messages.md).

A provider is a context manager (its connections live for one batch) with `send(outgoing, commit) -> provider
message id`. It must call `commit()` at its point of no return — just before the byte or request after which the
message may have been accepted — so the message is recorded as handed over before it can arrive; it raises
`NotDelivered` when it knows the message was not accepted, anything else when it does not know. A provider that
carries several messages at once (SMTP, one per connection) takes a window of them in `send_window` and commits
them together.
"""

import contextlib
import hashlib
import hmac
import json
import logging
import smtplib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
from django.conf import settings
from django.core.mail import get_connection
from django.utils import timezone

from cim.automation.message_email import Wire, email_message, email_wire, envelope_address
from cim.automation.messaging import NotDelivered, Outgoing
from cim.automation.models.messages import Channel

logger = logging.getLogger(__name__)

# Called at the point of no return with the provider's id of the message (`send`), or of each message by its pk
# (`send_window`).
Commit = Callable[..., None]
WindowCommit = Callable[[Mapping[int, str]], None]
Outcome = str | Exception
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class Provider:
    name = ""
    channel = ""
    # Messages handed over together: one commit marks them all `sending` before any can arrive.
    window = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def send(self, out: Outgoing, commit: Commit) -> str:
        raise NotImplementedError

    def send_window(self, window: list[Outgoing], commit: WindowCommit) -> list[Outcome]:
        """Hand `window` over; per message, in order, its provider message id, `NotDelivered`, or the exception that
        leaves it unknown. A list cut short means the rest was not tried (the connection is gone)."""
        outcomes: list[Outcome] = []
        for out in window:
            try:
                outcomes.append(self.send(out, lambda message_id="", out=out: commit({out.message.pk: message_id})))
            except NotDelivered as error:
                outcomes.append(error)
            except Exception as error:
                outcomes.append(error)
                break
        return outcomes


class _Lane:
    """One SMTP connection and the message it carries in the current window."""

    def __init__(self, smtp: smtplib.SMTP, index: int, wire: Wire):
        self.smtp, self.index, self.wire = smtp, index, wire


class SmtpProvider(Provider):
    """Email over SMTP (Django's EMAIL_* settings) on up to CIM_EMAIL_CONNECTIONS connections, one message on each,
    driven in lockstep: each step of the SMTP dialogue goes out on every connection before the answers are read, so
    the server works on them together. The commit falls after the bodies and before the DATA terminators: a server
    discards a message whose DATA never ended."""

    name = "smtp"
    channel = Channel.EMAIL

    def __init__(self, messages: int = 1):
        self.window = max(1, min(settings.CIM_EMAIL_CONNECTIONS, messages))

    def __enter__(self):
        self.backends = []
        self.connections: list[smtplib.SMTP] = []
        self._open()  # the server being away fails here, before anything is claimed for sending
        while len(self.connections) < self.window:
            try:
                self._open()
            except (OSError, smtplib.SMTPException):
                logger.warning("SMTP server took %d of %d connections", len(self.connections), self.window)
                self.window = len(self.connections)
        return self

    def _open(self) -> None:
        backend = get_connection(SMTP_BACKEND, fail_silently=False)
        backend.open()
        smtp: smtplib.SMTP = backend.connection
        # The DATA terminator is a small write right after the body: without this, Nagle's algorithm holds it
        # until the server's delayed ACK (40 ms on Linux), which would cap a connection at ~25 messages/s.
        smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        smtp.ehlo_or_helo_if_needed()
        if smtp.has_extn("smtputf8"):
            smtp.command_encoding = "utf-8"
        self.backends.append(backend)
        self.connections.append(smtp)

    def __exit__(self, *exc) -> None:
        # A connection that broke mid-batch cannot say goodbye.
        for backend in self.backends:
            with contextlib.suppress(Exception):
                backend.close()

    def send_window(self, window: list[Outgoing], commit: WindowCommit) -> list[Outcome]:
        window = window[: len(self.connections)]
        outcomes: list[Outcome] = [NotDelivered("not tried", retry=True)] * len(window)
        lanes = []
        for index, (smtp, out) in enumerate(zip(self.connections, window, strict=False)):
            try:
                lane = _Lane(smtp, index, email_wire(out))
            except Exception as error:  # this message cannot be written as an email; the others go on
                outcomes[index] = NotDelivered(f"{type(error).__name__}: {error}")
                continue
            if not (lane.wire.sender + lane.wire.recipient).isascii() and smtp.command_encoding != "utf-8":
                outcomes[index] = NotDelivered("The SMTP server does not take non-ASCII addresses (SMTPUTF8).")
                continue
            lanes.append(lane)

        def step(lanes: list[_Lane], send: Callable[[_Lane], None], accepted: tuple[int, ...]) -> list[_Lane]:
            """Send on every lane, then read every answer; the lanes whose message goes on."""
            sent = []
            for lane in lanes:
                try:
                    send(lane)
                    sent.append(lane)
                except Exception as error:
                    outcomes[lane.index] = error
            going = []
            for lane in sent:
                try:
                    code, reply = lane.smtp.getreply()
                except Exception as error:
                    outcomes[lane.index] = error
                    continue
                if code in accepted:
                    going.append(lane)
                    continue
                outcomes[lane.index] = NotDelivered(f"{code} {reply.decode(errors='replace')}", retry=400 <= code < 500)
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    lane.smtp.rset()
            return going

        def mail(lane: _Lane) -> None:
            options = "" if (lane.wire.sender + lane.wire.recipient).isascii() else " SMTPUTF8"
            lane.smtp.putcmd("mail", f"FROM:{envelope_address(lane.wire.sender)}{options}")

        def rcpt(lane: _Lane) -> None:
            lane.smtp.putcmd("rcpt", f"TO:{envelope_address(lane.wire.recipient)}")

        lanes = step(lanes, mail, (250,))
        lanes = step(lanes, rcpt, (250, 251))
        lanes = step(lanes, lambda lane: lane.smtp.putcmd("data"), (354,))
        written = []
        for lane in lanes:
            try:
                lane.smtp.send(lane.wire.data)
                written.append(lane)
            except Exception as error:
                outcomes[lane.index] = error
        if written:
            commit({window[lane.index].message.pk: lane.wire.message_id for lane in written})
        for lane in step(written, lambda lane: lane.smtp.send(b".\r\n"), (250,)):
            outcomes[lane.index] = lane.wire.message_id
        return outcomes


class DjangoEmailProvider(Provider):
    """Email through any other Django email backend: django-anymail's HTTP providers, the console, files, memory.
    The commit comes before the hand-over; an answer lost on the way leaves the message for review."""

    name = "django"
    channel = Channel.EMAIL

    def __enter__(self):
        self.backend = get_connection(fail_silently=False)
        self.name = settings.EMAIL_BACKEND.rsplit(".", 2)[-2][:30]
        return self

    def send(self, out: Outgoing, commit: Commit) -> str:
        email = email_message(out)
        message_id = email.extra_headers["Message-ID"]
        commit(message_id)
        self.backend.send_messages([email])
        status = getattr(email, "anymail_status", None)
        return (status.message_id if status is not None and status.message_id else "") or message_id


class FileProvider(Provider):
    """SMS or WeChat messages appended as JSON lines to `$CIM_MESSAGE_OUTBOX_DIR/<channel>.jsonl`: for development
    and tests, where no gateway is at hand."""

    name = "file"
    _lock = threading.Lock()

    def __init__(self, channel: str):
        self.channel = channel

    def __enter__(self):
        directory = Path(settings.CIM_MESSAGE_OUTBOX_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        self.file = (directory / f"{self.channel}.jsonl").open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def send(self, out: Outgoing, commit: Commit) -> str:
        provider_message_id = uuid.uuid4().hex
        line = {
            "id": provider_message_id,
            "key": out.message.key,
            "to": out.address,
            "text": out.rendered.body,
            "template": out.template.provider_template_id if out.template else "",
            "params": out.rendered.params,
            "at": timezone.now().isoformat(),
        }
        commit(provider_message_id)
        with self._lock:
            self.file.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.file.flush()
        return provider_message_id


class _HttpProvider(Provider):
    """What the gateways' HTTP APIs share: one httpx client per batch, and their answers read the same way."""

    timeout = 10.0

    def __enter__(self):
        self.client = httpx.Client(timeout=self.timeout)
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()

    def _post(self, url: str, commit: Commit, **kwargs) -> dict:
        """POST after the commit; a request that never reached the gateway is known not delivered."""
        commit()
        try:
            response = self.client.post(url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise NotDelivered(f"{type(error).__name__}: {error}", retry=True) from error
        if response.status_code >= 500:
            raise NotDelivered(f"HTTP {response.status_code}", retry=True)
        try:
            return response.json()
        except ValueError:
            raise NotDelivered(f"HTTP {response.status_code}: not JSON", retry=False) from None


def _rfc3986(value: str) -> str:
    return quote(value, safe="-_.~")


def _phone_for_aliyun(e164: str) -> str:
    # Mainland numbers without the country code, others with it but without the "+" (SendSms PhoneNumbers).
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")


class AliyunSms(_HttpProvider):
    """Aliyun SMS (dysmsapi SendSms, version 2017-05-25), signed with ACS3-HMAC-SHA256 (Aliyun's V3 signature):
    CIM_ALIYUN_ACCESS_KEY_ID, CIM_ALIYUN_ACCESS_KEY_SECRET, CIM_ALIYUN_SMS_SIGN_NAME, CIM_ALIYUN_SMS_ENDPOINT."""

    name = "aliyun"
    channel = Channel.SMS
    action, version = "SendSms", "2017-05-25"
    # Codes for which another try later may work: flow control and the gateway's own trouble.
    retry_codes = {"isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "Throttling.User", "ServiceUnavailable"}

    def request(self, query: dict[str, str], *, now: datetime | None = None, nonce: str = "") -> tuple[str, dict]:
        """The URL and headers of a signed SendSms request (parameters in the query, empty body)."""
        endpoint = settings.CIM_ALIYUN_SMS_ENDPOINT.rstrip("/")
        host = urlsplit(endpoint).netloc
        canonical_query = "&".join(f"{_rfc3986(k)}={_rfc3986(v)}" for k, v in sorted(query.items()))
        payload_hash = hashlib.sha256(b"").hexdigest()
        headers = {
            "host": host,
            "x-acs-action": self.action,
            "x-acs-content-sha256": payload_hash,
            "x-acs-date": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
            "x-acs-version": self.version,
        }
        signed = sorted(headers)
        canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
        canonical_request = "\n".join(["POST", "/", canonical_query, canonical_headers, ";".join(signed), payload_hash])
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical_request.encode()).hexdigest()
        signature = hmac.new(settings.CIM_ALIYUN_ACCESS_KEY_SECRET.encode(), to_sign.encode(), "sha256").hexdigest()
        headers["Authorization"] = (
            f"ACS3-HMAC-SHA256 Credential={settings.CIM_ALIYUN_ACCESS_KEY_ID},"
            f"SignedHeaders={';'.join(signed)},Signature={signature}"
        )
        return f"{endpoint}/?{canonical_query}", headers

    def send(self, out: Outgoing, commit: Commit) -> str:
        query = {
            "PhoneNumbers": _phone_for_aliyun(out.address),
            "SignName": settings.CIM_ALIYUN_SMS_SIGN_NAME,
            "TemplateCode": out.template.provider_template_id if out.template else "",
            "TemplateParam": json.dumps(out.rendered.params, ensure_ascii=False, separators=(",", ":")),
            "OutId": str(out.message.pk),
        }
        url, headers = self.request(query)
        answer = self._post(url, commit, headers=headers)
        if answer.get("Code") != "OK":
            code = str(answer.get("Code", ""))
            raise NotDelivered(f"{code}: {answer.get('Message', '')}", retry=code in self.retry_codes)
        return str(answer.get("BizId", ""))


class TencentSms(_HttpProvider):
    """Tencent Cloud SMS (SendSms, version 2021-01-11), signed with TC3-HMAC-SHA256: CIM_TENCENT_SECRET_ID,
    CIM_TENCENT_SECRET_KEY, CIM_TENCENT_SMS_APP_ID, CIM_TENCENT_SMS_SIGN_NAME, CIM_TENCENT_SMS_REGION,
    CIM_TENCENT_SMS_ENDPOINT."""

    name = "tencent"
    channel = Channel.SMS
    service, action, version = "sms", "SendSms", "2021-01-11"
    retry_codes = {
        "LimitExceeded",
        "InternalError",
        "RequestLimitExceeded",
        "FailedOperation.InsufficientBalanceInSmsPackage",
    }

    def request(self, body: bytes, *, now: datetime | None = None) -> tuple[str, dict]:
        endpoint = settings.CIM_TENCENT_SMS_ENDPOINT.rstrip("/")
        host = urlsplit(endpoint).netloc
        now = now or datetime.now(UTC)
        timestamp, day = str(int(now.timestamp())), now.astimezone(UTC).strftime("%Y-%m-%d")
        content_type = "application/json; charset=utf-8"
        canonical_headers = f"content-type:{content_type}\nhost:{host}\nx-tc-action:{self.action.lower()}\n"
        signed_headers = "content-type;host;x-tc-action"
        canonical_request = "\n".join(
            ["POST", "/", "", canonical_headers, signed_headers, hashlib.sha256(body).hexdigest()]
        )
        scope = f"{day}/{self.service}/tc3_request"
        to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"

        def mac(key: bytes, text: str) -> bytes:
            return hmac.new(key, text.encode(), "sha256").digest()

        key = mac(mac(mac(("TC3" + settings.CIM_TENCENT_SECRET_KEY).encode(), day), self.service), "tc3_request")
        signature = hmac.new(key, to_sign.encode(), "sha256").hexdigest()
        headers = {
            "Authorization": f"TC3-HMAC-SHA256 Credential={settings.CIM_TENCENT_SECRET_ID}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}",
            "Content-Type": content_type,
            "Host": host,
            "X-TC-Action": self.action,
            "X-TC-Timestamp": timestamp,
            "X-TC-Version": self.version,
            "X-TC-Region": settings.CIM_TENCENT_SMS_REGION,
        }
        return endpoint + "/", headers

    def send(self, out: Outgoing, commit: Commit) -> str:
        # Tencent's template parameters are positional ({1}, {2}...): ours in the order of their names.
        params = out.rendered.params
        ordered = [params[k] for k in sorted(params, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))]
        body = json.dumps(
            {
                "PhoneNumberSet": [out.address],
                "SmsSdkAppId": settings.CIM_TENCENT_SMS_APP_ID,
                "SignName": settings.CIM_TENCENT_SMS_SIGN_NAME,
                "TemplateId": out.template.provider_template_id if out.template else "",
                "TemplateParamSet": ordered,
                "SessionContext": str(out.message.pk),
            },
            ensure_ascii=False,
        ).encode()
        url, headers = self.request(body)
        answer = self._post(url, commit, headers=headers, content=body).get("Response", {})
        if "Error" in answer:
            code = str(answer["Error"].get("Code", ""))
            raise NotDelivered(f"{code}: {answer['Error'].get('Message', '')}", retry=code in self.retry_codes)
        status = (answer.get("SendStatusSet") or [{}])[0]
        if status.get("Code") != "Ok":
            code = str(status.get("Code", ""))
            raise NotDelivered(f"{code}: {status.get('Message', '')}", retry=code in self.retry_codes)
        return str(status.get("SerialNo", ""))


class _WeChatApi(_HttpProvider):
    """The access token both WeChat APIs want, fetched before the first commit and again when it runs out."""

    # -1 busy, 40001/40014/42001 token invalid or expired, 45009 over the daily limit.
    retry_codes = {-1, 40001, 40014, 42001, 45009}

    def __enter__(self):
        super().__enter__()
        self.token, self.token_until = "", 0.0
        return self

    def _token_request(self) -> tuple[str, dict]:
        raise NotImplementedError

    def access_token(self) -> str:
        if not self.token or time.monotonic() > self.token_until:
            url, params = self._token_request()
            try:
                answer = self.client.get(url, params=params).json()
            except (httpx.HTTPError, ValueError) as error:
                raise NotDelivered(f"access token: {error}", retry=True) from error
            if not answer.get("access_token"):
                raise NotDelivered(f"access token: {answer.get('errcode')} {answer.get('errmsg')}", retry=True)
            # Renewed a few minutes early, so a token never expires between the commit and the request.
            self.token = answer["access_token"]
            self.token_until = time.monotonic() + int(answer.get("expires_in", 7200)) - 300
        return self.token

    def _answer(self, answer: dict) -> str:
        code = answer.get("errcode", 0)
        if code:
            if code in (40001, 40014, 42001):
                self.token = ""
            raise NotDelivered(f"{code}: {answer.get('errmsg', '')}", retry=code in self.retry_codes)
        return str(answer.get("msgid", ""))


class WeComMessage(_WeChatApi):
    """A WeCom (企业微信) application message to a member or an external contact's userid (message/send, text):
    CIM_WECOM_CORP_ID, CIM_WECOM_SECRET, CIM_WECOM_AGENT_ID, CIM_WECOM_ENDPOINT."""

    name = "wecom"
    channel = Channel.WECHAT

    def _token_request(self):
        url = settings.CIM_WECOM_ENDPOINT.rstrip("/") + "/cgi-bin/gettoken"
        return url, {"corpid": settings.CIM_WECOM_CORP_ID, "corpsecret": settings.CIM_WECOM_SECRET}

    def send(self, out: Outgoing, commit: Commit) -> str:
        token = self.access_token()
        url = settings.CIM_WECOM_ENDPOINT.rstrip("/") + "/cgi-bin/message/send"
        body = {
            "touser": out.address,
            "msgtype": "text",
            "agentid": int(settings.CIM_WECOM_AGENT_ID or 0),
            "text": {"content": out.rendered.body},
        }
        return self._answer(self._post(url, commit, params={"access_token": token}, json=body))


class OfficialAccountTemplate(_WeChatApi):
    """An official account (公众号) template message to a follower's openid (message/template/send), the template
    registered in the account's backend (`provider_template_id`), its fields from the template's `params` (a
    `url` parameter becomes the message's link): CIM_WECHAT_APP_ID, CIM_WECHAT_APP_SECRET, CIM_WECHAT_ENDPOINT."""

    name = "official_account"
    channel = Channel.WECHAT

    def _token_request(self):
        url = settings.CIM_WECHAT_ENDPOINT.rstrip("/") + "/cgi-bin/token"
        params = {"grant_type": "client_credential", "appid": settings.CIM_WECHAT_APP_ID}
        return url, {**params, "secret": settings.CIM_WECHAT_APP_SECRET}

    def send(self, out: Outgoing, commit: Commit) -> str:
        token = self.access_token()
        params = dict(out.rendered.params)
        link = params.pop("url", "")
        body = {
            "touser": out.address,
            "template_id": out.template.provider_template_id if out.template else "",
            "data": {key: {"value": value} for key, value in params.items()},
        }
        if link:
            body["url"] = link
        url = settings.CIM_WECHAT_ENDPOINT.rstrip("/") + "/cgi-bin/message/template/send"
        return self._answer(self._post(url, commit, params={"access_token": token}, json=body))


# Providers by channel and the name a CIM_MESSAGE_<CHANNEL>_PROVIDER setting gives them.
PROVIDERS: dict[str, dict[str, Callable[[], Provider]]] = {
    Channel.SMS: {"file": lambda: FileProvider(Channel.SMS), "aliyun": AliyunSms, "tencent": TencentSms},
    Channel.WECHAT: {
        "file": lambda: FileProvider(Channel.WECHAT),
        "wecom": WeComMessage,
        "official_account": OfficialAccountTemplate,
    },
}


def provider_for(channel: str, *, messages: int = 1) -> Provider:
    """The configured provider of `channel`, for a batch of `messages`."""
    if channel == Channel.EMAIL:
        return SmtpProvider(messages) if settings.EMAIL_BACKEND == SMTP_BACKEND else DjangoEmailProvider()
    setting = settings.CIM_MESSAGE_SMS_PROVIDER if channel == Channel.SMS else settings.CIM_MESSAGE_WECHAT_PROVIDER
    try:
        return PROVIDERS[channel][setting]()
    except KeyError:
        raise ValueError(f"Unknown {channel} provider {setting!r}; see docs/messages.md") from None
