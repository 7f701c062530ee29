"""A cascade's traffic memory on disk, so what it learned survives a restart.

The file is one JSON header line (what made it: the embedder and the vectors' size) followed by
fixed-size binary records, one per remembered prompt: the prompt's L2-normalised embedding
(float32), a stable id of its tenant (int64) and whether the cheap answer agreed (one byte).
Records are only ever appended, so several processes can share one file: each reads it when it
starts and appends what it learns. Appends are made by a thread of their own, in batches, so the
call that taught the memory never waits on the disk; a record that cannot be written yet waits in
memory and is tried again. A record cut short by a crash is ignored when the file is read. A file
that is not one of these, or was made with another embedder, is moved aside (logged) and a fresh
one is started. When a file holds more than four times the prompts a memory keeps, the process
that opens it rewrites it with the newest ones. Appends and that rewrite hold an advisory lock on
the file (``flock``, where the system has it), so a record appended while another process rewrites
the file waits and goes to the new file instead of the one being replaced.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import IO, Any

import numpy as np

if sys.platform != "win32":
    import fcntl

__all__ = ["TrafficFile", "group_id"]

log = logging.getLogger("costmw.router")

KIND = "costmw.cascade.traffic"
VERSION = 1
_FLUSH_EVERY_S = 1.0
_RETRY_MAX_S = 30.0
_COMPACT_AFTER = 4  # times max_prompts


def group_id(group: str | None) -> int:
    """A tenant's id, the same in every process (a file is shared between processes and restarts)."""
    raw = (group or "").encode("utf-8", "surrogatepass")  # a lone surrogate in a name is still a name
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little", signed=True)


def _record_dtype(dim: int) -> np.dtype[Any]:
    return np.dtype([("vector", "<f4", (dim,)), ("group", "<i8"), ("right", "u1")])


