"""What numba is compiling while a process starts, and how far it is, in the log.

    progress = CompileProgress("engine").install()    # before the first kernel is used
    ...build, recover, warm up...
    progress.finish()                                 # before the hot loop

numba broadcasts a ``numba:compile`` event around each compilation of a kernel for a
signature (``numba.core.event``); a kernel loaded from the on-disk cache sends none
(``Dispatcher.compile`` returns before the event), so a warm start logs nothing and
starts no thread. Counted are ringex's own kernels (cached, ``ringex.*`` modules); the
helpers numba compiles inside them (sorting, ``min``) and the per-process struct
constructors (ringex/core/structs.py, never cached) are not.

While kernels compile, an INFO line at most every ``every_s`` seconds::

    engine: compiling kernels: 12/47 (on_new), 23 s so far, 139 s last time

The total is how many the last start from an empty cache compiled (``kernel_cache.is_warm``
false at the first compile, and fewer kernels loaded than compiled: another process
starting on the same cache at the same time compiles its share), kept in
``compile-counts.json`` next to the kernel cache
(``ringex.kernel_cache.counts_file``); without one, or past it: ``12 compiled (on_new)``.
A partly warm cache (a source file's timestamp changed) compiles fewer and stops short
of the total. ``finish`` stops listening (nothing is left in the hot loop) and logs the
sum.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import time

from numba.core import event
from numba.core.dispatcher import Dispatcher

from ringex import kernel_cache

log = logging.getLogger(__name__)

EVERY_S = 2.0


def _ours(dispatcher) -> bool:
    return (getattr(dispatcher.py_func, "__module__", None) or "").startswith("ringex")


def loaded_from_cache() -> int:
    """Kernels of the imported ringex modules that this process loaded from the cache."""
    n = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("ringex") or module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and value.py_func.__module__ == name:
                n += sum(value.stats.cache_hits.values())
    return n


def read_counts() -> dict:
    try:
        counts = json.loads(kernel_cache.counts_file().read_text())
    except (OSError, ValueError):
        return {}
    return counts if isinstance(counts, dict) else {}


class CompileProgress(event.Listener):
    """Logs ``<label>: compiling kernels: done/total (current)`` while numba compiles."""

    def __init__(self, label: str, every_s: float = EVERY_S):
        self.label = label
        self.every_s = every_s          # 0: a line after every kernel (tests)
        self.done = 0
        self.total: int | None = None
        self.last_seconds: float | None = None  # the last start from an empty cache took
        self.started: float | None = None      # monotonic time of the first compile
        self.from_scratch = False              # the cache had no matcher kernel then
        self._compiling: list[str] = []        # names, outermost first
        self._last_line = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._installed = False

    def install(self) -> "CompileProgress":
        event.register("numba:compile", self)
        self._installed = True
        return self

    # ------------------------------------------------------------ numba's events
    def on_start(self, ev) -> None:
        if not _ours(ev.data["dispatcher"]):
            return
        with self._lock:
            if self.started is None:
                self._first_compile()
            self._compiling.append(ev.data["dispatcher"].py_func.__name__)

    def on_end(self, ev) -> None:
        if not _ours(ev.data["dispatcher"]):
            return
        with self._lock:
            if self._compiling:
                self._compiling.pop()
            self.done += 1
            if time.monotonic() - self._last_line >= self.every_s:
                self._log_line()

    def _first_compile(self) -> None:
        self.started = self._last_line = time.monotonic()
        self.from_scratch = not kernel_cache.is_warm()
        entry = read_counts().get(self.label)
        if isinstance(entry, dict) and isinstance(entry.get("kernels"), int):
            self.total = entry["kernels"]
            if isinstance(entry.get("seconds"), (int, float)):
                self.last_seconds = float(entry["seconds"])
        if self.every_s > 0:            # a line even while one long kernel compiles
            self._thread = threading.Thread(target=self._tick, daemon=True,
                                            name="ringex-compile-progress")
            self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.every_s / 4):
            with self._lock:
                if time.monotonic() - self._last_line >= self.every_s:
                    self._log_line()

    def line(self) -> str:
        """``compiling kernels: 12/47 (on_new), 23 s so far, 139 s last time``."""
        done = f"{self.done}/{self.total}" if self.total and self.done < self.total \
            else f"{self.done} compiled"
        now = f" ({self._compiling[-1]})" if self._compiling else ""
        elapsed = time.monotonic() - (self.started or time.monotonic())
        last = "" if self.last_seconds is None else f", {self.last_seconds:.0f} s last time"
        return f"compiling kernels: {done}{now}, {elapsed:.0f} s so far{last}"

    def _log_line(self) -> None:
        self._last_line = time.monotonic()
        log.info("%s: %s", self.label, self.line())

    # ------------------------------------------------------------ the end
    def finish(self) -> None:
        """Stop listening; if anything compiled, log the sum (and after a start from an
        empty cache keep the count, the next such start's total). Safe to call twice."""
        if self._installed:
            event.unregister("numba:compile", self)
            self._installed = False
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self.started is None or not self.done:
            return
        seconds = time.monotonic() - self.started
        loaded = loaded_from_cache()
        log.info("%s: compiled %d kernels in %.0f s%s; cached in %s for the next start",
                 self.label, self.done, seconds,
                 f" ({loaded} more loaded from the cache)" if loaded else "",
                 kernel_cache.cache_folder())
        if self.from_scratch and self.done > loaded:     # not mostly another process's work
            self._save(self.done, seconds)
        self.started = None

    def _save(self, kernels: int, seconds: float) -> None:
        counts = read_counts()
        counts[self.label] = {"kernels": kernels, "seconds": round(seconds, 1)}
        path = kernel_cache.counts_file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{self.label}.tmp")
            tmp.write_text(json.dumps(counts, indent=1) + "\n")
            tmp.replace(path)
        except OSError as exc:          # a read-only home: only the next total is lost
            log.debug("cannot keep the kernel count in %s: %s", path, exc)
