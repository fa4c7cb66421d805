"""The fault drill's short form (bench/fault_drill.py, #20): the scale-out stack — gunicorn, an
RQ worker, PostgreSQL, Redis and the WeChat sandbox as its own process — takes triple-delivered
callbacks and notice flows while Redis is killed, PostgreSQL restarts, or WeChat errs and
stalls; afterwards nothing answered is lost, no reply differs across deliveries, no notice
reached WeChat twice, nothing is stuck, and the worker lives."""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys

import pytest

from tests.services import unavailable

pytestmark = pytest.mark.services
BIN = os.path.dirname(sys.executable)


def _drill():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "fault_drill.py")
    spec = importlib.util.spec_from_file_location("fault_drill", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("fault", ["redis_kill", "pg_restart", "wechat"])
def test_the_short_drill_loses_doubles_and_strands_nothing(fault):
    if not shutil.which("gunicorn", path=BIN) or not shutil.which("redis-server"):
        unavailable("the drill needs gunicorn and redis-server")
    result = _drill().run_fault(fault, 120, duration=20, settle_seconds=90, fast_settle=True, quiet=True)
    assert result["answered"] == result["messages"], result
    assert (result["lost"], result["differing"], result["doubled"]) == (0, 0, 0), result
    assert (result["stuck_outbox"], result["stuck_inbound"]) == (0, 0), result
    assert result["worker_alive"], result
    assert result["notices_received"] > 0 and result["dispatched"] > 0, result  # the flows ran alongside
