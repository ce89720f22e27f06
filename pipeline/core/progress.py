"""Progress of a long loop: a tqdm bar on a terminal, one INFO log line every N steps otherwise.

Stage logs under ``results/<ds>/logs/`` are files, where a bar's carriage-return frames are noise;
``progress(...)`` takes tqdm's arguments and, when standard error is not a terminal, logs
``<desc>: <n>/<total> <unit> (<rate>/s, <postfix>)`` every ``every`` steps and at the end instead.
"""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("progress")


class LogProgress:
    """The parts of tqdm's interface the project uses, written as log lines."""

    def __init__(self, iterable=None, total: int | None = None, desc: str = "", unit: str = "it",
                 initial: int = 0, every: int | None = None, disable: bool = False) -> None:
        self.iterable, self.desc, self.unit, self.disable = iterable, desc, unit, disable
        self.total = total if total is not None or iterable is None else _length(iterable)
        self.n = self._logged = self._start_n = initial
        self.every = every or max(1, (self.total or 100) // 10)
        self.postfix: dict = {}
        self._start = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n // self.every > self._logged // self.every or self.n == self.total:
            self._log()

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = values

    def _log(self) -> None:
        if self.disable or self.n == self._logged:
            return
        self._logged = self.n
        rate = (self.n - self._start_n) / max(time.perf_counter() - self._start, 1e-9)
        total = f"/{self.total}" if self.total else ""
        extra = "".join(f", {k}={v}" for k, v in self.postfix.items())
        log.info("%s: %d%s %s (%.2f %s/s%s)", self.desc, self.n, total, self.unit, rate, self.unit, extra)

    def close(self) -> None:
        self._log()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _length(iterable) -> int | None:
    try:
        return len(iterable)
    except TypeError:
        return None


def progress(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
             every: int | None = None, disable: bool = False, interactive: bool | None = None):
    """A tqdm bar when standard error is a terminal (or ``interactive``), else a :class:`LogProgress`
    that logs every ``every`` steps (default: a tenth of ``total``)."""
    if sys.stderr.isatty() if interactive is None else interactive:
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=disable)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, every=every, disable=disable)
