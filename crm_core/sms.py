"""SMS senders behind one interface. The default logs the message and keeps it in
``sms_message`` (the sandbox shows it at ``GET /sandbox/sms?phone=`` and on the phone
simulator); a real provider (Aliyun, Tencent Cloud) implements :class:`SmsSender`."""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod

from crm_core.clock import utcnow
from crm_core.db import db
from crm_core.models import SmsMessage

log = logging.getLogger("wxcrm.sms")


class SmsSender(ABC):
    @abstractmethod
    def send(self, phone: str, text: str) -> None: ...


class LoggingSender(SmsSender):
    def send(self, phone: str, text: str) -> None:
        log.info("sms (logging sender)", extra={"phone": phone[:3] + "****" + phone[-4:]})
        db.session.add(SmsMessage(phone=phone, text=text, created_at=utcnow()))


_sender: SmsSender = LoggingSender()


def configure(sender: SmsSender) -> None:
    global _sender
    _sender = sender


def send(phone: str, text: str) -> None:
    _sender.send(phone, text)
