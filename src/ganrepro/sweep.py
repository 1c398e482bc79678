"""Run a grid of experiments, resumably: ``ganrepro sweep``.

A grid (``grids.py``) is variants x frameworks x seeds. Variants with equal configs share a
*cell* (slug, framework; ``ganrepro.cells.plan``, the mapping the report reads too); each
cell's seeds are trained as stacks (on the CPU a seed's result does not depend on the stack it is
in, so resuming with a smaller stack gives the same bytes; on CUDA it does, in the last bits, so
stacks there are fixed chunks of the cell's seeds: :func:`tasks_for`). Progress: a tqdm bar on stderr
(``ganrepro.progress``); the command line (``ganrepro.cli.sweep``) prints the summary line.
This module imports nothing of ``ganrepro.report``.

Storage is the store of ``ganrepro.store`` (its docstring states the contract: layout, content
hashes, lock, quarantine), written by ``records.save_runs``: one folder per seed, written
complete into a temporary folder and renamed into place. A sweep:

1. takes the runs folder's lock (``ganrepro.lock``): one sweep per runs folder; a second
   driver exits with status 2 naming the holder's pid. The kernel drops the lock whenever the
   driver exits, ``kill -9`` included, so it is never stale;
2. removes the temporary leftovers of killed writers (safe: the lock says no writer is alive);
3. verifies every stored run of the grid (``store.verify_run``); a run that is missing files,
   unreadable, inconsistent, a copy of another seed's, or of another config (including runs of
   an older ganrepro, which carry no hashes) is moved into ``<runs>/quarantine/``, one line
   printed per run naming it and why, and trained again; unknown entries (``seed-1.bak``) are
   named and left alone;
4. trains only the seeds without a trusted run, and stores each.

It therefore resumes after being killed at any moment (``kill -9`` included): a seed counts as
done exactly when its folder exists under its final name and verifies. A run that diverges
(non-finite values) is stored with status "diverged" like any other. Workers only train and
score; the one driver process writes every record, so no two processes ever write the same
place. Workers die with their driver (:func:`die_with_parent`): none survives a ``kill -9``
of the driver, and multiprocessing's resource tracker then exits too.

Faults become one-line errors (``ganrepro.errors``): a runs folder that cannot be used or is
locked -> ``UsageError`` (exit 2); a full disk, a read-only or vanished folder while writing,
a worker killed -> ``EnvironmentFault`` (exit 1). Nothing half-written is left under a final
name; the next sweep resumes.

Executors: ``local`` (default) runs tasks in ``jobs`` worker processes (all the cores this
process may use); ``ray`` sends them to a Ray cluster (``pip install 'ganrepro[ray]'``), the
records still written by the driver, so resume works the same. Framework-free until a task runs.
"""
from __future__ import annotations

import errno
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import records as rec
from . import store
from .cells import Cell, manifest, plan
from .devices import DEFAULT_DEVICE
from .errors import EnvironmentFault, UsageError
from .files import TMP_MARK, write_text_atomic
from .grids import Grid
from .image.config import ImageConfig
from .lock import runs_lock
from .progress import advance, runs_bar
from .store import remove_stale  # noqa: F401 (part of this module's interface)
from .tracks import AnyConfig

EXECUTORS = ("local", "ray")
MANIFEST = "sweep-{grid}.json"


