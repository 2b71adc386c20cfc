"""Scalars from the TensorBoard event files the metrics collector writes (docs/metrics.md).

``ScalarReader`` follows the ``events.out.tfevents.*`` files of one run folder
(``metrics.logdir``), new files included, and returns each tag's values read since
the last call; ``read_scalars`` reads a whole run at once (``plot``, ``compare``). The
reader also keeps the wall times of the first and last events it saw (``span``): a
run starts when its collector opened its first event file.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto.event_pb2 import Event

#: The tag of the clients' episode rewards (``client/`` + ``names.EPISODE_REWARD``).
EPISODE_REWARD = "client/episode_reward"
#: Environment steps since the client's previous report (``names.ENV_STEPS``), sent with
#: the episode rewards; their running sum counts the run's environment steps.
ENV_STEPS = "client/env_steps"
#: Episode lengths (``names.EPISODE_LENGTH``): the step counts of runs without ``ENV_STEPS``.
EPISODE_LENGTH = "client/episode_length"
#: Episodes each episode_reward value is the mean of (``names.EPISODES``; 1 when absent).
EPISODES = "client/episodes"
PATTERN = "events.out.tfevents.*"


class Point(NamedTuple):
    """One scalar: its step, its value and the wall time it was sent."""

    step: int
    value: float
    wall_time: float


class ScalarReader:
    """Follows the event files of ``logdir`` (the files directly in it)."""

    def __init__(self, logdir: Path, tags: set[str] | None = None) -> None:
        self.logdir = Path(logdir)
        self.tags = tags
        self._loaders: dict[Path, RawEventFileLoader] = {}
        #: wall times of the first and last events read (None before any)
        self.span: tuple[float, float] | None = None

    def read(self) -> dict[str, list[Point]]:
        """Scalars by tag written since the last ``read`` (every tag, or only ``tags``)."""
        found: dict[str, list[Point]] = defaultdict(list)
        if not self.logdir.is_dir():
            return found
        for path in sorted(self.logdir.glob(PATTERN)):
            if path not in self._loaders:
                self._loaders[path] = RawEventFileLoader(str(path))
            for record in self._loaders[path].Load():
                event = Event.FromString(record)
                self._saw(event.wall_time)
                for value in event.summary.value:
                    if value.WhichOneof("value") != "simple_value":
                        continue
                    if self.tags is not None and value.tag not in self.tags:
                        continue
                    point = Point(int(event.step), float(value.simple_value), event.wall_time)
                    found[value.tag].append(point)
        return found

    def _saw(self, wall_time: float) -> None:
        if self.span is None:
            self.span = (wall_time, wall_time)
        else:
            self.span = (min(self.span[0], wall_time), max(self.span[1], wall_time))


def read_scalars(logdir: Path, tags: set[str] | None = None) -> dict[str, list[Point]]:
    """Every scalar of a run by tag, each tag's points in file then write order."""
    return ScalarReader(logdir, tags).read()


def runs_under(folder: Path) -> list[Path]:
    """The run folders at or below ``folder``: those holding event files directly."""
    folder = Path(folder)
    return sorted({path.parent for path in folder.rglob(PATTERN)})
