"""The ``ganrepro`` command line: usage errors, tiny real runs in each framework, saved runs.

Most tests call ``main([...])`` in-process (fast); two run subprocesses: the installed console
script on a bad protocol, and a bare ``import ganrepro.cli`` that must load no framework.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganrepro import impls, training
from ganrepro.cli import main
from ganrepro.impls.interface import CURVES

STATUSES = {"ok", "diverged", "collapsed"}
METRIC_KEYS = {"status", "ks", "w1", "kde_ll", "kde_ll_stderr", "kde_bandwidth", "mean", "std"}
RUN_FILES = {"record.json", "metrics.json", "samples.npz", "curves.csv"}

FRAMEWORKS = [pytest.param(f, marks=pytest.mark.skipif(not impls.available(f), reason=f"{f} not installed"))
              for f in impls.FRAMEWORKS]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("ganrepro: error: "), lines[0]
    return lines[0]


# ---- usage errors -------------------------------------------------------------------------------
BAD = [
    (["--protocol", "2015"], ["--protocol", "2015", "2016"]),
    (["--framework", "jax"], ["--framework", "jax", "torch"]),
    (["--dtype", "float16"], ["--dtype", "float16", "float32"]),
    (["--mbd-self-term", "exp1"], ["--mbd-self-term", "exp1", "exp-1"]),
    (["--steps", "0"], ["--steps", "0", ">= 1"]),
    (["--steps", "-3"], ["--steps", "-3", ">= 1"]),
    (["--steps", "ten"], ["--steps", "ten"]),
    (["--minibatch", "--batch-size", "1"], ["batch size", ">= 2", "minibatch", "1"]),
    (["--seeds", "3-1"], ["seed range", "3-1"]),
    (["--seeds", "a"], ["seed range", "'a'"]),
    (["--seeds", "0,0"], ["seed", "0,0"]),
]


@pytest.fixture
def no_training(monkeypatch, tmp_path):
    """Work in an empty tmp_path; any training attempt fails the test."""
    monkeypatch.chdir(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("training started despite a bad command line")

    monkeypatch.setattr(training, "train", refuse)
    return tmp_path


@pytest.mark.parametrize("args, words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_value_exits_2_with_one_line_and_writes_nothing(args, words, no_training, capsys):
    out = no_training / "out"
    rc = main(["run", *args, "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 2
    line = one_error_line(captured.err)
    for word in words:
        assert word in line
    assert captured.out == ""
    assert tree(no_training) == set()


def test_missing_framework_exits_2_before_any_work(no_training, monkeypatch, capsys):
    # Pretend the library behind "torch" is not installed.
    monkeypatch.setitem(impls.FRAMEWORKS, "torch", ("ganrepro_no_such_library", "ganrepro.impls.torch_twin"))
    rc = main(["run", "--framework", "torch", "--out", str(no_training / "out")])
    captured = capsys.readouterr()
    assert rc == 2
    line = one_error_line(captured.err)
    assert "'torch'" in line and "not installed" in line and "pip install" in line
    assert tree(no_training) == set()


@pytest.mark.parametrize("sub", ["", "sub"], ids=["is-a-file", "under-a-file"])
def test_out_that_is_a_file_exits_2(sub, no_training, capsys):
    afile = no_training / "afile"
    afile.write_text("keep me\n")
    target = afile / sub if sub else afile
    rc = main(["run", "--steps", "5", "--out", str(target)])
    captured = capsys.readouterr()
    assert rc == 2
    line = one_error_line(captured.err)
    assert "--out" in line and "afile" in line
    assert tree(no_training) == {"afile"} and afile.read_text() == "keep me\n"


def test_help_and_missing_command(capsys):
    assert main(["--help"]) == 0
    assert "run" in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--protocol", "--minibatch", "--mbd-self-term", "--framework", "--seeds", "--steps",
                   "--batch-size", "--hidden-size", "--pretrain-steps", "--dtype", "--curve-interval",
                   "--json", "--out", "--quiet"):
        assert option in text
    assert main([]) == 2
    one_error_line(capsys.readouterr().err)


def test_console_script_bad_protocol():
    script = Path(sys.executable).with_name("ganrepro")
    exe = str(script) if script.exists() else shutil.which("ganrepro")
    cmd = [exe] if exe else [sys.executable, "-m", "ganrepro"]
    proc = subprocess.run([*cmd, "run", "--protocol", "2015"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    line = one_error_line(proc.stderr)
    assert "--protocol" in line and "'2015'" in line and "2016" in line and "2017" in line


def test_import_loads_no_framework():
    code = ("import sys, ganrepro.cli, ganrepro.records; "
            "print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ---- real runs ------------------------------------------------------------------------------------
def run_json(capsys, args) -> dict:
    rc = main(["run", *args, "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.err == ""  # --json prints no progress
    return json.loads(captured.out)


@pytest.mark.slow
@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
@pytest.mark.parametrize("protocol", ["2016", "2017"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_tiny_run_json(framework, protocol, minibatch, capsys):
    args = ["--framework", framework, "--protocol", protocol, "--steps", "20", "--seeds", "0-1"]
    doc = run_json(capsys, args + (["--minibatch"] if minibatch else []))

    config = doc["config"]
    assert (config["protocol"], config["minibatch"], config["num_steps"], config["seeds"]) == \
        (protocol, minibatch, 20, [0, 1])
    assert config["pretrain_steps"] == (1000 if protocol == "2016" else 0)
    assert doc["framework"] == framework and doc["device"] == "cpu"
    assert doc["identity"].endswith("@0-1") and doc["identity"].startswith(doc["slug"])
    assert doc["timings"]["stack_size"] == 2 and doc["timings"]["train_s"] > 0
    lib = impls.FRAMEWORKS[framework][0]
    assert {"python", "numpy", "scipy", lib} <= set(doc["versions"])
    assert {"ks", "w1", "kde_ll"} <= set(doc["floor"]["metrics"])
    assert doc["out"] is None

    assert [r["seed"] for r in doc["runs"]] == [0, 1]
    for r in doc["runs"]:
        assert r["status"] in STATUSES and r["metrics"]["status"] == r["status"]
        assert set(r["metrics"]) == METRIC_KEYS
        numbers = {k: v for k, v in r["metrics"].items() if k != "status"}
        if r["status"] == "diverged":
            # A diverged G (non-finite output; protocol 2016 with minibatch discrimination does
            # this within 20 steps for seed 1) has no metrics: NaN, written as JSON null.
            assert all(v is None for v in numbers.values()), numbers
        else:
            for key, value in numbers.items():
                assert isinstance(value, float) and math.isfinite(value), (key, value)
    assert any(r["status"] != "diverged" for r in doc["runs"])
    # Two different seeds train differently.
    assert doc["runs"][0]["metrics"]["mean"] != doc["runs"][1]["metrics"]["mean"]


@pytest.mark.slow
def test_table_output_and_progress(capsys):
    rc = main(["run", "--steps", "20", "--seeds", "0-2"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "21/21 steps" in captured.err  # protocol 2017 runs steps 0..20
    lines = captured.out.splitlines()
    assert "p2017-vanilla-B8-T20-h4-float32@0-2" in lines[0] and "framework=torch" in lines[0]
    rows = [line.split() for line in lines]
    seed_rows = [r for r in rows if r and r[0].isdigit()]
    assert [r[0] for r in seed_rows] == ["0", "1", "2"]
    assert all(r[1] in STATUSES for r in seed_rows)
    assert sum(1 for r in rows if r and r[0] == "floor") == 1
    assert sum(1 for r in rows if r and r[0] == "median") == 1
    assert "KS" in captured.out and "W1" in captured.out and "KDE LL" in captured.out

    assert main(["run", "--steps", "20", "--seeds", "0", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "floor" in captured.out


def read_run(folder: Path) -> dict[str, bytes]:
    assert {p.name for p in folder.iterdir()} == RUN_FILES
    return {name: (folder / name).read_bytes() for name in RUN_FILES}


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_out_layout_and_determinism(framework, tmp_path, capsys):
    out = tmp_path / "runs"
    args = ["--framework", framework, "--steps", "30", "--seeds", "0-1", "--minibatch", "--out", str(out)]
    doc = run_json(capsys, args)
    slug = doc["slug"]
    assert doc["out"] == str(out)
    folders = {k: out / slug / framework / f"seed-{k}" for k in (0, 1)}
    assert tree(out) == {slug, f"{slug}/{framework}"} | {
        f"{slug}/{framework}/seed-{k}{f}" for k in (0, 1) for f in ["", *("/" + n for n in RUN_FILES)]}
    first = {k: read_run(f) for k, f in folders.items()}

    for k, run in zip((0, 1), doc["runs"]):
        record = json.loads(first[k]["record.json"])
        metrics = json.loads(first[k]["metrics.json"])
        assert set(record) == {"config", "slug", "framework", "seed", "metrics", "status", "timings",
                               "versions", "device"}
        assert set(metrics) == {"config", "slug", "framework", "seed", "metrics", "status"}
        assert "seeds" not in record["config"] and record["config"]["minibatch"] is True
        assert (metrics["seed"], metrics["framework"], metrics["slug"]) == (k, framework, slug)
        assert metrics["metrics"] == run["metrics"] and metrics["status"] == run["status"]
        assert record["timings"]["stack_size"] == 2

        with np.load(folders[k] / "samples.npz") as npz:
            assert set(npz.files) == {"samples_grid", "samples_uniform", "boundary_x", "boundary"}
            assert npz["samples_uniform"].shape == npz["samples_grid"].shape == (10_000,)
            assert npz["boundary"].shape == npz["boundary_x"].shape == (10_000,)
        csv = first[k]["curves.csv"].decode().splitlines()
        assert csv[0].split(",") == ["step", *CURVES]
        assert [int(line.split(",")[0]) for line in csv[1:]] == [0, 10, 20, 30]
        assert all(len(line.split(",")) == 7 for line in csv[1:])

    # The same command again replaces the runs with byte-identical files (timings only in record.json).
    assert run_json(capsys, args)["runs"] == doc["runs"]
    for k, folder in folders.items():
        second = read_run(folder)
        for name in ("metrics.json", "curves.csv", "samples.npz"):
            assert second[name] == first[k][name], name
    assert not [p for p in (out / slug / framework).iterdir() if p.name.startswith(".")]  # no temp folders
