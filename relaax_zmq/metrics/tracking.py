"""Experiment trackers fed by the collector: MLflow and Weights & Biases (optional extras).

Each is a ``ScalarSink``: the collector gives it every scalar it writes to the event files,
with the same tag, step and wall time. ``open_sinks`` opens the ones ``metrics.mlflow`` and
``metrics.wandb`` enable; their libraries are imported only then.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from relaax_zmq.errors import ConfigError

if TYPE_CHECKING:
    from relaax_zmq.config.sections import MetricsConfig
    from relaax_zmq.config.tracking import MlflowConfig, WandbConfig

log = logging.getLogger(__name__)

#: The module each extra must provide.
_MODULES = {"mlflow": "mlflow.tracking", "wandb": "wandb"}
#: The W&B metric that carries each row's step: the x axis of every other metric.
WANDB_STEP = "step"
#: Most metrics in one MLflow ``log_batch`` call (its REST API's limit).
MLFLOW_BATCH = 1000


class ScalarSink(Protocol):
    """Somewhere the collector's scalars also go. Its methods may raise; the caller counts."""

    name: str

    def write(self, step: int, wall_time: float, scalars: Mapping[str, float]) -> None:
        """Record ``scalars`` (tag -> value) at ``step``; ``wall_time`` is unix seconds."""

    def flush(self) -> None:
        """Send or save what ``write`` buffered."""

    def close(self) -> None:
        """Flush and end the run."""


class MlflowSink:
    """One MLflow run: ``write`` buffers, ``flush`` sends one ``log_batch`` per 1000 metrics."""

    name = "mlflow"

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self._pending: list[Any] = []

    @classmethod
    def open(cls, config: MlflowConfig, run_name: str) -> MlflowSink:
        """Start a run in ``config.experiment`` (created when missing) at ``config.tracking_uri``."""
        tracking = _require("mlflow")
        client = tracking.MlflowClient(tracking_uri=config.tracking_uri)
        experiment = client.get_experiment_by_name(config.experiment)
        if experiment is None:
            experiment_id = client.create_experiment(config.experiment)
        else:
            experiment_id = experiment.experiment_id
        run = client.create_run(experiment_id, run_name=config.run_name or run_name)
        return cls(client, run.info.run_id)

    def write(self, step: int, wall_time: float, scalars: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        millis = round(wall_time * 1000)
        self._pending += [Metric(tag, value, millis, step) for tag, value in scalars.items()]

    def flush(self) -> None:
        """Send what was written. A batch MLflow refuses is sent again one tag at a time, so
        that a name it refuses (``a@b``) loses only that tag; the refused tags are raised."""
        pending, self._pending = self._pending, []  # what fails is not sent again
        refused: dict[str, Exception] = {}
        for start in range(0, len(pending), MLFLOW_BATCH):
            chunk = pending[start : start + MLFLOW_BATCH]
            try:
                self.client.log_batch(self.run_id, metrics=chunk)
            except Exception:
                refused.update(self._send_by_tag(chunk))
        if refused:
            tag, cause = next(iter(refused.items()))
            raise RuntimeError(f"MLflow refused {sorted(refused)}; {tag!r}: {cause}")

    def _send_by_tag(self, metrics: list[Any]) -> dict[str, Exception]:
        by_tag: dict[str, list[Any]] = {}
        for metric in metrics:
            by_tag.setdefault(metric.key, []).append(metric)
        refused = {}
        for tag, group in by_tag.items():
            try:
                self.client.log_batch(self.run_id, metrics=group)
            except Exception as exc:
                refused[tag] = exc
        return refused

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.client.set_terminated(self.run_id)


class WandbSink:
    """One W&B run. Each write is one row: its scalars, ``step`` (their x axis, declared with
    ``define_metric``) and ``_timestamp`` (the wall time). W&B's own row counter is left to
    increase by itself: rows of different tags come with steps in any order and none is dropped.
    """

    name = "wandb"

    def __init__(self, run: Any) -> None:
        self.run = run
        run.define_metric(WANDB_STEP, hidden=True)
        run.define_metric("*", step_metric=WANDB_STEP)

    @classmethod
    def open(cls, config: WandbConfig, run_name: str, default_dir: Path) -> WandbSink:
        """Start a run of ``config.project`` with its local files under ``<dir>/wandb``."""
        wandb = _require("wandb")
        folder = Path(config.dir or default_dir)
        folder.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=config.project,
            entity=config.entity,
            name=config.run_name or run_name,
            mode=config.mode,
            dir=str(folder),
            reinit="create_new",  # another run of this process (the user's own) stays as it is
            settings=wandb.Settings(console="off"),
        )
        return cls(run)

    def write(self, step: int, wall_time: float, scalars: Mapping[str, float]) -> None:
        self.run.log({**scalars, WANDB_STEP: step, "_timestamp": wall_time})

    def flush(self) -> None:
        """Nothing to do: W&B sends rows in the background as they are logged."""

    def close(self) -> None:
        self.run.finish()


def _require(extra: str) -> Any:
    """Import the module of ``extra``; a ``ConfigError`` naming the extra when it cannot."""
    try:
        return importlib.import_module(_MODULES[extra])
    except ImportError as exc:
        raise ConfigError(
            f"metrics.{extra}",
            f"needs the {extra} package, which cannot be imported ({exc}): "
            f"pip install 'relaax-zmq[{extra}]'",
        ) from None


def open_sinks(metrics: MetricsConfig, run_name: str) -> list[ScalarSink]:
    """The trackers the ``metrics`` section enables, each with a new run named ``run_name``
    unless its own ``run_name`` is set; [] when none is.

    Raises:
        ConfigError: ``metrics.mlflow`` or ``metrics.wandb`` enables a tracker whose extra is
            not installed, or the tracker cannot start its run (the key names which).
    """
    logdir = Path(metrics.logdir)
    openers: list[tuple[str, Callable[[], ScalarSink]]] = []
    if metrics.mlflow is not None and metrics.mlflow.enabled:
        openers.append(("mlflow", partial(MlflowSink.open, metrics.mlflow, run_name)))
    if metrics.wandb is not None and metrics.wandb.enabled:
        openers.append(("wandb", partial(WandbSink.open, metrics.wandb, run_name, logdir)))
    for name, _ in openers:  # every extra is checked before any run starts
        _require(name)
    sinks: list[ScalarSink] = []
    try:
        for name, opener in openers:
            sinks.append(_start(name, opener))
    except BaseException:
        _close_quietly(sinks)
        raise
    return sinks


def _start(name: str, opener: Callable[[], ScalarSink]) -> ScalarSink:
    """``opener()``; its failure as a ``ConfigError`` naming ``metrics.<name>``."""
    try:
        return opener()
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"metrics.{name}", f"cannot start the {name} run: {exc}") from exc


def _close_quietly(sinks: list[ScalarSink]) -> None:
    """Close every sink, even after one fails (the error that made us close is the one raised)."""
    for sink in sinks:
        try:
            sink.close()
        except Exception:
            log.exception("closing the %s run failed", sink.name)
