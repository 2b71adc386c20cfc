"""Progress of a training run on screen: a live line on a terminal, plain lines, or JSON.

A trainer builds a ``ProgressState`` every half second or so and hands it to a
``ProgressDisplay`` from ``open_display``; the display decides what to show and when:

- ``live``: one line redrawn in place (rich): steps/s, mean reward, global step, and
  against ``total_steps`` (when known) a bar and an ETA;
- ``plain``: a line every ``interval`` seconds, no terminal codes (logs, pipes);
- ``json``: one JSON object per line every ``interval`` seconds (``JSON_KEYS``), then
  ``{"event": "end", "reason": ...}``; other messages (``note``) go to stderr, so that
  the stream holds JSON only;
- ``auto``: ``live`` on a terminal, ``plain`` otherwise.

Steps per second come from a ``RateMeter``: the rate over the last few seconds of
updates, never steps / elapsed (steps counted before the clock started would make
the first line absurd); "-" until a second has passed between two samples.
"""

from __future__ import annotations

import json
import math
import sys
import time
from abc import ABC, abstractmethod
from argparse import ArgumentParser
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TextIO

#: Seconds between plain and JSON lines.
PROGRESS_INTERVAL = 5.0
#: Seconds between a trainer's updates of its display (the live line's refresh).
UPDATE_INTERVAL = 0.5
#: Characters of the live display's bar.
BAR_WIDTH = 16
#: The display modes ``open_display`` knows.
MODES = ("auto", "live", "plain", "json")
#: The keys of every JSON progress object (after ``"event": "progress"``).
JSON_KEYS = (
    "elapsed_s",
    "steps",
    "steps_per_s",
    "episodes",
    "mean_reward",
    "global_step",
    "checkpoints",
    "total_steps",
    "eta_s",
)


@dataclass(frozen=True)
class ProgressState:
    """Where a training run stands (``mean_reward`` is -inf while unknown)."""

    elapsed: float
    steps: int
    episodes: int
    mean_reward: float
    global_step: int
    checkpoints: int
    total_steps: int | None = None


def mean_of_last(values: Sequence[float], window: int) -> float:
    """Mean of the last ``window`` values; -inf while fewer came."""
    if len(values) < window:
        return -math.inf
    return sum(values[-window:]) / window


class RateMeter:
    """Steps per second over the samples of the last ``window`` seconds.

    ``rate`` is None until two samples at least ``min_span`` seconds apart exist.
    """

    def __init__(self, window: float = 10.0, min_span: float = 1.0) -> None:
        self.window = window
        self.min_span = min_span
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, elapsed: float, steps: int) -> float | None:
        """Record ``steps`` counted at ``elapsed`` seconds; the rate now."""
        samples = self._samples
        if samples and elapsed <= samples[-1][0]:
            samples[-1] = (samples[-1][0], steps)  # same instant: keep the newer count
        else:
            samples.append((elapsed, steps))
        # keep one sample at or before the window's start, so that the span covers it
        while len(samples) > 2 and samples[1][0] <= elapsed - self.window:
            samples.popleft()
        return self.rate

    @property
    def rate(self) -> float | None:
        """Steps per second, or None while the samples span less than ``min_span``."""
        if len(self._samples) < 2:
            return None
        (t0, s0), (t1, s1) = self._samples[0], self._samples[-1]
        if t1 - t0 < self.min_span:
            return None
        return max(0, s1 - s0) / (t1 - t0)


def eta_seconds(state: ProgressState, rate: float | None) -> float | None:
    """Seconds until ``state.total_steps`` at ``rate``; None when either is unknown."""
    if state.total_steps is None or not rate:
        return None
    return max(0, state.total_steps - state.steps) / rate


