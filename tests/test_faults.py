"""Fault injection on the runs folder (the store) and the sweep's driver.

* every kind of damage to a stored run -- truncated, missing, garbage or edited files, a copied
  seed folder, a run of another config, a run of an older version -- is refused by ``report``
  (exit 2, naming the file and the fix) and moved aside and retrained by ``sweep``; unknown
  entries (``seed-1.bak``) are named and never parsed as seeds;
* ``kill -9`` of the driver at many points (before and after each rename, in the middle of
  writing a file, in the middle of a quarantine) never leaves a damaged run under a final name,
  and the next sweep completes the store with the bytes of an uninterrupted sweep;
* two drivers on one runs folder: the second exits 2 naming the first's pid; ``kill -9`` of a
  driver with ``--jobs 2`` leaves no worker nor resource tracker alive, and frees the lock;
* read-only and full file systems (a tiny tmpfs, a read-only bind mount, an injected writer)
  and unusable ``--runs`` paths end in one line, exit 1 or 2, and nothing half-written.

Runs are tiny (40 steps, PyTorch only) and trained one seed per stack (a seed's bytes are then
the same in every process); the module takes well under 3 minutes on one core. Every test that
sweeps is marked slow (``-m "not slow"`` keeps the lock's unit test only).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganrepro import files, store
from ganrepro import records as rec
from ganrepro import sweep as sw
from ganrepro.cli import main
from ganrepro.grids import GRIDS, Grid
from ganrepro.impls import available
from ganrepro.lock import LOCK_NAME, RunsFolderLocked, runs_lock
from ganrepro.report.build import IncompleteRunsError, load_grid

pytestmark = pytest.mark.skipif(not available("torch"), reason="the fault tests train tiny PyTorch runs")

SPEC = dict(variants=("blog2017/vanilla", "blog2017/minibatch"), seeds=(0, 1, 2), frameworks=("torch",),
            overrides=(("num_steps", 40), ("pretrain_steps", 10), ("curve_interval", 5)))
GRID = Grid(name="faults", description="fault-injection grid", **SPEC)
SLUG = GRID.config("blog2017/vanilla").slug
SWEEP = ["sweep", "--grid", "faults", "--jobs", "1", "--max-stack", "1", "--quiet", "--runs"]


@pytest.fixture(autouse=True)
def faults_grid(monkeypatch):
    """The grid, known to the command line by name for the test's duration."""
    monkeypatch.setitem(GRIDS, "faults", GRID)


def quiet(text: str) -> None:
    pass


def sweep(root, **kwargs):
    kwargs.setdefault("say", quiet)
    return sw.sweep(GRID, root, executor=sw.LocalExecutor(1), max_stack=1, **kwargs)


def stored_bytes(root: Path) -> dict:
    """{relative path: bytes} of the deterministic files of every run under a final name."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).glob("*/*/seed-*/*"))
            if p.name in rec.SEALED_FILES}


def leftovers(root: Path) -> list:
    """Temporary files or folders anywhere under ``root``."""
    return [p for p in Path(root).rglob("*") if files.is_temporary(p)]


def assert_store_sound(root: Path) -> None:
    """Every run under a final name verifies; no temporary leftover remains anywhere."""
    for cell in sw.plan(GRID):
        scan = store.scan_cell(root, cell.slug, cell.framework, None, store.cell_config(cell.config))
        assert not scan.damaged, [str(d) for d in scan.damaged]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The grid swept once, in this process, one seed per stack."""
    root = tmp_path_factory.mktemp("reference")
    summary = sweep(root)
    assert summary.runs_done == 6 and not summary.quarantined
    return root


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ganrepro: error: ") and "Traceback" not in err, err
    return err


