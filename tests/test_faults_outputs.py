"""Output folders under faults: a command never deletes or overwrites what it did not write, a
full or read-only disk is one line and exit 1, and an interrupted command leaves nothing
half-written (``ganrepro.outdirs``, ``ganrepro.files``).

The report tests replace the expensive parts of ``build_report`` (loading runs, statistics,
figures) with small fakes, so that only the writing is exercised; the tmpfs tests (a real
read-only or full filesystem) need ``mount -t tmpfs`` (root) and are skipped without it.
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from ganrepro import bench, outdirs
from ganrepro.cli import main
from ganrepro.report import build

MANIFEST = outdirs.MANIFEST


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("ganrepro: error: ") and "Traceback" not in err
    return lines[0]


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.fixture
def fake_report(monkeypatch, tmp_path):
    """``build_report`` with fake loading, tables, figures and document: it writes README.md,
    the CSVs and one PNG, and nothing is trained or loaded. Works in tmp_path with a runs folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(build, "load_grid", lambda grid, root, **kwargs: object())
    fake_tables = {"runs": pd.DataFrame({"variant": []}),
                   **{k: None for k in ("paired", "summary", "comparisons", "pairing", "signs")}}
    monkeypatch.setattr(build, "compute_tables", lambda loaded: (fake_tables, {}))

    def figures(loaded, runs_df, paired, floor, folder, say):
        (folder / "figures").mkdir()
        (folder / "figures" / "a.png").write_bytes(b"png")
        return {}

    monkeypatch.setattr(build, "make_figures", figures)
    monkeypatch.setattr(build, "build_blocks", lambda *a: [])
    monkeypatch.setattr(build.doc, "to_markdown", lambda blocks: "# report\n")
    monkeypatch.setattr(build.doc, "to_html", lambda blocks, title: "<html></html>\n")
    monkeypatch.setattr(build.tables, "to_csv", lambda frame: "a,b\n")
    return tmp_path


def report(*extra: str) -> list[str]:
    return ["report", "--grid", "smoke", "--runs", "runs", "--quiet", *extra]


# ---- ownership -------------------------------------------------------------------------------------
def test_report_owns_its_folder_and_refuses_any_other(fake_report, capsys):
    assert main(report("--out", "rep")) == 0
    assert (fake_report / "rep" / MANIFEST).read_text() == outdirs.manifest_text("report")
    assert outdirs.owner(fake_report / "rep") == "report"
    first = snapshot(fake_report / "rep")
    assert main(report("--out", "rep")) == 0  # its own folder: replaced, the same bytes
    assert snapshot(fake_report / "rep") == first
    capsys.readouterr()

    (fake_report / "mine").mkdir()
    (fake_report / "mine" / "thesis.tex").write_text("years of work\n")
    bench_dir = fake_report / "tables"
    outdirs.write_manifest(bench_dir, "benchmarks")
    before = snapshot(fake_report)
    for out, words in (("mine", "ganrepro did not write"), (".", "contains the --runs folder"),
                       ("runs", "is the --runs folder"), ("tables", "holds the output of 'ganrepro bench'")):
        assert main(report("--out", out)) == 2
        assert words in one_line(capsys.readouterr().err)
    assert snapshot(fake_report) == before
    # an empty folder may be taken
    (fake_report / "empty").mkdir()
    assert main(report("--out", "empty")) == 0 and outdirs.owner(fake_report / "empty") == "report"


def test_the_manifest_is_deterministic_and_the_committed_reports_carry_it():
    root = Path(__file__).resolve().parents[1] / "reports"
    assert outdirs.manifest_text("report") == outdirs.manifest_text("report")
    assert "time" not in outdirs.manifest_text("report")
    for name, kind in (("smoke", "report"), ("default", "report"), ("benchmarks", "benchmarks")):
        assert (root / name / MANIFEST).read_text() == outdirs.manifest_text(kind), name