def default_jobs() -> int:
    """The cores this process may run on (``os.sched_getaffinity`` where available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# ---- tasks ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """A stack of a cell's seeds to train and score in one call."""

    config: AnyConfig  # seeds: the stack
    framework: str
    device: str = DEFAULT_DEVICE
    store: tuple[int, ...] | None = None  # the seeds to store (None: every seed of the stack)

    @property
    def runs(self) -> int:
        """Runs this task stores."""
        return len(self.config.seeds) if self.store is None else len(self.store)

    @property
    def stack(self) -> int:
        """Seeds this task trains."""
        return len(self.config.seeds)

    @property
    def cost(self) -> float:
        """A rough relative cost (seconds on one core of the reference machine), for order and ETA."""
        c = self.config
        if isinstance(c, ImageConfig):
            per_image = (2e-6 if c.model == "linear" else 2e-5) * (c.pixels / 64)
            return 3.0 + c.iterations * (2e-3 + per_image * c.batch_size * self.stack) + 0.5 * self.stack
        steps = c.iterations + c.pretrain_steps
        per_seed_step = (25e-6 if self.framework == "torch" else 3e-6) * (3.0 if c.minibatch else 1.0)
        per_step = (1.4e-3 if self.framework == "torch" else 1e-5) * (1.5 if c.minibatch else 1.0)
        fixed = 0.5 if self.framework == "torch" else 3.0  # imports, XLA compilation
        return fixed + steps * (per_step + per_seed_step * self.stack) + 0.05 * self.stack


def tasks_for(cell: Cell, seeds: Iterable[int], max_stack: int, device: str = DEFAULT_DEVICE) -> list[Task]:
    """The pending ``seeds`` of ``cell`` in stacks of at most ``max_stack``, to train on ``device``.

    On the CPU a seed's result does not depend on its stack (bitwise), so the pending seeds are
    packed into full stacks. On CUDA it does, in the last bits (cuBLAS picks a matrix product's
    kernel by the stack's size: docs/agreement.md#cpu-vs-cuda), so the stacks are the cell's fixed
    chunks of ``max_stack`` seeds in ascending order: a chunk with any pending seed is trained whole
    and only its pending seeds are stored. A resumed CUDA sweep therefore stores the bytes an
    uninterrupted one does (the same stack twice gives the same bytes), given the same ``max_stack``.
    """
    seeds = sorted(seeds)
    if device == "cpu":
        return [Task(cell.config.with_seeds(seeds[i:i + max_stack]), cell.framework, device)
                for i in range(0, len(seeds), max_stack)]
    pending, every = set(seeds), sorted(cell.config.seeds)
    tasks = []
    for i in range(0, len(every), max_stack):
        chunk = every[i:i + max_stack]
        store = tuple(seed for seed in chunk if seed in pending)
        if store:
            tasks.append(Task(cell.config.with_seeds(chunk), cell.framework, device,
                              None if len(store) == len(chunk) else store))
    return tasks


# ---- running one task (in a worker) -----------------------------------------------------------
def run_task(config: AnyConfig, framework: str, device: str = DEFAULT_DEVICE):
    """Train and score one stack on ``device``: (TrainingOutput, records). Runs in a worker process."""
    if isinstance(config, ImageConfig):
        from .image.training import train as train_image

        image_output = train_image(config, framework, device=device)
        return image_output, rec.score(image_output)
    from .training import train

    output = train(config, framework, device=device)
    return output, rec.score(output)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: make this worker die as soon as its driver (``parent_pid``) does.

    Two mechanisms, so that no worker outlives a driver killed with ``kill -9`` (where nothing
    of the driver runs to stop them): on Linux the kernel sends this process SIGKILL when its
    parent dies (``prctl(PR_SET_PDEATHSIG)``; the pool spawns workers from the driver's main
    thread, the thread whose exit the kernel watches); on every platform a daemon thread polls
    ``os.getppid()`` and exits the process when it changes (the worker was re-parented). A
    driver that died before the initializer ran is caught by the first check. When the workers
    are gone, multiprocessing's resource tracker sees its pipe close and exits too.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl: the watchdog remains
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="ganrepro-die-with-parent", daemon=True).start()