# ---- damaged runs ---------------------------------------------------------------------------------
def _edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _truncate(name):
    def damage(folder):
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[:len(data) // 2])
    return damage


def _garbage(name):
    def damage(folder):
        (folder / name).write_bytes(os.urandom(300))
    return damage


def _copy_of_seed_0(folder):
    shutil.rmtree(folder)
    shutil.copytree(folder.parent / "seed-0", folder)


def _foreign_config(folder):
    config = GRID.config("blog2017/vanilla").with_seeds((1,))
    config = type(config).from_dict({**config.to_dict(), "curve_interval": 7})  # same slug, another config
    shutil.rmtree(folder)
    rec.save_runs(*sw.run_task(config, "torch"), folder.parent.parent.parent)


def _not_a_folder(folder):
    shutil.rmtree(folder)
    folder.write_text("not a run\n")


DAMAGE = {
    # name: (damage(seed-1 folder), what the message must say)
    "record-truncated": (_truncate("record.json"), "record.json is not valid JSON"),
    "record-missing": (lambda f: (f / "record.json").unlink(), "record.json is missing"),
    "record-older-version": (lambda f: _edit_json(f / "record.json", lambda d: d.pop("files")),
                             "no content hashes (stored by an older ganrepro"),
    "record-edited": (lambda f: _edit_json(f / "record.json", lambda d: d["metrics"].update(ks=0.001)),
                      "record.json disagrees with metrics.json"),
    "metrics-garbage": (_garbage("metrics.json"), "metrics.json does not match its sha256"),
    "metrics-truncated": (_truncate("metrics.json"), "metrics.json does not match its sha256"),
    "metrics-edited": (lambda f: _edit_json(f / "metrics.json", lambda d: d["metrics"].update(ks=0.001)),
                       "metrics.json does not match its sha256"),
    "samples-garbage": (_garbage("samples.npz"), "samples.npz does not match its sha256"),
    "samples-truncated": (_truncate("samples.npz"), "samples.npz does not match its sha256"),
    "samples-missing": (lambda f: (f / "samples.npz").unlink(), "samples.npz is missing"),
    "curves-empty": (lambda f: (f / "curves.csv").write_bytes(b""), "curves.csv does not match its sha256"),
    "curves-truncated": (_truncate("curves.csv"), "curves.csv does not match its sha256"),
    "seed-copy": (_copy_of_seed_0, f"holds the run {SLUG}/torch/seed-0, not this folder's"),
    "foreign-config": (_foreign_config, "another config (curve_interval 7 where the grid has 5)"),
    "not-a-folder": (_not_a_folder, "it is not a folder"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_run_is_refused_by_report_and_retrained_by_sweep(kind, reference, tmp_path, capsys):
    damage, says = DAMAGE[kind]
    root = tmp_path / "runs"
    shutil.copytree(reference, root)
    folder = rec.run_dir(root, SLUG, "torch", 1)
    damage(folder)

    # report: refused with exit 2, one line naming the run, the reason and the repair
    with pytest.raises(IncompleteRunsError) as caught:
        load_grid(GRID, root)
    message = str(caught.value)
    assert str(folder) in message and says in message and "ganrepro sweep --grid faults" in message, message
    assert main(["report", "--grid", "faults", "--runs", str(root), "--out", str(tmp_path / "report"), "--quiet"]) == 2
    err = one_line_error(capsys)
    assert says in err and str(folder) in err
    assert not (tmp_path / "report").exists()

    # sweep: moved aside (named, with the reason), trained again; the store is whole again
    assert main([*SWEEP, str(root)]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and err.count("\n") == 1 and "ganrepro sweep: moved" in err, err
    assert str(folder) in err and says in err and "it is trained again" in err
    assert "1 run(s) trained" in out and "5 already stored, 1 moved to quarantine" in out, out
    (moved,) = [p for p in (root / store.QUARANTINE).iterdir() if not p.name.endswith(".txt")]
    note = moved / "QUARANTINE.txt" if moved.is_dir() else moved.with_name(moved.name + ".txt")  # a file moved
    assert moved.name.endswith(f"-{SLUG}-torch-seed-1") and says in note.read_text()
    assert stored_bytes(root) == stored_bytes(reference)
    assert not leftovers(root)
    assert sum(len(runs) for runs in load_grid(GRID, root).cells.values()) == 6  # now trusted
    # the quarantine is never read as runs: a second sweep finds everything stored
    assert sweep(root).runs_done == 0


@pytest.mark.slow
def test_unknown_entries_are_named_and_never_parsed_as_seeds(reference, tmp_path, capsys):
    root = tmp_path / "runs"
    shutil.copytree(reference, root)
    cell = root / SLUG / "torch"
    shutil.copytree(cell / "seed-1", cell / "seed-1.bak")
    shutil.copytree(cell / "seed-2", cell / "seed-02")
    (cell / "notes.txt").write_text("mine\n")
    (root / SLUG / "old-torch").mkdir()
    unknown = {str(cell / "seed-1.bak"), str(cell / "seed-02"), str(cell / "notes.txt"), str(root / SLUG / "old-torch")}

    said = []
    summary = sweep(root, say=said.append)
    assert summary.runs_done == 0 and not summary.quarantined
    assert {str(p) for p in summary.unknown} == unknown and len(said) == 4
    assert all("not a run folder" in line for line in said)
    told = []
    loaded = load_grid(GRID, root, say=told.append)
    assert sum(len(runs) for runs in loaded.cells.values()) == 6 and len(told) == 4
    assert sorted(r.seed for r in loaded.cells[("blog2017/vanilla", "torch")]) == [0, 1, 2]
    assert (cell / "seed-1.bak").is_dir()  # left alone
    assert main(["report", "--grid", "faults", "--runs", str(root), "--out", str(tmp_path / "r"), "--no-html"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("ignoring") == 4


# ---- kill -9 of the driver at many points ----------------------------------------------------------
DRIVER = f"""
import os, signal, sys, tempfile
from pathlib import Path
from ganrepro import files, grids, records, store
grids.GRIDS["faults"] = grids.Grid(name="faults", description="fault-injection grid", **{SPEC!r})
point, _, n = os.environ.get("GANREPRO_TEST_KILL", "").partition(":")
calls = {{"n": 0}}

def die_at_call():
    calls["n"] += 1
    if calls["n"] == int(n):
        os.kill(os.getpid(), signal.SIGKILL)

if point == "replace":  # just before the n-th rename of files.py (a file or a run folder into place)
    class OS:
        def __getattr__(self, name):
            return getattr(os, name)
        def replace(self, a, b):
            die_at_call()
            return os.replace(a, b)
    files.os = OS()
elif point == "midwrite":  # half-way through writing the n-th file of the runs
    real = records.write_bytes_atomic
    def half(path, data):
        if calls["n"] + 1 == int(n):
            fd, tmp = tempfile.mkstemp(prefix="." + Path(path).name + files.TMP_MARK, dir=Path(path).parent)
            os.write(fd, data[:len(data) // 2])
        die_at_call()
        real(path, data)
    records.write_bytes_atomic = half
elif point == "quarantine":  # a damaged run renamed into quarantine/, its note not yet written
    def note(path, text):
        os.kill(os.getpid(), signal.SIGKILL)
    store.write_text_atomic = note
from ganrepro.cli import main
sys.exit(main(sys.argv[1:]))
"""


def driver(root: Path, *extra: str, kill: str = "", steps: int = 0) -> subprocess.Popen:
    """A real ``ganrepro sweep`` process on ``root`` (grid ``faults``), optionally killing itself at ``kill``."""
    env = {**os.environ, "GANREPRO_TEST_KILL": kill}
    argv = [*SWEEP, str(root), *list(extra)]
    script = DRIVER if not steps else DRIVER.replace("(('num_steps', 40)", f"(('num_steps', {steps})")
    return subprocess.Popen([sys.executable, "-c", script, *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def reference_subprocess(tmp_path_factory) -> Path:
    """The grid swept by an uninterrupted ``ganrepro sweep`` process (the bytes a resumed one must give)."""
    root = tmp_path_factory.mktemp("reference-subprocess")
    rc, out, err = finish(driver(root))
    assert rc == 0 and "6 run(s) trained" in out, err
    return root


@pytest.mark.slow
def test_kill_9_at_many_points_never_leaves_a_damaged_run_and_resume_completes(reference_subprocess, tmp_path):
    """Renames in a sweep's files.py, in order: 1 the manifest; then per run 4 files and the folder
    (2-6 the first run, 7-11 the second, ...). Files of a run, in order: record.json, metrics.json,
    samples.npz, curves.csv."""
    root = tmp_path / "runs"
    points = ["replace:1", "replace:3", "replace:6", "midwrite:3", "replace:10", "midwrite:6", "replace:17"]
    for point in points:
        rc, _, err = finish(driver(root, kill=point))
        assert rc == -signal.SIGKILL, (point, rc, err)
        assert_store_sound(root)
    assert leftovers(root)  # the kills left temporaries behind (removed by the next sweep)
    # a damaged run, then a kill in the middle of moving it to quarantine
    folder = rec.run_dir(root, SLUG, "torch", 0)
    assert folder.is_dir()
    (folder / "curves.csv").write_bytes(b"")
    rc, _, err = finish(driver(root, kill="quarantine"))
    assert rc == -signal.SIGKILL and not folder.exists()
    assert_store_sound(root)
    rc, _, err = finish(driver(root))
    assert rc == 0 and "Traceback" not in err, err
    assert stored_bytes(root) == stored_bytes(reference_subprocess)
    assert not leftovers(root)
    assert_store_sound(root)


# ---- two drivers; kill -9 of a driver with workers ---------------------------------------------------
def _stat(pid: int):
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, ppid = text[text.rindex(")") + 2:].split()[:2]
    return state, int(ppid)


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = stat[1]
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def training_workers(pid: int) -> set[int]:
    """The pool workers below ``pid`` that are training (PyTorch loaded: past their initializer)."""
    found = set()
    for p in descendants(pid):
        if "spawn_main" in cmdline(p):
            try:
                if "libtorch" in Path(f"/proc/{p}/maps").read_text():
                    found.add(p)
            except OSError:
                pass
    return found


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_second_driver_is_refused_and_no_worker_survives_kill_9_of_the_driver(tmp_path, capsys):
    root = tmp_path / "runs"
    first = driver(root, "--jobs", "2", steps=20000)  # long tasks: the workers are busy when it dies
    try:
        lock_file = root / LOCK_NAME
        wait_for(lambda: lock_file.is_file() and lock_file.read_text().strip() == str(first.pid), 60,
                 "the first driver to take the lock")
        wait_for(lambda: len(training_workers(first.pid)) == 2, 90, "two workers training")
        # a second driver, here: refused, naming the holder, nothing written
        before = sorted(p.name for p in root.iterdir())
        assert main([*SWEEP, str(root)]) == 2
        err = one_line_error(capsys)
        assert f"another sweep (pid {first.pid}) is using the runs folder" in err
        assert sorted(p.name for p in root.iterdir()) == before
        with pytest.raises(RunsFolderLocked):
            sweep(root)

        family = descendants(first.pid)
        workers = {p for p in family if "spawn_main" in cmdline(p)}
        tracker = {p for p in family if "resource_tracker" in cmdline(p)}
        assert len(workers) == 2 and len(tracker) == 1, {p: cmdline(p) for p in family}
        first.send_signal(signal.SIGKILL)
        first.wait()
        wait_for(lambda: not any(alive(p) for p in family), 20, "the workers and the resource tracker to die")
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    # the lock died with its holder (its file still names it): the next sweep takes it and resumes
    assert lock_file.read_text().strip() == str(first.pid)
    summary = sweep(root)
    assert summary.runs_done == 6 and not leftovers(root)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_worker_is_one_line_and_exit_1(tmp_path):
    root = tmp_path / "runs"
    proc = driver(root, "--jobs", "2", steps=20000)
    try:
        wait_for(lambda: len(training_workers(proc.pid)) == 2, 90, "two workers training")
        family = descendants(proc.pid)
        victim = min(p for p in family if "spawn_main" in cmdline(p))
        os.kill(victim, signal.SIGKILL)
        rc, _, err = finish(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 1 and "Traceback" not in err, err
    assert lines[-1].startswith("ganrepro: error: a worker process died"), err
    wait_for(lambda: not any(alive(p) for p in family), 20, "the other worker to stop")
    assert not leftovers(root)


def test_the_lock_is_per_runs_folder_and_released_on_error(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    (tmp_path / "other").mkdir()
    with runs_lock(root):
        with pytest.raises(RunsFolderLocked, match=rf"pid {os.getpid()}\)"):
            sweep(root)
        with runs_lock(tmp_path / "other"):  # another runs folder is not blocked
            pass
    with pytest.raises(KeyError), runs_lock(root):
        raise KeyError("an error while holding the lock")
    with runs_lock(root):  # released by the error above
        assert (root / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert (root / LOCK_NAME).read_text() == ""


# ---- full and read-only file systems, unusable paths ------------------------------------------------
class FullDisk:
    """``files.os`` for files.py with writes failing ENOSPC after ``budget`` bytes (an injected writer)."""

    def __init__(self, budget: int):
        self.budget = budget

    def __getattr__(self, name):
        return getattr(os, name)

    def fdopen(self, fd, *args, **kwargs):
        f = os.fdopen(fd, *args, **kwargs)
        disk = self

        class Writer:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def write(self, data):
                if len(data) > disk.budget:
                    f.write(data[:disk.budget])
                    disk.budget = 0
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                disk.budget -= len(data)
                return f.write(data)

        return Writer()


@pytest.mark.slow
def test_a_full_disk_is_one_line_exit_1_and_leaves_nothing_half_written(reference, tmp_path, monkeypatch, capsys):
    root = tmp_path / "runs"
    monkeypatch.setattr(files, "os", FullDisk(budget=200_000))  # the manifest and about one run fit
    assert main([*SWEEP, str(root)]) == 1
    err = one_line_error(capsys)
    assert "No space left on device" in err and "free some space" in err and "it resumes" in err
    assert not leftovers(root)
    assert_store_sound(root)
    monkeypatch.setattr(files, "os", os)
    assert main([*SWEEP, str(root)]) == 0
    assert stored_bytes(root) == stored_bytes(reference) and not leftovers(root)


def _mount(*args: str) -> bool:
    if shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    """A 400 KiB tmpfs (about two runs), or a skip where mounting is not allowed."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)):
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); the injected-writer test covers ENOSPC")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


@pytest.mark.slow
def test_a_real_full_tmpfs_is_one_line_exit_1_then_resumes(reference, tmpfs, capsys):
    root = tmpfs / "runs"
    assert main([*SWEEP, str(root)]) == 1
    err = one_line_error(capsys)
    assert "No space left on device" in err and str(root) in err
    assert not leftovers(root)
    assert_store_sound(root)
    assert 1 <= len(stored_bytes(root)) // 3 < 6
    assert _mount("-o", "remount,size=4m", str(tmpfs))
    assert main([*SWEEP, str(root)]) == 0
    assert stored_bytes(root) == stored_bytes(reference) and not leftovers(root)


@pytest.mark.slow
def test_read_only_folders_and_unusable_paths_are_one_line(reference, tmpfs, tmp_path, capsys):
    # a read-only cell folder (a read-only bind mount: root ignores permission bits): exit 1, nothing trained
    root = tmp_path / "runs"
    shutil.copytree(reference, root)
    cell = root / SLUG / "torch"
    shutil.rmtree(cell / "seed-2")
    if not (_mount("--bind", str(cell), str(cell)) and _mount("-o", "remount,bind,ro", str(cell))):
        pytest.skip("cannot make a read-only bind mount here")
    try:
        assert main([*SWEEP, str(root)]) == 1
        err = one_line_error(capsys)
        assert "Read-only file system" in err and "make the runs folder writable" in err
    finally:
        subprocess.run(["umount", "-l", str(cell)], capture_output=True, check=False)
    assert not (cell / "seed-2").exists() and not leftovers(root)
    # a read-only runs folder: exit 2 (the path cannot be used), before anything is written
    assert _mount("-o", "remount,ro", str(tmpfs))
    for runs in (tmpfs, tmpfs / "runs"):
        assert main([*SWEEP, str(runs)]) == 2
        assert "not writable" in one_line_error(capsys)
    # paths that cannot hold a runs folder
    for runs in ("/proc/x", "/proc", "/dev/null", "/proc/self/status/x"):
        assert main([*SWEEP, runs]) == 2, runs
        one_line_error(capsys)
