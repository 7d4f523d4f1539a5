"""The results store: one JSON file per finished run, named by its configuration's hash.

A store is a folder of ``<key>.json`` files, ``<key>`` being :attr:`RunConfig.key`, the first 16
hex digits of the SHA-256 of the configuration's canonical JSON. Each file holds the run's full
configuration, per-epoch curves, wall time, device, precision, package versions and the dataset
actually used (name and source), under the schema tag :data:`SCHEMA`.

Design decisions:

* **The device is not part of the key.** A configuration names an experiment; the device is
  where it was computed. The book's committed results come from a GPU and must be found again
  when the book is rebuilt on a laptop CPU (``device="auto"`` there), otherwise every build
  would retrain everything. The device, its name and the precision are recorded in the file,
  so runs from different hardware can still be told apart in the DataFrame.
* **Atomic writes.** A file is written to a temporary name in the same folder, flushed and
  fsync-ed, then renamed over its final name with ``os.replace`` (atomic on POSIX and Windows).
  A run killed while writing leaves at worst a hidden ``.<key>.*.tmp`` file, which readers
  ignore; a ``<key>.json`` file is always complete.
* **Nothing invalid is used silently.** A file that is not valid JSON, carries another schema,
  lacks fields, has curves of the wrong length, or whose configuration does not hash to its
  file name (edited, renamed or foreign) raises :class:`RunFileError` when loaded, and is listed
  by :meth:`ResultsStore.scan`.
* **Strict JSON.** Non-finite numbers (a diverged loss) are written as ``null`` and read back
  as ``nan``.

* **One trainer per run.** Several processes or machines may fill one store (two sweeps, the
  workers of a Dask or Ray cluster, the trials of one Optuna study). :meth:`ResultsStore.claim`
  takes a lease on a run (a hidden ``.<key>.lock`` file beside the results, held with
  :class:`filelock.SoftFileLease`, which works on a disk shared by several machines): its holder
  refreshes it every few seconds, and a lease that nobody refreshed for
  :data:`CLAIM_LEASE_S` seconds (its process was killed) is taken over. Whoever gets a claim
  first rereads the store, so a run finished meanwhile by another process is loaded, not
  trained again.
* **Killed writers leave no litter for long.** Temporary files older than
  :data:`STALE_TEMPORARY_S` (no write takes that long) are removed when a sweep opens the store.

The folder should hold run files only: any other ``*.json`` in it is reported as invalid.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock, Timeout

try:  # filelock >= 3.20; older releases (a GPU image's, say) have only FileLock
    from filelock import SoftFileLease
except ImportError:  # pragma: no cover - depends on the installed filelock
    SoftFileLease = None

from .runs import HISTORY_KEYS, RunConfig, RunResult, history_keys

__all__ = [
    "CLAIM_LEASE_S",
    "SCHEMA",
    "STALE_TEMPORARY_S",
    "ResultsStore",
    "RunFileError",
    "read_run",
    "runs_to_frame",
    "write_run",
]

#: Schema tag of a run file; a file with another tag is refused.
SCHEMA = "hyperlr.run/1"

#: Seconds without a refresh after which a run's claim counts as abandoned (its holder
#: refreshes it every third of this); every process sharing a store must use the same value.
CLAIM_LEASE_S = 60.0

#: Age in seconds past which a temporary file is a killed writer's leftover: a write takes
#: milliseconds, so an hour leaves any live writer alone, even on a slow shared disk.
STALE_TEMPORARY_S = 3600.0

_PROVENANCE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "wall_time_s": (int, float),
    "device": str,
    "device_name": str,
    "precision": str,
    "versions": dict,
    "finished_at": str,
}


class RunFileError(ValueError):
    """A run file that cannot be used: corrupt, incomplete, foreign or mismatching its name."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _payload(result: RunResult) -> dict[str, Any]:
    history = {
        name: [_finite_or_none(float(v)) if name != "epoch" else int(v) for v in values]
        for name, values in result.history.items()
    }
    return {
        "schema": SCHEMA,
        "key": result.config.key,
        "config": result.config.to_dict(),
        "history": history,
        "wall_time_s": result.wall_time_s,
        "device": result.device,
        "device_name": result.device_name,
        "precision": result.precision,
        "dataset": {"name": result.dataset, "source": result.dataset_source},
        "versions": dict(result.versions),
        "finished_at": result.finished_at,
        "group_size": result.group_size,
        **({"forecasts": result.forecasts} if result.forecasts is not None else {}),
    }


