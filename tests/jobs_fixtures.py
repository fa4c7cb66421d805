"""Jobs used by the tests (registered at import, like a feature package's jobs)."""
from crm_core import jobs

CALLS: list[tuple] = []


@jobs.job
def record_call(value):
    CALLS.append(("call", value))


@jobs.job
def flaky(value):
    CALLS.append(("flaky", value))
    if sum(1 for c in CALLS if c[0] == "flaky") < 2:
        raise RuntimeError("first attempt fails")


@jobs.periodic(every=300)
def five_minute_job():
    CALLS.append(("periodic", None))
