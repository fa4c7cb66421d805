"""A process-local journal that a background thread moves into the database in batches.

For records whose every effect is idempotent (an insert-or-ignore on a unique key), a request
need not wait for the database: it appends one JSON line to its process's spool file — one
``write`` on an ``O_APPEND`` file, a few microseconds — and answers. A thread in the same
process seals the file every ``interval`` seconds (future lines go to a fresh file), hands
the sealed file's records to ``ingest`` in one transaction, and deletes the file only after
that commit. So:

- **A process killed hard loses nothing it answered**: the lines are in the kernel's page
  cache, and the file stays behind. Every live spool file is held under an exclusive
  ``flock`` by its owner; the kernel drops the lock when the owner dies, and any other process
  of the same spool (its flusher looks every ``recover_every`` seconds, and at start) takes
  the file over and ingests it. A machine that loses power loses what was not yet on disk —
  the same promise as SQLite's ``synchronous=NORMAL`` and Redis's default persistence;
  ``fsync=True`` syncs every line for those who need more, at a cost.
- **Nothing is written twice**: ``ingest`` must be idempotent, because a crash between its
  commit and the file's deletion replays the file. Two processes never ingest one file at
  the same time (the ``flock``), and a file found already deleted after its lock was won is
  skipped.
- A line cut short by a crash mid-``write`` is the last of its file, never answered, and
  skipped with a warning. A failed ``write`` (disk full) raises to the caller — which must
  store the record another way — and retires the file, so no later line is glued to the half.
- A record the database refuses (``refused(exc)``: a constraint or a bad value) is set
  aside in ``<name>.rejected.jsonl`` with an error in the log, so one bad record never
  holds up the rest; while the database is away the files wait and the flusher backs off.

New files are created under a dot-name, locked, then renamed, so a scanner never takes a file
whose owner has not locked it yet. After a ``fork`` the child starts its own file and thread.
"""
from __future__ import annotations

import atexit
import errno
import fcntl
import itertools
import json
import logging
import os
import socket
import threading
import time
from typing import Callable

log = logging.getLogger("wxcrm.spool")
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


