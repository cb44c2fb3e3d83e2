"""Progress of runs on stderr: a rich bar on a terminal, plain lines elsewhere (log files, CI).

A rich bar written to a file that is not a terminal shows up only when it closes (an adaptive round, a whole
sweep: R4 once printed nothing for 23 minutes), so when stderr is not a terminal :func:`progress_bar` prints
plain lines instead: one when it opens, one every ``interval`` seconds from a timer thread (so a line comes even
while no run finishes), one when it closes. ``interval`` defaults to :data:`PLAIN_INTERVAL_S`.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

#: seconds between two plain progress lines when stderr is not a terminal
PLAIN_INTERVAL_S = 30.0


def fmt_seconds(sec: float | None) -> str:
    """'42 s', '3.5 min', '1.2 h' ('?' for None)."""
    if sec is None:
        return "?"
    sec = max(0.0, float(sec))
    if sec < 90:
        return f"{sec:.0f} s"
    if sec < 5400:
        return f"{sec / 60:.1f} min"
    return f"{sec / 3600:.1f} h"


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _PlainProgress:
    """Counts finished runs and prints a status line now and every `interval` seconds (timer thread)."""

    def __init__(self, description: str, total: int, interval: float, stream, estimate_s: float | None):
        self.description, self.total, self.interval, self.stream = description, total, interval, stream
        self.estimate_s, self.done, self.t0 = estimate_s, 0, time.perf_counter()
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._tick, name="rhm-progress", daemon=True)

    def line(self, final: bool = False) -> str:
        with self._lock:
            done = self.done
        elapsed = time.perf_counter() - self.t0
        head = f"{self.description}: {done}/{self.total} runs, {fmt_seconds(elapsed)} elapsed"
        if final:
            return head + ", finished"
        if done:  # the rate so far; before the first run finishes, the up-front estimate if there is one
            left = f"about {fmt_seconds(elapsed / done * (self.total - done))} left"
        elif self.estimate_s is not None:
            left = f"estimate {fmt_seconds(max(self.estimate_s - elapsed, 0.0))} left"
        else:
            left = "no run finished yet"
        return f"{head}, {left}"

    def _print(self, text: str) -> None:
        try:
            print(text, file=self.stream, flush=True)
        except (ValueError, OSError):  # stream closed under us (interpreter exit): progress is best effort
            pass

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._print(self.line())

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n

    def __enter__(self):
        est = f", estimate {fmt_seconds(self.estimate_s)}" if self.estimate_s is not None else ""
        self._print(f"{self.description}: {self.total} runs to do{est}")
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._print(self.line(final=True))


@contextlib.contextmanager
def progress_bar(description: str, total: int, enabled: bool = True, interval: float | None = None,
                 stream=None, estimate_s: float | None = None):
    """Yield an ``advance(n=1)`` callable while runs proceed.

    On a terminal: a rich bar on `stream` (default stderr). Otherwise: plain lines, at least one every `interval`
    seconds (default :data:`PLAIN_INTERVAL_S`), with runs done, time elapsed and time left (from the rate so far,
    or from `estimate_s`, seconds, before any run finished). Disabled: nothing is shown."""
    if not enabled:
        yield lambda n=1: None
        return
    stream = stream if stream is not None else sys.stderr
    interval = PLAIN_INTERVAL_S if interval is None else interval
    if not (interval > 0):
        raise ValueError(f"interval={interval!r} must be > 0 seconds")
    if not _is_terminal(stream):
        with _PlainProgress(description, total, interval, stream, estimate_s) as p:
            yield p.advance
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    console = Console(file=stream)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n=1: prog.advance(task, n)


class _Activity(_PlainProgress):
    """A step without runs to count (planning, writing a report): elapsed time only."""

    def line(self, final: bool = False) -> str:
        elapsed = fmt_seconds(time.perf_counter() - self.t0)
        return f"{self.description}: done in {elapsed}" if final else f"{self.description}: {elapsed} elapsed"

    def __enter__(self):
        self._print(f"{self.description} ...")
        self._thread.start()
        return self


@contextlib.contextmanager
def activity(description: str, enabled: bool = True, interval: float | None = None, stream=None):
    """Say on `stream` (default stderr) that a step without runs started, then (when the stream is not a terminal)
    one line every `interval` seconds while it lasts and one when it ends, so a log never goes quiet."""
    if not enabled:
        yield
        return
    stream = stream if stream is not None else sys.stderr
    if _is_terminal(stream):
        print(f"{description} ...", file=stream, flush=True)
        yield
        return
    interval = PLAIN_INTERVAL_S if interval is None else interval
    with _Activity(description, 0, interval, stream, None):
        yield
