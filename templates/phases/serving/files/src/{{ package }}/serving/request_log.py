"""Append-only JSON-lines logs written off the request path.

The request handler only puts a dict on a bounded queue (no I/O, no serialisation); a background
thread serialises batches and appends them with one ``os.write`` per batch on an ``O_APPEND``
descriptor, so several uvicorn workers can share a file without interleaving lines. Lines are
strict JSON (no NaN/Infinity: see ``json_line``). ``close()``
drains the queue and flushes: call it on shutdown. When the queue is full (the disk cannot keep
up) records are dropped and counted rather than slowing the service down.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_STOP = object()


def _finite_only(value: Any) -> Any:
    """``value`` with every NaN/Infinity float replaced by None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_only(v) for v in value]
    return value


def json_line(record: dict[str, Any]) -> str:
    """One strict JSON line (``allow_nan=False``): a non-finite number is written as null and
    the record gets ``"non_finite": true``, so every line parses with a strict JSON parser."""
    try:
        text = json.dumps(record, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError:
        cleaned = {**_finite_only(record), "non_finite": True}
        text = json.dumps(cleaned, separators=(",", ":"), default=str, allow_nan=False)
    return text + "\n"


def csv_line(columns: Sequence[str]) -> Callable[[dict[str, Any]], str]:
    """A line formatter writing ``columns`` of a record as one CSV row (quoted as needed)."""

    def line(record: dict[str, Any]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow([record.get(c) for c in columns])
        return buffer.getvalue()

    return line


def utc_timestamp() -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2026-01-31T12:00:00.123Z."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class JsonlWriter:
    """A queue plus one writer thread appending JSON objects to ``path``, one per line.

    ``line`` formats a record (default: strict JSON); ``header`` is written first when the file
    is new or empty (the CSV labels file of ``POST /feedback``)."""

    def __init__(
        self,
        path: Path,
        max_queue: int = 100_000,
        batch: int = 1_000,
        flush_seconds: float = 0.2,
        line: Callable[[dict[str, Any]], str] = json_line,
        header: str | None = None,
    ) -> None:
        self.path = path
        self._line = line
        self._header = header
        self.dropped = 0
        self.written = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._batch = batch
        self._flush_seconds = flush_seconds
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> JsonlWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # fail at start-up (not silently later) when the log cannot be written
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if self._header is not None and os.fstat(fd).st_size == 0:
            os.write(fd, self._header.encode("utf-8"))
        self._thread = threading.Thread(
            target=self._run, args=(fd,), name=f"jsonl-writer:{self.path.name}", daemon=True
        )
        self._thread.start()
        return self

    def write(self, record: dict[str, Any]) -> bool:
        """Queue one record; never blocks. Returns False (and counts it) when it was dropped."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write everything queued so far, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None
        if self._error is not None:
            raise RuntimeError(f"writing {self.path} failed: {self._error}") from self._error

    def __enter__(self) -> JsonlWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, fd: int) -> None:
        try:
            stop = False
            while not stop:
                try:
                    items = [self._queue.get(timeout=self._flush_seconds)]
                except queue.Empty:
                    continue
                while len(items) < self._batch:
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if any(item is _STOP for item in items):
                    stop = True
                    items = [item for item in items if item is not _STOP]
                    while True:  # drain what arrived before the stop marker
                        try:
                            extra = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if extra is not _STOP:
                            items.append(extra)
                if items:
                    lines = "".join(self._line(item) for item in items)
                    data = lines.encode("utf-8")
                    while data:
                        written = os.write(fd, data)
                        data = data[written:]
                    self.written += len(items)
        except BaseException as exc:  # surfaced by close()
            self._error = exc
        finally:
            os.close(fd)