class Spool:
    def __init__(self, directory: str, name: str, ingest: Callable[[list], None], *, interval: float = 0.2,
                 recover_every: float = 10.0, fsync: bool = False, batch: int = 2000,
                 refused: Callable[[Exception], bool] | None = None):
        self.directory, self.name, self.ingest, self.refused = directory, name, ingest, refused
        self.interval, self.recover_every, self.fsync, self.batch = interval, recover_every, fsync, batch
        self._prefix = f"{name}-"
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.close)

    def _reset(self) -> None:
        """State for this process (again after a fork: the parent's file, thread and locks —
        which another thread may have held at the fork — are not ours)."""
        for fd in [getattr(self, "_fd", None)] + [fd for fd, _ in getattr(self, "_sealed", [])]:
            if fd is not None:  # the child's copies of the parent's descriptors (the parent keeps its locks)
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._lock = threading.Lock()  # appends and the swap to a fresh file
        self._flush_lock = threading.Lock()  # one flush at a time in this process
        self._pid = os.getpid()
        self._fd: int | None = None
        self._path: str | None = None
        self._written = 0
        self._sealed: list[tuple[int, str]] = []  # sealed files not yet ingested (fd keeps the lock)
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = False
        self._last_recover = float("-inf")  # the first round looks for files left by stopped processes

    # --- writing --------------------------------------------------------------------------
    def append(self, record) -> None:
        """Write one record durably enough to answer (see the module docstring)."""
        line = (_encoder.encode(record) + "\n").encode()
        with self._lock:
            if self._fd is None:
                self._open()
            try:
                if os.write(self._fd, line) != len(line):
                    raise OSError(errno.ENOSPC, "short write to the spool")
                if self.fsync:
                    os.fdatasync(self._fd)
            except OSError:
                # a disk full or gone: the record may be half written, so this file takes no
                # more lines (the half line is its last, skipped when it is ingested) and the
                # caller must store the record another way
                self._seal()
                raise
            self._written += 1
        if self._thread is None:
            self._start()

    def _open(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        base = f"{self._prefix}{socket.gethostname()}-{self._pid}-{next(self._seq)}-{time.time_ns()}.jsonl"
        tmp = os.path.join(self.directory, "." + base)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = os.path.join(self.directory, base)
        os.rename(tmp, path)
        self._fd, self._path, self._written = fd, path, 0

    def _seal(self) -> None:
        """The current file takes no more lines and waits to be ingested (call under ``_lock``)."""
        self._sealed.append((self._fd, self._path))
        self._fd = self._path = None
        self._written = 0

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=f"spool-{self.name}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        failures = 0
        while not self._closed:
            self._wake.wait(min(self.interval * 2 ** failures, 30.0))  # backs off while the database is away
            self._wake.clear()
            try:
                self.flush()
                if time.monotonic() - self._last_recover >= self.recover_every:
                    self.recover()
                failures = 0
            except Exception:  # the files stay; a later round tries again
                failures = min(failures + 1, 8)
                log.exception("spool %s: flush failed (attempt %d); the records stay in the spool", self.name, failures)

    # --- moving into the database ----------------------------------------------------------
    def flush(self) -> int:
        """Seal this process's file and ingest everything sealed so far. Returns records ingested."""
        with self._flush_lock:
            with self._lock:
                if self._fd is not None and self._written:
                    self._seal()
            done = 0
            while self._sealed:
                fd, path = self._sealed[0]
                done += self._ingest_file(fd, path)  # raises: the file stays sealed for the next round
                self._sealed.pop(0)
            return done

    def recover(self) -> int:
        """Ingest files left by processes that died (their lock is free). Returns records ingested."""
        self._last_recover = time.monotonic()
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.startswith(self._prefix) and n.endswith(".jsonl"))
        except FileNotFoundError:
            return 0
        own = {p for _, p in self._sealed} | {self._path}
        done = 0
        for n in names:
            path = os.path.join(self.directory, n)
            if path in own:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # someone else just finished it
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live owner
                continue
            if os.fstat(fd).st_nlink == 0:
                os.close(fd)  # ingested and deleted while we waited for the lock
                continue
            log.warning("spool %s: taking over %s from a process that stopped", self.name, n)
            try:
                done += self._ingest_file(fd, path)
            except Exception:
                os.close(fd)
                raise
        return done

    def _ingest_file(self, fd: int, path: str) -> int:
        """Ingest one locked file, then delete it and release the lock."""
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0).decode("utf-8", errors="replace") if size else ""
        records = []
        for i, line in enumerate(data.split("\n")):
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                log.warning("spool %s: skipped an unreadable line %d in %s", self.name, i + 1, os.path.basename(path))
        for start in range(0, len(records), self.batch):
            self._ingest_batch(records[start:start + self.batch], os.path.basename(path))
        os.unlink(path)
        os.close(fd)
        return len(records)

    def _ingest_batch(self, records: list, source: str) -> None:
        """Ingest a batch. If the database refuses it (``refused(exc)``: a constraint or a
        value, not a lock or a lost connection), the records go in one by one and those it
        still refuses are set aside in a ``rejected`` file, logged, rather than retried
        forever. Any other failure raises: the file stays for a later round."""
        try:
            self.ingest(records)
            return
        except Exception as exc:
            if not (self.refused and self.refused(exc)):
                raise
            log.warning("spool %s: the database refused a batch from %s; trying its records one by one",
                        self.name, source)
        rejected = []
        for rec in records:
            try:
                self.ingest([rec])
            except Exception as exc:
                if not self.refused(exc):
                    raise
                rejected.append(rec)
        if rejected:
            with open(os.path.join(self.directory, f"{self.name}.rejected.jsonl"), "ab") as fh:
                for rec in rejected:
                    fh.write((_encoder.encode(rec) + "\n").encode())
            log.error("spool %s: %d record(s) from %s refused by the database; kept in %s.rejected.jsonl",
                      self.name, len(rejected), source, self.name)

    def close(self) -> None:
        """Ingest what this process holds (at exit; gunicorn's graceful stop runs this)."""
        if self._pid != os.getpid() or self._closed:
            return
        self._closed = True
        self._wake.set()
        try:
            self.flush()
        except Exception:  # the file stays and another process takes it over
            log.exception("spool %s: final flush failed; left for recovery", self.name)
