"""Structured logs: one JSON object a line in production, each with the request id."""
from __future__ import annotations

import json
import logging
import sys
import time

from crm_core.context import request_id

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _STD and key not in data and not key.startswith("_"):
                data[key] = value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else repr(value)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    root = logging.getLogger("wxcrm")
    root.setLevel(level)
    root.propagate = True
    for h in list(root.handlers):
        if getattr(h, "_wxcrm", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._wxcrm = True
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root.addHandler(handler)
