"""Run a grid of experiments, resumably: ``ganrepro sweep``.

A grid (``grids.py``) is variants x frameworks x seeds. Variants with equal configs share a
*cell* (slug, framework); each cell's seeds are trained as stacks (a seed's result does not
depend on the stack it is in, so resuming with a smaller stack gives the same bytes).

Storage is ``records.save_runs``'s layout under the runs folder, one folder per seed, written
complete into a temporary folder and renamed into place. A sweep therefore resumes after being
killed at any moment (``kill -9`` included): a seed counts as done exactly when its folder
exists under its final name, stale temporary folders are removed on start, and only the seeds
without a folder are trained again. A run that diverges (non-finite values) is stored with
status "diverged" like any other. Workers only train and score; the one driver process writes
every record, so no two processes ever write the same place.

Executors: ``local`` (default) runs tasks in ``jobs`` worker processes (all the cores this
process may use); ``ray`` sends them to a Ray cluster (``pip install 'ganrepro[ray]'``), the
records still written by the driver, so resume works the same. Framework-free until a task runs.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from . import records as rec
from .config import ExperimentConfig
from .grids import Grid
from .report.runs import is_complete

EXECUTORS = ("local", "ray")
MANIFEST = "sweep-{grid}.json"


def default_jobs() -> int:
    """The cores this process may run on (``os.sched_getaffinity`` where available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# ---- the plan ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One stored cell: a config (with the grid's seeds) in one framework, and the variants naming it."""

    config: ExperimentConfig
    framework: str
    variants: tuple[str, ...]

    @property
    def slug(self) -> str:
        return self.config.slug


@dataclass(frozen=True)
class Task:
    """A stack of a cell's seeds to train and score in one call."""

    config: ExperimentConfig  # seeds: the stack
    framework: str

    @property
    def runs(self) -> int:
        return len(self.config.seeds)

    @property
    def cost(self) -> float:
        """A rough relative cost (seconds on one core of the reference machine), for order and ETA."""
        c = self.config
        steps = c.iterations + c.pretrain_steps
        per_seed_step = (25e-6 if self.framework == "torch" else 3e-6) * (3.0 if c.minibatch else 1.0)
        per_step = (1.4e-3 if self.framework == "torch" else 1e-5) * (1.5 if c.minibatch else 1.0)
        fixed = 0.5 if self.framework == "torch" else 3.0  # imports, XLA compilation
        return fixed + steps * (per_step + per_seed_step * self.runs) + 0.05 * self.runs


def plan(grid: Grid) -> list[Cell]:
    """The grid's cells, one per distinct (config, framework), in the grid's variant order."""
    cells: dict[tuple[str, str], Cell] = {}
    for variant in grid.variants:
        config = grid.config(variant)
        for framework in grid.frameworks:
            key = (config.slug, framework)
            if key in cells:
                old = cells[key]
                if old.config != config:
                    raise AssertionError(f"two configs share the slug {config.slug!r}: {old.variants[0]}, {variant}")
                cells[key] = Cell(old.config, framework, old.variants + (variant,))
            else:
                cells[key] = Cell(config, framework, (variant,))
    return list(cells.values())


class StaleRunError(RuntimeError):
    """A stored run's config differs from the config of the cell it is stored under."""


def done_seeds(root, cell: Cell) -> set[int]:
    """The cell's seeds whose run folder is complete; ``StaleRunError`` if one holds another config."""
    expected = rec.jsonable({k: v for k, v in cell.config.to_dict().items() if k != "seeds"})
    done = set()
    for seed in cell.config.seeds:
        folder = rec.run_dir(root, cell.slug, cell.framework, seed)
        if not is_complete(folder):
            continue
        with open(folder / "metrics.json", encoding="utf-8") as f:
            stored = json.load(f)["config"]
        if stored != expected:
            raise StaleRunError(f"{folder} holds a run of another config (stored by another version of ganrepro?); "
                                "move it away or sweep into a fresh --runs folder")
        done.add(seed)
    return done


def tasks_for(cell: Cell, seeds: Iterable[int], max_stack: int) -> list[Task]:
    """The pending ``seeds`` of ``cell`` in stacks of at most ``max_stack``."""
    seeds = sorted(seeds)
    return [Task(cell.config.with_seeds(seeds[i:i + max_stack]), cell.framework)
            for i in range(0, len(seeds), max_stack)]


def remove_stale(root) -> int:
    """Delete the temporary folders an interrupted save can leave (``.seed-<k>.tmp-*``, ``.old-*``)."""
    removed = 0
    root = Path(root)
    if not root.is_dir():
        return 0
    for parent in root.glob("*/*"):
        if not parent.is_dir():
            continue
        for entry in parent.iterdir():
            if entry.name.startswith(".seed-") and (".tmp-" in entry.name or ".old-" in entry.name):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed


def manifest(grid: Grid, cells: list[Cell]) -> dict:
    """What the report needs to map variants onto stored cells."""
    slugs = {}
    for cell in cells:
        for variant in cell.variants:
            slugs[variant] = cell.slug
    return {"grid": grid.name, "description": grid.description, "frameworks": list(grid.frameworks),
            "seeds": list(grid.seeds), "variants": {v: slugs[v] for v in grid.variants}}


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---- running one task (in a worker) -----------------------------------------------------------
def run_task(config: ExperimentConfig, framework: str):
    """Train and score one stack: (TrainingOutput, records). Runs in a worker process."""
    from .training import train

    output = train(config, framework)
    return output, rec.score(output)


# ---- executors --------------------------------------------------------------------------------
class LocalExecutor:
    """Tasks in ``jobs`` fresh worker processes (spawned), or in this process when ``jobs`` is 1."""

    def __init__(self, jobs: int):
        self.jobs = jobs

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, object]]:
        if self.jobs == 1 or len(tasks) <= 1:
            for task in tasks:
                yield task, run_task(task.config, task.framework)
            return
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        pool = ProcessPoolExecutor(max_workers=min(self.jobs, len(tasks)),
                                   mp_context=multiprocessing.get_context("spawn"))
        try:
            pending = {pool.submit(run_task, t.config, t.framework): t for t in tasks}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: tasks.index(pending[f])):
                    yield pending.pop(future), future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Tasks as Ray tasks of one CPU each, on ``address`` or on a local Ray instance of ``jobs`` CPUs."""

    def __init__(self, jobs: int, address: Optional[str] = None):
        self.jobs, self.address = jobs, address

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, object]]:
        import ray

        started = not ray.is_initialized()
        if started:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.jobs, include_dashboard=False, log_to_driver=False)
        try:
            remote = ray.remote(num_cpus=1, max_retries=2)(run_task)
            pending = {remote.remote(t.config, t.framework): t for t in tasks}
            while pending:
                finished, _ = ray.wait(list(pending), num_returns=1)
                for ref in finished:
                    yield pending.pop(ref), ray.get(ref)
        finally:
            if started:
                ray.shutdown()


def check_executor(name: str) -> None:
    """ValueError for an unknown executor; an install hint when Ray is asked for and missing."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; allowed: {', '.join(EXECUTORS)}")
    if name == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ValueError("--executor ray needs the package 'ray', which is not installed; "
                             "install it with: pip install 'ganrepro[ray]'")