# ---- executors --------------------------------------------------------------------------------
class LocalExecutor:
    """Tasks in ``jobs`` fresh worker processes (spawned), or in this process when ``jobs`` is 1.

    The workers die with this process (:func:`die_with_parent`). When the caller stops early (an
    error while storing, KeyboardInterrupt), the workers are killed at once rather than left to
    finish stacks nobody will store.
    """

    def __init__(self, jobs: int):
        self.jobs = jobs

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, object]]:
        if self.jobs == 1 or len(tasks) <= 1:
            for task in tasks:
                yield task, run_task(task.config, task.framework, task.device)
            return
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        pool = ProcessPoolExecutor(max_workers=min(self.jobs, len(tasks)),
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=die_with_parent, initargs=(os.getpid(),))
        finished_all = False
        try:
            pending = {pool.submit(run_task, t.config, t.framework, t.device): t for t in tasks}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: tasks.index(pending[f])):
                    task = pending.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        raise EnvironmentFault("a worker process died (killed, or out of memory?); run the sweep "
                                               "again (it resumes), with fewer --jobs if memory is short") from None
                    yield task, result
            finished_all = True
        finally:
            if not finished_all:
                for process in list(getattr(pool, "_processes", {}).values()):  # no public way to stop them
                    try:
                        process.kill()
                    except (OSError, ValueError, AttributeError):
                        pass
            pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Tasks as Ray tasks of one CPU each, on ``address`` or on a local Ray instance of ``jobs`` CPUs."""

    def __init__(self, jobs: int, address: str | None = None):
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
            pending = {remote.remote(t.config, t.framework, t.device): t for t in tasks}
            while pending:
                finished, _ = ray.wait(list(pending), num_returns=1)
                for ref in finished:
                    yield pending.pop(ref), ray.get(ref)
        finally:
            if started:
                ray.shutdown()


def check_executor(name: str) -> None:
    """``UsageError`` (a ValueError) for an unknown executor; an install hint when Ray is asked for and missing."""
    if name not in EXECUTORS:
        raise UsageError(f"unknown executor {name!r}; allowed: {', '.join(EXECUTORS)}")
    if name == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise UsageError("--executor ray needs the package 'ray', which is not installed; "
                             "install it with: pip install 'ganrepro[ray]'")


def make_executor(name: str, jobs: int, address: str | None = None):
    check_executor(name)
    return RayExecutor(jobs, address) if name == "ray" else LocalExecutor(jobs)


# ---- the sweep --------------------------------------------------------------------------------
@dataclass
class SweepSummary:
    grid: str
    cells: int
    runs_total: int
    runs_skipped: int  # already stored (and verified) when the sweep started
    runs_done: int  # trained by this sweep
    statuses: dict
    seconds: float
    stale_removed: int
    quarantined: list = field(default_factory=list)  # (from, to, reason) of each run moved aside
    unknown: list = field(default_factory=list)  # entries of the grid's folders that are not runs


def _say(text: str) -> None:
    print(f"ganrepro sweep: {text}", file=sys.stderr, flush=True)


@contextmanager
def store_faults(root: Path, doing: str) -> Iterator[None]:
    """Turn an ``OSError`` of the store's file system into an ``EnvironmentFault`` with one line of advice."""
    try:
        yield
    except OSError as exc:
        what = exc.strerror or str(exc)
        if exc.filename is not None:
            what += f" ({str(exc.filename)!r})"
        if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
            advice = "free some space, then run the sweep again (it resumes)"
        elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            advice = "make the runs folder writable, then run the sweep again (it resumes)"
        else:
            advice = "run the sweep again when the runs folder is usable (it resumes)"
        raise EnvironmentFault(f"could not {doing} under the runs folder {str(root)!r}: {what}; {advice}; "
                               "nothing half-written was left") from None


def probe_writable(folder: Path) -> None:
    """Create and remove a temporary folder in ``folder`` (creating it): fail before training, not after."""
    folder.mkdir(parents=True, exist_ok=True)
    os.rmdir(tempfile.mkdtemp(prefix=f".probe{TMP_MARK}", dir=folder))


