"""Sending text messages (SMS verification codes). `CIM_SMS_BACKEND` names the sender, as a dotted path.

A provider (Aliyun SMS, Tencent Cloud SMS, Twilio, ...) plugs in as a subclass of SmsSender whose `send`
calls its API; the file and console senders are for development and tests.
"""

import json
import sys
import threading
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string


class SmsSender:
    """Sends one text message to one phone number, in E.164. Raises on failure."""

    def send(self, phone_e164: str, text: str) -> None:
        raise NotImplementedError


class ConsoleSmsSender(SmsSender):
    """Prints each message on standard output, like Django's console email backend."""

    def send(self, phone_e164: str, text: str) -> None:
        sys.stdout.write(f"SMS to {phone_e164}: {text}\n")
        sys.stdout.flush()


class FileSmsSender(SmsSender):
    """Appends each message as one JSON line to `CIM_SMS_FILE` (default `$CIM_DATA_DIR/sms-outbox.jsonl`)."""

    _lock = threading.Lock()  # one line per message, even from concurrent requests in one process

    def send(self, phone_e164: str, text: str) -> None:
        line = json.dumps({"to": phone_e164, "text": text, "at": timezone.now().isoformat()}, ensure_ascii=False)
        path = Path(settings.CIM_SMS_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, path.open("a", encoding="utf-8") as outbox:
            outbox.write(line + "\n")


def sms_sender() -> SmsSender:
    """The configured sender."""
    return import_string(settings.CIM_SMS_BACKEND)()