def test_run_and_bench_refuse_a_folder_they_did_not_write(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep\n")
    outdirs.write_manifest(tmp_path / "rep", "report")
    monkeypatch.setattr(bench, "measure", lambda *a, **k: pytest.fail("measured"))
    before = snapshot(tmp_path)
    for argv, words in ((["run", "--out", "mine"], "ganrepro did not write"),
                        (["run", "--out", "rep"], "holds the output of 'ganrepro report'"),
                        (["bench", "--out", "mine"], "ganrepro did not write"),
                        (["bench", "--out", "rep"], "holds the output of 'ganrepro report'")):
        assert main(argv) == 2
        assert words in one_line(capsys.readouterr().err)
    assert snapshot(tmp_path) == before


# ---- faults while writing ----------------------------------------------------------------------------
@pytest.mark.parametrize("code, name", [(errno.ENOSPC, "No space left on device"),
                                        (errno.EROFS, "Read-only file system")])
def test_a_write_fault_during_the_report_is_one_line_exit_1_and_keeps_the_old_report(fake_report, monkeypatch,
                                                                                     capsys, code, name):
    assert main(report("--out", "rep")) == 0
    before = snapshot(fake_report)

    def failing(path, text):
        raise OSError(code, name, str(path))

    monkeypatch.setattr(build, "write_text_atomic", failing)
    assert main(report("--out", "rep")) == 1
    line = one_line(capsys.readouterr().err)
    assert name in line and "README.md" in line
    assert snapshot(fake_report) == before  # the old report whole, no temporary folder left


def test_an_interrupted_report_keeps_the_old_one_and_leaves_no_temporary(fake_report, monkeypatch, capsys):
    assert main(report("--out", "rep")) == 0
    before = snapshot(fake_report)

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "make_figures", interrupted)
    assert main(report("--out", "rep")) == 130
    assert snapshot(fake_report) == before


KILLED_REPORT = textwrap.dedent("""
    import sys, time
    from ganrepro.report import build
    build.load_grid = lambda grid, root, **kwargs: object()
    build.compute_tables = lambda loaded: ({"runs": None, "paired": None}, {})
    def figures(*args):
        folder = args[4]
        (folder / "half.png").write_bytes(b"half")
        print("writing", flush=True)
        time.sleep(60)
    build.make_figures = figures
    from ganrepro.cli import main
    sys.exit(main(["report", "--grid", "smoke", "--runs", "runs", "--out", "rep", "--quiet"]))
""")


def test_a_killed_report_leaves_its_temporary_which_the_next_report_removes(fake_report, capsys):
    assert main(report("--out", "rep")) == 0
    old = snapshot(fake_report / "rep")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_REPORT], cwd=fake_report, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    left = [p.name for p in fake_report.iterdir() if p.name.startswith(".rep.tmp-")]
    assert len(left) == 1 and snapshot(fake_report / "rep") == old  # the old report is whole
    (fake_report / ".other.tmp-keep").mkdir()  # another output's temporary: not ours to remove
    (fake_report / ".rep.tmpnot").write_text("not our pattern\n")
    assert main(report("--out", "rep")) == 0
    names = sorted(p.name for p in fake_report.iterdir())
    assert names == [".other.tmp-keep", ".rep.tmpnot", "rep", "runs"]