def prepare_cells(cells: list[Cell]) -> None:
    """Before any worker starts: load each image data set the cells use and train (or read) its
    classifier once, here, so that the workers only read the cache (``image.scoring.prepare``)."""
    for dataset in sorted({c.config.dataset for c in cells if isinstance(c.config, ImageConfig)}):
        from .image.scoring import prepare

        prepare(dataset)


def sweep(grid: Grid, root, *, executor=None, max_stack: int | None = None, progress: bool = False,
          say: Callable[[str], None] | None = None, device: str = DEFAULT_DEVICE) -> SweepSummary:
    """Train every seed of ``grid`` without a trusted run under ``root`` on ``device`` and store it; return a summary.

    A runs folder holds one device's runs: a stored run of another device stops the sweep with
    ``store.DeviceMismatch`` (exit 2) before anything is trained or moved.

    ``executor``: a ``LocalExecutor``/``RayExecutor`` (default: local on all cores).
    ``max_stack``: seeds per stack at most (default: ``grid.max_stack``); a seed's result does not
    depend on it.
    ``progress``: a bar of the runs done on stderr (``ganrepro.progress.runs_bar``, tqdm); False: silent.
    ``say(line)`` is told each run moved to quarantine and each unknown entry (default: a line
    ``ganrepro sweep: ...`` on stderr). Steps and faults: see the module docstring.
    """
    t0 = time.perf_counter()
    say = say or _say
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--runs {str(root)!r} cannot be used: {exc.strerror or exc}; give a writable folder") \
            from None
    executor = executor or LocalExecutor(default_jobs())
    max_stack = max_stack or grid.max_stack
    cells = plan(grid)
    prepare_cells(cells)
    with runs_lock(root):
        with store_faults(root, "prepare the store"):
            stale = store.remove_stale(root)
            write_text_atomic(root / MANIFEST.format(grid=grid.name), rec.dumps(manifest(grid, cells)) + "\n")
        tasks, skipped, quarantined, unknown = [], 0, [], []
        for cell in cells:
            with store_faults(root, "check the stored runs"):
                scan = store.scan_cell(root, cell.slug, cell.framework, cell.config.seeds,
                                       store.cell_config(cell.config), device)
                for path in store.unknown_in_slug(root, cell.slug) + scan.unknown:
                    if path not in unknown:
                        unknown.append(path)
                        say(f"ignoring {str(path)!r}: not a run folder (runs are named seed-<k>); "
                            "move it out of the runs folder")
                for damaged in scan.damaged:
                    dest = store.quarantine(root, damaged.folder, damaged.reason)
                    quarantined.append((damaged.folder, dest, damaged.reason))
                    say(f"moved {str(damaged.folder)!r} to {str(dest)!r}: {damaged.reason}; it is trained again")
            skipped += len(scan.verified)
            pending = [s for s in cell.config.seeds if s not in scan.verified]
            if pending:
                with store_faults(root, "write"):
                    probe_writable(scan.folder)
            tasks.extend(tasks_for(cell, pending, max_stack, device))
        tasks.sort(key=lambda t: -t.cost)  # longest first: the workers finish together
        total = sum(t.runs for t in tasks)
        bar = runs_bar(f"sweep {grid.name}", total) if progress and tasks else None
        statuses: dict[str, int] = {}
        results = None
        try:
            results = executor.run(tasks)
            for task, (output, records) in results:
                with store_faults(root, "store a run"):
                    rec.save_runs(output, records, root, seeds=task.store)
                for r in records:
                    if task.store is None or r["seed"] in task.store:  # what was stored
                        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
                if bar:
                    advance(bar, task.runs)
        finally:
            if results is not None and hasattr(results, "close"):
                results.close()  # stops the workers at once if the loop ended early
            if bar:
                bar.close()
    return SweepSummary(grid.name, len(cells), total + skipped, skipped, total, statuses,
                        time.perf_counter() - t0, stale, quarantined, unknown)
