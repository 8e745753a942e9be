"""Progress of long work (featurization, landscape grids): a bar on a terminal, plain lines in logs.

Where stderr is a terminal, a tqdm bar. Anywhere else (a log file, ``2>&1 | tee``, a batch
job, a notebook) one line about every :data:`LINE_EVERY_S` seconds or every 10 % of the work,
whichever comes first, with the rate and the time left, and a last line with the total::

    featurizing bbbp: 246,000/1,230,000 molecules (20 %), 2,480 molecules/s, ETA 6 min 37 s
    featurizing bbbp: 1,230,000 molecules in 8 min 16 s (2,479 molecules/s)

The lines go to the ``gradscope`` logger at INFO level when the application has configured
logging (any handler on it or its parents), so they take the application's format and
destination; otherwise they are written to stderr directly, so that a plain script's log shows
them with no setup.
"""
from __future__ import annotations

import logging
import math
import sys
import time
from typing import TextIO

LOGGER = logging.getLogger("gradscope")
#: seconds between progress lines when stderr is not a terminal
LINE_EVERY_S = 10.0


class Progress:
    """Counts finished items of a known total and shows it (see the module docstring).

    Args:
        total: items to do.
        desc: what is being done (``"featurizing bbbp"``).
        unit: the items' name in the lines (``"molecules"``).
        enabled: False shows nothing.
        stream: where bars and fallback lines go (default ``sys.stderr``, read when created).
        terminal: bar (True) or lines (False); default: whether ``stream`` is a terminal.
    """

    def __init__(self, total: int, desc: str, *, unit: str = "molecules", enabled: bool = True,
                 stream: TextIO | None = None, terminal: bool | None = None) -> None:
        self.total, self.desc, self.unit = int(total), desc, unit
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._t0 = self._last = time.monotonic()
        self._tenths = 1  # the next line due at this many tenths of the work
        self._bar = None
        self._lines = False
        if not enabled:
            return
        if terminal if terminal is not None else _isatty(self._stream):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit=unit, file=self._stream, leave=False, mininterval=0.5)
        else:
            self._lines = True

    def update(self, n: int) -> None:
        """``n`` more items are done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._lines and self.done < self.total:
            now = time.monotonic()
            tenths = 10 * self.done // max(self.total, 1)  # integer: no rounding at 30 %
            if now - self._last >= LINE_EVERY_S or tenths >= self._tenths:
                self._emit(self._line(now))
                self._last = now
                self._tenths = tenths + 1

    def close(self, finished: bool = True) -> None:
        """Close the bar, or write the line with the total time and rate (when ``finished``)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._lines and finished:
            elapsed = time.monotonic() - self._t0
            rate = self.done / elapsed if elapsed > 0 else math.inf
            self._emit(f"{self.desc}: {self.done:,} {self.unit} in {_duration(elapsed)} ({_rate(rate)} {self.unit}/s)")
            self._lines = False

    def _line(self, now: float) -> str:
        elapsed = now - self._t0
        rate = self.done / elapsed if elapsed > 0 else math.inf
        eta = (self.total - self.done) / rate if rate > 0 else math.inf
        percent = 100.0 * self.done / max(self.total, 1)
        return (f"{self.desc}: {self.done:,}/{self.total:,} {self.unit} ({percent:.0f} %), "
                f"{_rate(rate)} {self.unit}/s, ETA {_duration(eta)}")

    def _emit(self, line: str) -> None:
        if LOGGER.hasHandlers():
            LOGGER.info(line)
        else:
            print(line, file=self._stream, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(finished=exc_type is None)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a file
        return False


def _rate(rate: float) -> str:
    """``2,480``, ``3.5``, ``0.25`` (``?`` when unknown)."""
    if not math.isfinite(rate):
        return "?"
    return f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"


def _duration(seconds: float) -> str:
    """``42 s``, ``6 min 37 s``, ``2 h 05 min`` (``?`` when unknown)."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