def test_a_write_fault_during_bench_is_one_line_exit_1(tmp_path, monkeypatch, capsys):
    from ganrepro import files

    row = {"framework": "torch", "formulation": "reference", "passes": "forward", "batch": 8, "best_s": 1e-4,
           "median_s": 1e-4, "rounds": 3, "warmup_s": 0.0, "peak_bytes": 1024, "floor_s": 1e-6,
           "matmul_gflops": 1.0, "device": "cpu", "device_name": "test", "framework_version": "0",
           "capability": "default", "inductor_simd_bits": None, "memory_method": "test"}
    monkeypatch.setattr(bench, "measure", lambda *a, **k: [dict(row)])
    image_row = {"framework": "torch", "model": "dcgan", "image_size": 8, "stack": 1, "batch": 64, "step_ms": 1.0,
                 "seed_step_ms": 1.0, "rounds": 1, "warmup_s": 0.0, "device": "cpu", "device_name": "test",
                 "framework_version": "0"}
    monkeypatch.setattr(bench, "measure_image", lambda *a, **k: [dict(image_row)])

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(files, "write_bytes_atomic", full)
    monkeypatch.setattr(files, "write_text_atomic", lambda path, text: full(path, b""))
    out = tmp_path / "tables"
    assert main(["bench", "--quick", "--device", "cpu", "--frameworks", "torch", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    _, _, rest = err.rpartition("bench: ")  # after the progress lines (minibatch layer, image step): the error
    assert err.startswith("bench: torch on cpu") and "image-track training step" in rest
    line = one_line(rest.split("\n", 1)[1])
    assert "No space left on device" in line and str(out) in line


def test_run_out_fault_after_training_is_one_line_exit_1(tmp_path, monkeypatch, capsys):
    from ganrepro import records, training
    from ganrepro.impls import available

    if not available("torch"):
        pytest.skip("torch not installed")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "x"))

    monkeypatch.setattr(records, "save_runs", full)
    assert main(["run", "--steps", "3", "--quiet", "--out", str(tmp_path / "out")]) == 1
    line = one_line(capsys.readouterr().err)
    assert "No space left on device" in line and "could not save the runs" in line
    assert training  # imported: the run trained before the fault


# ---- a real read-only or full filesystem (tmpfs) -----------------------------------------------------------
@pytest.fixture
def tmpfs(tmp_path):
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_read_only_folder_is_refused_before_any_work(tmpfs, tmp_path, monkeypatch, capsys):
    from ganrepro import training

    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(bench, "measure", lambda *a, **k: pytest.fail("measured"))
    (tmp_path / "runs").mkdir()
    assert subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)]).returncode == 0
    for argv in (["run", "--out", str(tmpfs / "out")],
                 ["report", "--grid", "smoke", "--runs", str(tmp_path / "runs"), "--out", str(tmpfs / "rep")],
                 ["report", "--animate", "blog2017/vanilla", "--out", str(tmpfs / "gifs")],
                 ["bench", "--out", str(tmpfs / "tables")]):
        assert main(argv) == 1, argv
        line = one_line(capsys.readouterr().err)
        assert "Read-only file system" in line and str(tmpfs) in line
    assert os.listdir(tmpfs) == []


def test_a_full_disk_during_a_report_is_exit_1_and_leaves_nothing(fake_report, tmpfs, monkeypatch, capsys):
    big = "x" * (300 * 1024) + "\n"  # more than the 256 KiB filesystem holds
    monkeypatch.setattr(build.doc, "to_markdown", lambda blocks: big)
    assert main(report("--out", str(tmpfs / "rep"))) == 1
    line = one_line(capsys.readouterr().err)
    assert "No space left on device" in line
    assert os.listdir(tmpfs) == []  # no half-written report, no temporary folder


def test_stale_temporaries_are_matched_by_name_only(tmp_path):
    for name in (".rep.tmp-abc", ".rep.tmp-old-xyz", ".rep.tmp-f"):
        (tmp_path / name).mkdir()
    (tmp_path / ".rep.tmp-f" / "x").write_text("")
    (tmp_path / ".README.md.tmp-1").write_text("")
    for keep in ("rep", ".repx.tmp-1", "rep.tmp-1", ".other.tmp-1"):
        (tmp_path / keep).write_text("")
    removed = outdirs.remove_stale_temporaries(tmp_path, "rep")
    assert sorted(p.name for p in removed) == [".rep.tmp-abc", ".rep.tmp-f", ".rep.tmp-old-xyz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".README.md.tmp-1", ".other.tmp-1", ".repx.tmp-1", "rep",
                                                          "rep.tmp-1"]
    time.sleep(0)