def _dumps(payload: dict[str, Any]) -> str:
    """Strict JSON, one line per field and sub-field: readable in a diff, curves on one line."""

    def encode(value: Any, depth: int) -> str:
        if isinstance(value, dict) and value and depth < 2:
            pad = " " * depth
            items = (f"{pad} {json.dumps(k)}: {encode(value[k], depth + 1)}" for k in sorted(value))
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        return json.dumps(value, sort_keys=True, allow_nan=False)

    return encode(payload, 0) + "\n"


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; folders cannot be opened on Windows.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_run(result: RunResult, folder: str | os.PathLike[str]) -> Path:
    """Write ``result`` atomically to ``folder/<key>.json`` (replacing any earlier copy).

    Returns:
        The file's path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result.config.key}.json"
    # Serialise first: a result that cannot be written leaves nothing behind.
    text = _dumps(_payload(result))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)
    return path


def _nan_if_none(value: Any) -> float:
    return math.nan if value is None else float(value)


def _parse(path: Path, payload: Any) -> RunResult:
    """Validate a decoded run file and build its :class:`RunResult` (RunFileError otherwise)."""
    if not isinstance(payload, dict):
        raise RunFileError(path, "not a run file (the JSON is not an object)")
    if payload.get("schema") != SCHEMA:
        raise RunFileError(
            path, f"not a run file of schema {SCHEMA!r} (schema: {payload.get('schema')!r})"
        )
    try:
        config = RunConfig.from_dict(payload["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise RunFileError(path, f"invalid config ({error})") from None
    key = config.key
    if payload.get("key") != key or path.stem != key:
        raise RunFileError(
            path,
            f"its config hashes to {key}, but the file is named {path.stem!r} and records key "
            f"{payload.get('key')!r} (edited, renamed, or written by another version)",
        )
    for name, kind in _PROVENANCE_FIELDS.items():
        if not isinstance(payload.get(name), kind):
            raise RunFileError(path, f"field {name!r} is missing or not a {kind}")
    dataset = payload.get("dataset")
    if not isinstance(dataset, dict) or not all(
        isinstance(dataset.get(k), str) for k in ("name", "source")
    ):
        raise RunFileError(path, "field 'dataset' must hold a 'name' and a 'source'")
    if dataset["name"] != config.dataset:
        raise RunFileError(
            path,
            f"its config names dataset {config.dataset!r} but the run used {dataset['name']!r}",
        )
    history = payload.get("history")
    keys = history_keys(config.dataset)
    if not isinstance(history, dict) or set(history) != set(keys):
        raise RunFileError(path, f"history must hold exactly {', '.join(keys)}")
    for name, values in history.items():
        if not isinstance(values, list) or len(values) != config.epochs:
            raise RunFileError(path, f"history {name!r} must list {config.epochs} values")
        if not all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values
        ):
            raise RunFileError(path, f"history {name!r} holds non-numbers")
    if history["epoch"] != list(range(1, config.epochs + 1)):
        raise RunFileError(path, f"history 'epoch' must count 1..{config.epochs}")
    forecasts = payload.get("forecasts")
    if forecasts is not None and not (
        isinstance(forecasts, dict)
        and isinstance(forecasts.get("val_index"), list)
        and isinstance(forecasts.get("prediction"), list)
        and len(forecasts["val_index"]) == len(forecasts["prediction"])
    ):
        raise RunFileError(path, "field 'forecasts' must pair 'val_index' with 'prediction'")
    # Files written before grouped training lack the field: those runs were trained alone.
    group_size = payload.get("group_size", 1)
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise RunFileError(path, f"field 'group_size' must be an integer >= 1, got {group_size!r}")
    return RunResult(
        config=config,
        history={
            name: history[name] if name == "epoch" else [_nan_if_none(v) for v in history[name]]
            for name in keys
        },
        wall_time_s=float(payload["wall_time_s"]),
        device=payload["device"],
        device_name=payload["device_name"],
        precision=payload["precision"],
        dataset=dataset["name"],
        dataset_source=dataset["source"],
        versions=dict(payload["versions"]),
        finished_at=payload["finished_at"],
        forecasts=forecasts,
        group_size=group_size,
    )


def read_run(path: str | os.PathLike[str]) -> RunResult:
    """Read and validate one run file.

    Raises:
        FileNotFoundError: no such file.
        RunFileError: the file is truncated, not JSON, foreign, incomplete, its configuration
            does not hash to its name, or something other than a file holds its name.
    """
    path = Path(path)
    if os.path.lexists(path) and not path.is_file():
        raise RunFileError(path, "is not a regular file (a folder or a broken link?); remove it")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RunFileError(path, "not UTF-8 text") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise RunFileError(path, f"not valid JSON, perhaps truncated ({error})") from None
    return _parse(path, payload)


_PROVENANCE_COLUMNS = (
    "dataset_source",
    "device",
    "device_name",
    "precision",
    "wall_time_s",
    "group_size",
    "finished_at",
)


def _config_columns() -> list[str]:
    return [
        "lr_init" if name == "lr" else name
        for name in RunConfig.__dataclass_fields__
        if name != "device"
    ]


def runs_to_frame(runs: Iterable[RunResult]) -> pd.DataFrame:
    """A tidy table of runs: one row per run and epoch.

    Columns, in order: ``key``; the configuration's fields (its ``lr`` renamed ``lr_init``, the
    optimizer's initial rate, to keep ``lr`` for the per-epoch rate; its scheduler overrides
    as one canonical JSON string ``scheduler_overrides``, convenient for grouping, and so are
    ``model_options`` and ``data_options``); one ``sched_<name>`` column per override setting
    used by any run (missing: ``NaN``); the curves of :data:`hyperlr.lab.train.HISTORY_KEYS` that
    the runs have (``val_accuracy`` for classification, ``val_mae`` for forecasting, ``NaN``
    where a run's task has no such curve); and the provenance (``dataset_source``, ``device``
    -- the device the run used, ``device_name``, ``precision``, ``wall_time_s``,
    ``group_size``, ``finished_at``).
    """
    rows: list[dict[str, Any]] = []
    override_columns: dict[str, None] = {}  # ordered sets
    # The curves every task records come first, so that even an empty frame has them.
    shared = [
        name
        for name in HISTORY_KEYS["classification"]
        if all(name in keys for keys in HISTORY_KEYS.values())
    ]
    history_columns = dict.fromkeys(shared)
    for run in runs:
        config = run.config.to_dict()
        config["lr_init"] = config.pop("lr")
        del config["device"]  # the requested device; the used one is in the provenance
        overrides = config["scheduler_overrides"]
        for name in ("scheduler_overrides", "model_options", "data_options"):
            config[name] = json.dumps(config[name], sort_keys=True)
        for name, value in overrides.items():
            config[f"sched_{name}"] = value
            override_columns[f"sched_{name}"] = None
        constant = {
            "key": run.config.key,
            **config,
            **{
                name: getattr(run, name) for name in _PROVENANCE_COLUMNS if name != "dataset_source"
            },
            "dataset_source": run.dataset_source,
        }
        history_columns.update(dict.fromkeys(run.history))
        for i in range(run.config.epochs):
            rows.append({**constant, **{name: run.history[name][i] for name in run.history}})
    columns = [
        "key",
        *_config_columns(),
        *sorted(override_columns),
        *history_columns,
        *_PROVENANCE_COLUMNS,
    ]
    return pd.DataFrame(rows, columns=columns)


class ResultsStore:
    """A folder of run files, one per configuration (see the module's notes).

    Example:
        >>> # xdoctest: +SKIP
        >>> store = ResultsStore("results/runs")
        >>> run = store.load(config)  # None when the run has not been trained yet
        >>> if run is None:
        ...     store.save(train_run(config))
        >>> frame = store.frame()  # every run, one row per epoch
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    def path_for(self, config: RunConfig) -> Path:
        """Where the run of ``config`` is (or would be) stored."""
        return self.root / f"{config.key}.json"

    def __contains__(self, config: RunConfig) -> bool:
        """Whether a file exists for ``config`` (not whether it is valid: see :meth:`load`)."""
        return self.path_for(config).is_file()

    def load(self, config: RunConfig) -> RunResult | None:
        """The stored run of ``config``, or ``None`` when there is none.

        Raises:
            RunFileError: a file exists but is invalid, or something other than a file (a
                folder) holds its name; it is never used, nor overwritten.
        """
        path = self.path_for(config)
        if not os.path.lexists(path):
            return None
        return read_run(path)

    def _lease(self, config: RunConfig) -> Any:
        path = self.root / f".{config.key}.lock"
        if SoftFileLease is None:
            # An OS lock instead of a lease: released by the kernel when its process dies, so a
            # killed trainer blocks nobody; it does not span machines sharing a network disk.
            return FileLock(path, thread_local=False)
        return SoftFileLease(path, lease_duration=CLAIM_LEASE_S, thread_local=False)

    @contextlib.contextmanager
    def claim(
        self, config: RunConfig, *, timeout: float | None = None
    ) -> Iterator[RunResult | None]:
        """Hold the run of ``config`` for this process while it trains it.

        Waits (up to ``timeout`` seconds, ``None``: as long as it takes) while another process
        holds the claim, then yields the stored run when there is one now (another process
        finished it meanwhile: use it) or ``None`` (train it and :meth:`save` it inside the
        block). The claim is released on leaving the block, also on an error.

        Example:
            >>> # xdoctest: +SKIP
            >>> with store.claim(config) as stored:
            ...     if stored is None:
            ...         store.save(train_run(config))

        Raises:
            ValueError: the store's folder does not exist here (a cluster worker that does not
                see the shared disk at the same path), naming ``results_dir``.
            filelock.Timeout: another process held the claim for ``timeout`` seconds.
            RunFileError: the stored file is invalid (see :meth:`load`).
        """
        if not self.root.is_dir():
            # Never create it: a worker without the shared disk would fill a private folder.
            raise ValueError(
                f"results_dir: {str(self.root)!r} is not a folder on this machine "
                f"({socket.gethostname()}); every worker must see the results folder at the "
                "same absolute path (a shared disk)"
            )
        lease = self._lease(config)
        lease.acquire(timeout=-1 if timeout is None else timeout)
        try:
            yield self.load(config)
        finally:
            lease.release()

    def claim_each(
        self, configs: Iterable[RunConfig]
    ) -> Iterator[tuple[RunConfig, RunResult | None]]:
        """Claim the runs of ``configs`` one by one, preferring those no one else holds.

        Yields each configuration with :meth:`claim`'s value while holding its claim: the
        stored run, or ``None`` when the caller must train and :meth:`save` it before asking
        for the next. Runs another process is training are first put off, then waited for,
        so two sweeps over the same runs share them out instead of training them twice.
        """
        put_off: list[RunConfig] = []
        for config in configs:
            try:
                with self.claim(config, timeout=0) as stored:
                    yield config, stored
            except Timeout:
                put_off.append(config)
        for config in put_off:
            with self.claim(config) as stored:
                yield config, stored

    def remove_stale_temporaries(self, max_age_s: float = STALE_TEMPORARY_S) -> list[Path]:
        """Delete the temporary files of writers killed at least ``max_age_s`` seconds ago.

        Returns:
            The removed files.
        """
        removed = []
        now = time.time()
        for path in self.root.glob(".*.tmp") if self.root.is_dir() else []:
            with contextlib.suppress(FileNotFoundError):  # another process removed it first
                if now - path.stat().st_mtime > max_age_s:
                    path.unlink()
                    removed.append(path)
        return removed

    def save(self, result: RunResult) -> Path:
        """Write ``result`` atomically; returns its path."""
        return write_run(result, self.root)

    def check_writable(self) -> None:
        """Create the folder if needed and check a file can be written there.

        Raises:
            ValueError: naming the folder, when it cannot be created or written.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=".write-check.", suffix=".tmp")
            os.close(fd)
            os.unlink(probe)
        except OSError as error:
            raise ValueError(
                f"results_dir: {str(self.root)!r} must be a folder where files can be written "
                f"({error.strerror or error})"
            ) from None

    def paths(self) -> list[Path]:
        """The folder's ``*.json`` files, sorted (temporary files excluded)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("*.json") if not p.name.startswith("."))

    def scan(self) -> tuple[list[RunResult], list[RunFileError]]:
        """Read every run file of the folder.

        Returns:
            The valid runs (sorted by file name) and one :class:`RunFileError` per invalid
            file, which the caller should report.
        """
        runs: list[RunResult] = []
        problems: list[RunFileError] = []
        for path in self.paths():
            try:
                runs.append(read_run(path))
            except RunFileError as error:
                problems.append(error)
        return runs, problems

    def frame(self, *, strict: bool = True) -> pd.DataFrame:
        """Every valid run of the folder as :func:`runs_to_frame`'s table.

        Args:
            strict: raise on any invalid file (the default); with ``False``, warn about each
                and leave it out.

        Raises:
            RunFileError: when ``strict`` and a file is invalid (the message lists them all).
        """
        runs, problems = self.scan()
        if problems:
            listing = "\n".join(f"  - {problem}" for problem in problems)
            if strict:
                raise RunFileError(
                    self.root,
                    f"{len(problems)} invalid run file(s); fix or remove them:\n{listing}",
                )
            warnings.warn(
                f"{self.root}: left out {len(problems)} invalid run file(s):\n{listing}",
                stacklevel=2,
            )
        return runs_to_frame(runs)