def make_executor(name: str, jobs: int, address: Optional[str] = None):
    check_executor(name)
    return RayExecutor(jobs, address) if name == "ray" else LocalExecutor(jobs)


# ---- progress ---------------------------------------------------------------------------------
class SweepProgress:
    """``runs done/total, to go, elapsed, ETA`` on stderr: in place on a terminal, else a line per task."""

    def __init__(self, label: str, total_runs: int, total_cost: float, stream=None):
        self.label, self.total_runs, self.total_cost = label, total_runs, max(total_cost, 1e-9)
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.perf_counter()
        self.runs = 0
        self.cost = 0.0

    @staticmethod
    def clock(seconds: float) -> str:
        seconds = int(round(seconds))
        return f"{seconds // 60}:{seconds % 60:02d}"

    def line(self) -> str:
        elapsed = time.perf_counter() - self.t0
        width = 24
        filled = int(width * self.runs / self.total_runs) if self.total_runs else width
        bar = "#" * filled + "." * (width - filled)
        eta = "--:--"
        if self.cost > 0 and self.runs < self.total_runs:
            eta = self.clock(elapsed * (self.total_cost - self.cost) / self.cost)
        elif self.runs >= self.total_runs:
            eta = "0:00"
        return (f"{self.label} [{bar}] {self.runs}/{self.total_runs} runs, {self.total_runs - self.runs} to go, "
                f"{self.clock(elapsed)} elapsed, ETA {eta}")

    def advance(self, task: Task) -> None:
        self.runs += task.runs
        self.cost += task.cost
        self.emit(self.line())

    def emit(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ---- the sweep --------------------------------------------------------------------------------
@dataclass
class SweepSummary:
    grid: str
    cells: int
    runs_total: int
    runs_skipped: int  # already stored when the sweep started
    runs_done: int  # trained by this sweep
    statuses: dict
    seconds: float
    stale_removed: int


def sweep(grid: Grid, root, *, executor=None, max_stack: int = 32,
          progress: Optional[Callable[[str, int, float], SweepProgress]] = None) -> SweepSummary:
    """Train every seed of ``grid`` not yet stored under ``root`` and store it; return a summary.

    ``executor``: a ``LocalExecutor``/``RayExecutor`` (default: local on all cores).
    ``progress(label, total_runs, total_cost)`` makes a :class:`SweepProgress` (None: silent).
    """
    t0 = time.perf_counter()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    executor = executor or LocalExecutor(default_jobs())
    stale = remove_stale(root)
    cells = plan(grid)
    write_atomic(root / MANIFEST.format(grid=grid.name), rec.dumps(manifest(grid, cells)) + "\n")
    tasks, skipped = [], 0
    for cell in cells:
        done = done_seeds(root, cell)
        skipped += len(done)
        tasks.extend(tasks_for(cell, [s for s in cell.config.seeds if s not in done], max_stack))
    tasks.sort(key=lambda t: -t.cost)  # longest first: the workers finish together
    total = sum(t.runs for t in tasks)
    bar = progress(f"sweep {grid.name}", total, sum(t.cost for t in tasks)) if progress and tasks else None
    statuses: dict[str, int] = {}
    try:
        for task, (output, records) in executor.run(tasks):
            rec.save_runs(output, records, root)
            for r in records:
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            if bar:
                bar.advance(task)
    finally:
        if bar:
            bar.close()
    return SweepSummary(grid.name, len(cells), total + skipped, skipped, total, statuses,
                        time.perf_counter() - t0, stale)