def duration_text(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def rate_text(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:,.0f}"


def mean_text(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.1f}"


def plain_line(state: ProgressState, rate: float | None) -> str:
    """The plain progress line of ``state`` at ``rate`` steps/s."""
    steps = f"{state.steps:,}"
    eta = ""
    if state.total_steps is not None:
        steps += f"/{state.total_steps:,}"
        eta = f"  ETA {duration_text(eta_seconds(state, rate))}"
    return (
        f"[{state.elapsed:6.0f} s] steps {steps} ({rate_text(rate)}/s)  "
        f"global step {state.global_step:,}  episodes {state.episodes:,}  "
        f"mean reward {mean_text(state.mean_reward)}  checkpoints {state.checkpoints}{eta}"
    )


def json_record(state: ProgressState, rate: float | None) -> dict[str, object]:
    """``state`` as the JSON keys (``JSON_KEYS``); unknown values are None."""
    eta = eta_seconds(state, rate)
    return {
        "elapsed_s": round(state.elapsed, 3),
        "steps": state.steps,
        "steps_per_s": None if rate is None else round(rate, 3),
        "episodes": state.episodes,
        "mean_reward": state.mean_reward if math.isfinite(state.mean_reward) else None,
        "global_step": state.global_step,
        "checkpoints": state.checkpoints,
        "total_steps": state.total_steps,
        "eta_s": None if eta is None else round(eta, 1),
    }


class ProgressDisplay(ABC):
    """Shows a run's progress on ``stream``: ``update`` often, ``close`` once at the end.

    The base class measures the rate and throttles to one line per ``interval``
    seconds (the first update and the last state always show); subclasses say how
    a state is shown (``show``) and how the end is (``end``).
    """

    def __init__(
        self, stream: TextIO, *, total_steps: int | None = None, interval: float = PROGRESS_INTERVAL
    ) -> None:
        self.stream = stream
        self.total_steps = total_steps
        self.interval = interval
        self.meter = RateMeter()
        self.closed = False
        self._last: ProgressState | None = None
        self._shown: ProgressState | None = None
        self._next = -math.inf

    def update(self, state: ProgressState) -> None:
        """A new state of the run (call it as often as you like)."""
        if state.total_steps is None and self.total_steps is not None:
            state = replace(state, total_steps=self.total_steps)
        self.meter.add(state.elapsed, state.steps)
        self._last = state
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            self._show(state)

    def note(self, text: str) -> None:
        """A message for the user (a warning, where files are), kept apart from the progress."""
        print(text, file=self.stream, flush=True)

    def close(self, reason: str) -> None:
        """The run ended because of ``reason``: show its last state (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self._last is not None and self._last is not self._shown:
            self._show(self._last)
        self.end(reason)

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self.close("error" if error is not None else "done")

    def _show(self, state: ProgressState) -> None:
        self._shown = state
        self.show(state, self.meter.rate)

    @abstractmethod
    def show(self, state: ProgressState, rate: float | None) -> None:
        """Show one state."""

    def end(self, reason: str) -> None:  # noqa: B027 (an optional hook: plain lines need none)
        """Finish the display (after the last state was shown)."""


class PlainDisplay(ProgressDisplay):
    """One plain line per ``interval`` seconds (``plain_line``)."""

    def show(self, state: ProgressState, rate: float | None) -> None:
        print(plain_line(state, rate), file=self.stream, flush=True)


class JsonDisplay(ProgressDisplay):
    """One JSON object per line (``json_record``); ``note`` writes to ``notes`` (stderr)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        total_steps: int | None = None,
        interval: float = PROGRESS_INTERVAL,
        notes: TextIO | None = None,
    ) -> None:
        super().__init__(stream, total_steps=total_steps, interval=interval)
        self.notes = notes if notes is not None else sys.stderr

    def show(self, state: ProgressState, rate: float | None) -> None:
        self._write({"event": "progress", **json_record(state, rate)})

    def note(self, text: str) -> None:
        print(text, file=self.notes, flush=True)

    def end(self, reason: str) -> None:
        last = {} if self._last is None else json_record(self._last, self.meter.rate)
        self._write({"event": "end", "reason": reason, **last})

    def _write(self, record: dict[str, object]) -> None:
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


class LiveDisplay(ProgressDisplay):
    """One line redrawn in place with rich; notes print above it."""

    def __init__(
        self,
        stream: TextIO,
        *,
        total_steps: int | None = None,
        interval: float = PROGRESS_INTERVAL,
        force_terminal: bool = True,
    ) -> None:
        super().__init__(stream, total_steps=total_steps, interval=0.0)  # redraw every update
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream, force_terminal=force_terminal)
        self.live = Live(console=self.console, auto_refresh=False, transient=False)

    def show(self, state: ProgressState, rate: float | None) -> None:
        if not self.live.is_started:
            self.live.start()  # at the first state: nothing drawn before
        self.live.update(self.renderable(state, rate), refresh=True)

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def end(self, reason: str) -> None:
        self.live.stop()

    @staticmethod
    def renderable(state: ProgressState, rate: float | None) -> object:
        """The live line: a bar against ``total_steps`` (when known), then the figures, the
        most wanted first (a narrow terminal cuts the end)."""
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        steps = f"{state.steps:,}"
        eta = ""
        if state.total_steps is not None:
            steps += f"/{state.total_steps:,}"
            eta = f"  ETA {duration_text(eta_seconds(state, rate))}"
        text = Text.assemble(
            (duration_text(state.elapsed), "bold"),
            f"  steps {steps} ",
            (f"{rate_text(rate)}/s", "cyan"),
            eta,
            "  reward ",
            (mean_text(state.mean_reward), "green"),
            f"  global step {state.global_step:,}  episodes {state.episodes:,}",
            no_wrap=True,
            overflow="ellipsis",
        )
        if state.total_steps is None:
            return text
        line = Table.grid(padding=(0, 1))
        line.add_column(min_width=BAR_WIDTH, max_width=BAR_WIDTH)
        line.add_column(no_wrap=True, overflow="ellipsis")
        bar = ProgressBar(total=state.total_steps, completed=state.steps, width=BAR_WIDTH)
        line.add_row(bar, text)
        return line


def add_progress_option(parser: ArgumentParser) -> None:
    """``--progress auto|live|plain|json`` (default auto) on a command that trains."""
    parser.add_argument(
        "--progress",
        choices=MODES,
        default="auto",
        help="progress display: a live line on a terminal, plain lines, or JSON lines "
        "(auto: live on a terminal, plain otherwise)",
    )


def open_display(
    mode: str,
    *,
    stream: TextIO | None = None,
    total_steps: int | None = None,
    interval: float = PROGRESS_INTERVAL,
) -> ProgressDisplay:
    """The display of ``mode`` (``MODES``, see the module docstring) on ``stream`` (stdout)."""
    if mode not in MODES:
        raise ValueError(f"progress mode {mode!r}: expected one of {', '.join(MODES)}")
    stream = sys.stdout if stream is None else stream
    if mode == "auto":
        mode = "live" if _is_terminal(stream) else "plain"
    kinds: dict[str, type[ProgressDisplay]] = {
        "live": LiveDisplay,
        "plain": PlainDisplay,
        "json": JsonDisplay,
    }
    return kinds[mode](stream, total_steps=total_steps, interval=interval)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
