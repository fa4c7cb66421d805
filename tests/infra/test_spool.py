"""The write-behind spool (crm_core.spool): nothing answered is lost when a process dies,
nothing is taken over twice, a live process's file is never taken, bad records are set aside."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from crm_core.spool import Spool


class Sink:
    """An ingest that keeps what it gets; ``fail`` makes it raise (a database away, say)."""

    def __init__(self):
        self.got: list = []
        self.fail: Exception | None = None

    def __call__(self, records):
        if self.fail is not None:
            raise self.fail
        if any(r.get("bad") for r in records):
            raise ValueError("refused")
        self.got.extend(records)


def files(d) -> list[str]:
    return sorted(n for n in os.listdir(d) if n.endswith(".jsonl") and "rejected" not in n)


def make(d, sink, **kw) -> Spool:
    return Spool(str(d), "t", sink, interval=3600, **kw)  # no background rounds: the tests flush


def test_appended_records_are_ingested_in_order_and_the_file_removed(tmp_path):
    sink = Sink()
    sp = make(tmp_path, sink)
    for i in range(5):
        sp.append({"n": i, "text": f"第{i}条"})
    assert len(files(tmp_path)) == 1 and sink.got == []
    assert sp.flush() == 5
    assert sink.got == [{"n": i, "text": f"第{i}条"} for i in range(5)]
    assert files(tmp_path) == []
    assert sp.flush() == 0  # nothing new: no empty files are made either
    sp.append({"n": 5})
    assert sp.flush() == 1 and sink.got[-1] == {"n": 5}


def test_a_live_owners_file_is_never_taken_over(tmp_path):
    owner_sink, other_sink = Sink(), Sink()
    owner, other = make(tmp_path, owner_sink), make(tmp_path, other_sink)
    owner.append({"n": 1})
    assert other.recover() == 0 and other_sink.got == []  # the owner holds its lock
    assert owner.flush() == 1 and owner_sink.got == [{"n": 1}]


_DIES = textwrap.dedent("""
    import os, signal, sys
    from crm_core.spool import Spool
    sp = Spool(sys.argv[1], "t", lambda records: None, interval=3600)
    for i in range(int(sys.argv[2])):
        sp.append({"n": i})
    print("answered", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_killed_process_loses_nothing_and_its_file_is_taken_over_once(tmp_path):
    child = subprocess.run([sys.executable, "-c", _DIES, str(tmp_path), "1000"], capture_output=True, text=True,
                           timeout=60, cwd=os.getcwd())
    assert child.returncode == -signal.SIGKILL and child.stdout.strip() == "answered", child.stderr
    assert len(files(tmp_path)) == 1
    first, second = Sink(), Sink()
    assert make(tmp_path, first).recover() == 1000
    assert first.got == [{"n": i} for i in range(1000)]
    assert make(tmp_path, second).recover() == 0 and files(tmp_path) == []


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path, caplog):
    child = subprocess.run([sys.executable, "-c", _DIES, str(tmp_path), "3"], capture_output=True, timeout=60,
                           cwd=os.getcwd())
    assert child.returncode == -signal.SIGKILL
    (name,) = files(tmp_path)
    with open(tmp_path / name, "ab") as fh:
        fh.write(b'{"n": 3, "te')  # the process died inside this write: never answered
    sink = Sink()
    assert make(tmp_path, sink).recover() == 3
    assert sink.got == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert "unreadable line" in caplog.text


def test_while_the_database_is_away_the_file_stays_and_goes_in_later(tmp_path):
    sink = Sink()
    sp = make(tmp_path, sink, refused=lambda exc: isinstance(exc, ValueError))
    sp.append({"n": 1})
    sink.fail = ConnectionError("database unreachable")
    with pytest.raises(ConnectionError):
        sp.flush()
    assert len(files(tmp_path)) == 1  # kept, still locked by this process
    assert make(tmp_path, Sink()).recover() == 0
    sp.append({"n": 2})  # new records keep being accepted meanwhile
    sink.fail = None
    assert sp.flush() == 2 and sink.got == [{"n": 1}, {"n": 2}] and files(tmp_path) == []


def test_a_record_the_database_refuses_is_set_aside_not_retried_forever(tmp_path, caplog):
    sink = Sink()
    sp = make(tmp_path, sink, refused=lambda exc: isinstance(exc, ValueError))
    for rec in ({"n": 1}, {"n": 2, "bad": True}, {"n": 3}):
        sp.append(rec)
    assert sp.flush() == 3
    assert sink.got == [{"n": 1}, {"n": 3}] and files(tmp_path) == []
    rejected = (tmp_path / "t.rejected.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in rejected] == [{"n": 2, "bad": True}]
    assert "refused by the database" in caplog.text


def test_after_a_fork_the_child_writes_its_own_file(tmp_path):
    sink = Sink()
    sp = make(tmp_path, sink)
    sp.append({"who": "parent"})
    pid = os.fork()
    if pid == 0:  # the child: appends to a file of its own, then dies without flushing
        try:
            sp.append({"who": "child"})
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert len(files(tmp_path)) == 2
    assert sp.recover() == 1 and sink.got == [{"who": "child"}]  # the dead child's file, not ours
    assert sp.flush() == 1 and sink.got[-1] == {"who": "parent"}


def test_a_failed_write_raises_and_retires_the_file_so_no_line_is_glued_to_the_half(tmp_path, monkeypatch, caplog):
    import crm_core.spool as spool_module

    sink = Sink()
    sp = make(tmp_path, sink)
    sp.append({"n": 1})
    real_write = os.write

    def half_write(fd, data):  # the disk fills up in the middle of a line
        monkeypatch.setattr(spool_module.os, "write", real_write)
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(spool_module.os, "write", half_write)
    with pytest.raises(OSError):
        sp.append({"n": 2, "text": "写了一半"})
    sp.append({"n": 3})  # a fresh file
    assert len(files(tmp_path)) == 2
    assert sp.flush() == 2
    assert sink.got == [{"n": 1}, {"n": 3}] and files(tmp_path) == []