class TrafficFile:
    """Reads and appends the records of one traffic file; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str], *, dim: int, embedder: str, max_prompts: int) -> None:
        self.path = Path(path)
        self.dim, self.embedder, self.max_prompts = int(dim), str(embedder), int(max_prompts)
        self.dtype = _record_dtype(self.dim)
        self.header = (json.dumps({"kind": KIND, "version": VERSION, "dim": self.dim,
                                   "embedder": self.embedder}, sort_keys=True) + "\n").encode("ascii")
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._unusable = False  # the file could be neither read nor moved aside: learning stays in memory
        self._retry_at = 0.0
        self._delay = _FLUSH_EVERY_S
        #: records written, failed attempts to write, and records dropped while the file could not be
        #: written (the first failure and the first drop are logged)
        self.written = 0
        self.write_errors = 0
        self.dropped = 0
        _OPEN.add(self)

    # -- reading --------------------------------------------------------------------------------

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The newest ``max_prompts`` records: (vectors float32, tenant ids int64, right bool).
        Empty when there is no file yet or it cannot be used (then it is moved aside, logged)."""
        empty = (np.zeros((0, self.dim), np.float32), np.zeros(0, np.int64), np.zeros(0, bool))
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return empty
        except OSError as exc:
            log.warning("costmw cascade: cannot read the traffic file %r (%s); learning starts afresh in "
                        "memory and is appended to it when it can be written", str(self.path), exc)
            return empty
        end = data.find(b"\n")
        problem = self._header_problem(data[:end] if end >= 0 else data)
        if problem:
            self._move_aside(problem)
            return empty
        body = memoryview(data)[end + 1:]
        count = len(body) // self.dtype.itemsize
        if len(body) % self.dtype.itemsize:
            log.info("costmw cascade: %r ends in a record cut short (a crash while writing); it is ignored",
                     str(self.path))
        records = np.frombuffer(body[:count * self.dtype.itemsize], dtype=self.dtype)
        if count > _COMPACT_AFTER * self.max_prompts:
            self._compact()
        records = records[-self.max_prompts:]
        vectors = np.ascontiguousarray(records["vector"], dtype=np.float32)
        return vectors, records["group"].astype(np.int64), records["right"].astype(bool)

    def _header_problem(self, line: bytes) -> str:
        try:
            head = json.loads(line.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return "it is not a costmw traffic file"
        if not isinstance(head, dict) or head.get("kind") != KIND:
            return "it is not a costmw traffic file"
        if head.get("version") != VERSION:
            return f"it is version {head.get('version')!r}; this costmw reads version {VERSION}"
        if head.get("dim") != self.dim or head.get("embedder") != self.embedder:
            return (f"its prompts were embedded by {head.get('embedder')!r} ({head.get('dim')} dimensions), this "
                    f"cascade's by {self.embedder!r} ({self.dim})")
        return ""

    def _move_aside(self, why: str) -> None:
        aside = self.path.with_name(f"{self.path.name}.unused-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            log.warning("costmw cascade: cannot use the traffic file %r (%s) nor move it aside (%s); what this "
                        "cascade learns stays in memory", str(self.path), why, exc)
            self._unusable = True
            return
        log.warning("costmw cascade: the traffic file %r cannot be used (%s); moved aside as %s, a new one is "
                    "started", str(self.path), why, aside.name)

    def _compact(self) -> None:
        """Rewrite the file with its newest ``max_prompts`` records, read again under the lock so that
        every record appended so far is counted; appends wait for the rewrite, then go to the new file."""
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            with self._open_locked(os.O_RDONLY, "rb") as current:
                data = current.read()
                end = data.find(b"\n")
                if end < 0 or self._header_problem(data[:end]):
                    return  # replaced meanwhile by a file this one does not rewrite
                count = (len(data) - end - 1) // self.dtype.itemsize
                first = end + 1 + max(0, count - self.max_prompts) * self.dtype.itemsize
                tmp.write_bytes(self.header + data[first:end + 1 + count * self.dtype.itemsize])
                os.replace(tmp, self.path)  # still locked: no append lands in the file being replaced
        except OSError as exc:
            log.info("costmw cascade: could not shorten the traffic file %r: %s", str(self.path), exc)
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _open_locked(self, flags: int, mode: str) -> IO[bytes]:
        """The file at ``path`` opened with ``flags`` and locked against other processes' appends and
        rewrites. The lock is on the file now at the path: one that a rewrite replaced while this
        waited is let go and the new one opened. Never creates the file (FileNotFoundError)."""
        while True:
            handle = os.fdopen(os.open(self.path, flags), mode)
            if sys.platform == "win32":  # no flock: a rewrite can lose a record appended meanwhile
                return handle
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                now = os.stat(self.path)
                opened = os.fstat(handle.fileno())
                if (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino):
                    return handle
            except FileNotFoundError:
                pass  # moved aside or replaced meanwhile: open what is there now
            except BaseException:
                handle.close()
                raise
            handle.close()

    # -- appending ------------------------------------------------------------------------------

    def append(self, vector: np.ndarray, group: int, right: bool) -> None:
        """Queue one record; a thread of this file's own writes it within about a second."""
        record = np.zeros(1, dtype=self.dtype)
        record["vector"][0] = vector
        record["group"][0] = group
        record["right"][0] = int(right)
        with self._lock:
            if self._unusable:
                return
            self._pending.append(record.tobytes())
            if len(self._pending) > _COMPACT_AFTER * self.max_prompts:  # unwritable for a long time
                del self._pending[0]  # the oldest: a file this long would be cut to the newest anyway
                self.dropped += 1
                if self.dropped == 1:
                    log.warning("costmw cascade: the traffic file %r has not been written for a long time; the "
                                "oldest waiting records are dropped (counted in dropped)", str(self.path))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="costmw-cascade-traffic", daemon=True)
                self._thread.start()  # it wakes once a second and writes what has come meanwhile

    def _run(self) -> None:
        while True:
            time.sleep(self._delay)
            with self._lock:
                if not self._pending:  # idle: the thread ends, and the next record starts another
                    self._thread = None
                    return
            self.flush()

    def flush(self, *, force: bool = False) -> bool:
        """Write what is queued now (``force``: even while waiting to try again after a failure);
        False when it could not be written (it stays queued). Returns after any write in progress."""
        with self._io_lock:  # one batch at a time: a flush that finds the queue empty saw it written
            with self._lock:
                if not self._pending or (not force and time.monotonic() < self._retry_at):
                    return not self._pending
                batch, self._pending = self._pending, []
            try:
                self._create()
                with self._open_locked(os.O_WRONLY | os.O_APPEND, "ab") as out:  # one write per batch, at the end
                    out.write(b"".join(batch))
            except OSError as exc:
                with self._lock:
                    self._pending[:0] = batch
                    self.write_errors += 1
                    self._delay = min(2 * self._delay, _RETRY_MAX_S)
                    self._retry_at = time.monotonic() + self._delay
                if self.write_errors == 1 or self._delay >= _RETRY_MAX_S:
                    log.warning("costmw cascade: cannot write the traffic file %r (%s); %d records wait in "
                                "memory and are tried again", str(self.path), exc, len(batch))
                return False
            with self._lock:
                self.written += len(batch)
                self._delay, self._retry_at = _FLUSH_EVERY_S, 0.0
            return True

    def _create(self) -> None:
        """Make the file with its header, unless it exists: written whole under another name and then
        linked into place, so a process that appends never finds a file without its header."""
        if self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.new")
        tmp.write_bytes(self.header)
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            pass  # another process made it first
        except OSError:  # a file system without hard links: create it exclusively instead
            with contextlib.suppress(FileExistsError), open(self.path, "xb") as out:
                out.write(self.header)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()


_OPEN: weakref.WeakSet[TrafficFile] = weakref.WeakSet()


def _after_fork() -> None:
    """In a forked child (pre-fork server workers) no writing thread runs and a lock may have been
    copied while held: each open file gets new locks, and starts a thread of its own when needed.
    Records that were waiting are the parent's to write, not the child's."""
    for traffic in list(_OPEN):
        traffic._pending = []
        traffic._lock = threading.Lock()
        traffic._io_lock = threading.Lock()
        traffic._thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


@atexit.register
def _flush_all() -> None:
    for traffic in list(_OPEN):
        with contextlib.suppress(Exception):
            traffic.flush(force=True)
