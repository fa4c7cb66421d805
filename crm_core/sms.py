"""SMS senders behind one interface. The default logs the message and keeps it in
``sms_message`` (the sandbox shows it at ``GET /sandbox/sms?phone=`` and on the phone
simulator); a real provider (Aliyun, Tencent Cloud) implements :class:`SmsSender`."""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.db import db


class SmsMessage(db.Model):
    """What the logging SMS sender 'sent' (development, the sandbox, tests)."""

    __table_args__ = (Index("ix_sms_message_phone", "phone", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]


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
