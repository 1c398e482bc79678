"""The ``ganrepro`` command line: usage errors, tiny real runs in each framework, saved runs, the
named variants (``ganrepro variants``, ``run --variant``) and the technique switches.

Most tests call ``main([...])`` in-process (fast); two run subprocesses: the installed console
script on a bad protocol, and a bare ``import ganrepro.cli`` that must load no framework.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganrepro import impls, isa, training
from ganrepro.cli import build_parser, config_from_args, main
from ganrepro.config import ExperimentConfig, make_config
from ganrepro.impls.interface import CURVES
from ganrepro.variants import VARIANTS, variant_config, variant_names

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
    (["--steps", "0"], ["--steps", "'0'", "1..1000000"]),
    (["--steps", "-3"], ["--steps", "'-3'", "1..1000000"]),
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
    assert tree(out) == {".ganrepro-output.json", slug, f"{slug}/{framework}"} | {
        f"{slug}/{framework}/seed-{k}{f}" for k in (0, 1) for f in ["", *("/" + n for n in RUN_FILES)]}
    first = {k: read_run(f) for k, f in folders.items()}

    for k, run in zip((0, 1), doc["runs"], strict=True):
        record = json.loads(first[k]["record.json"])
        metrics = json.loads(first[k]["metrics.json"])
        assert set(record) == {"config", "slug", "framework", "seed", "metrics", "status", "timings",
                               "versions", "device", "device_info", "isa", "files", "config_sha256"}
        assert record["isa"]["pinned"] is isa.pinned()
        assert record["device"] == "cpu" and record["device_info"]["type"] == "cpu"
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


# ---- named variants and technique switches ---------------------------------------------------------
TECHNIQUE_OPTIONS = ("--variant", "--g-loss", "--feature-matching", "--fm-weight", "--instance-noise",
                     "--noise-target", "--noise-schedule", "--noise-anneal-steps", "--label-smoothing",
                     "--historical-averaging", "--mbd-kernels", "--mbd-dims", "--no-minibatch")


def test_help_lists_variants_and_technique_options(capsys):
    assert main(["--help"]) == 0
    assert "variants" in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    for option in TECHNIQUE_OPTIONS:
        assert option in text, option
    for choice in ("non_saturating", "saturating", "paired_l2", "paired_sq", "mean_sq", "d_inputs",
                   "exponential", "linear"):
        assert choice in text
    assert main(["variants", "--help"]) == 0
    assert "--json" in capsys.readouterr().out


def _blocks(text: str) -> dict[str, str]:
    """``ganrepro variants`` text: blocks separated by blank lines, each starting with its name."""
    blocks = [b for b in text.strip().split("\n\n")]
    return {b.splitlines()[0]: b for b in blocks if b.splitlines()[0] in VARIANTS}


def test_variants_lists_every_name_with_its_full_config(capsys):
    assert main(["variants"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    blocks = _blocks(captured.out)
    assert list(blocks) == variant_names()
    fields = [f.name for f in dataclasses.fields(ExperimentConfig)]
    for name, block in blocks.items():
        config = variant_config(name)
        assert VARIANTS[name].description in block and VARIANTS[name].source in block
        assert f"\n    source:   {VARIANTS[name].source}\n" in block and "shared/" not in block  # no path
        assert config.identity in block
        for field in fields:  # every field, with its value
            assert re.search(rf"\b{field}=", block), (name, field)
        assert f"g_loss={config.g_loss}" in block and f"feature_matching={config.feature_matching}" in block
    # A switch that differs from the protocol's defaults is marked; aliases are named.
    assert "instance_noise=0.001*" in blocks["post000/mbd+noise+fm"]
    assert "noise_target=z*" in blocks["post000/mbd+noise+fm"]
    assert "same experiment as: blog2017/vanilla, gloss/non_saturating" in blocks["post000/vanilla"]


def test_variants_json(capsys):
    assert main(["variants", "--json"]) == 0
    captured = capsys.readouterr()
    entries = json.loads(captured.out)
    assert captured.err == ""
    assert [e["name"] for e in entries] == variant_names()
    for e in entries:
        assert {"name", "description", "source", "config", "identity", "slug", "same_as"} <= set(e)
        assert e["description"] == VARIANTS[e["name"]].description and e["source"] == VARIANTS[e["name"]].source
        config = ExperimentConfig.from_dict({**e["config"], "seeds": tuple(e["config"]["seeds"])})
        assert config == variant_config(e["name"])
        assert (e["slug"], e["identity"]) == (config.slug, config.identity)
    by_name = {e["name"]: e for e in entries}
    assert by_name["post000/mbd+noise+fm"]["config"]["noise_target"] == "z"
    assert by_name["blog2017/minibatch"]["same_as"] == ["post000/mbd"]


def test_variants_name_shows_just_one(capsys):
    assert main(["variants", "fm/mean_sq"]) == 0
    text = capsys.readouterr().out
    assert list(_blocks(text)) == ["fm/mean_sq"] and "feature_matching=mean_sq*" in text
    assert "fm/paired_l2" not in text
    assert main(["variants", "fm/mean_sq", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == ["fm/mean_sq"]
    assert entries[0]["config"]["feature_matching"] == "mean_sq"


@pytest.mark.parametrize("command", [["variants", "post000/mdb"], ["variants", "post000/mdb", "--json"],
                                     ["run", "--variant", "post000/mdb"]])
def test_unknown_variant_exits_2_with_one_line(command, no_training, capsys):
    rc = main([*command, *(["--out", str(no_training / "out")] if command[0] == "run" else [])])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    line = one_error_line(captured.err)
    assert "unknown variant 'post000/mdb'" in line and "post000/mbd" in line
    assert tree(no_training) == set()


# Invalid values and combinations: refused by ExperimentConfig's validation before any training.
BAD_TECHNIQUES = [
    (["--feature-matching", "paired_l2", "--fm-weight", "-1"],
     ["--fm-weight", "feature-matching weight", "> 0", "'-1'"]),
    (["--feature-matching", "mean_sq", "--fm-weight", "0"], ["--fm-weight", "feature-matching weight", "> 0", "'0'"]),
    (["--fm-weight", "heavy"], ["--fm-weight", "'heavy'"]),
    (["--label-smoothing", "0"], ["--label-smoothing", "label smoothing", "(0, 1]", "'0'"]),
    (["--label-smoothing", "1.2"], ["--label-smoothing", "(0, 1]", "'1.2'"]),
    (["--label-smoothing", "nan"], ["--label-smoothing", "finite", "'nan'"]),
    (["--instance-noise", "-0.1"], ["--instance-noise", "instance noise", ">= 0", "'-0.1'"]),
    (["--instance-noise", "0.1", "--noise-schedule", "linear", "--noise-anneal-steps", "9000"],
     ["annealing over 9000 steps is longer than the run (5001 steps)"]),
    (["--steps", "100", "--instance-noise", "0.1", "--noise-schedule", "exponential", "--noise-anneal-steps", "500"],
     ["annealing over 500 steps is longer than the run (101 steps)"]),
    (["--noise-schedule", "linear"], ["--noise-schedule applies only with --instance-noise > 0"]),
    (["--instance-noise", "0.1", "--noise-anneal-steps", "100"], ["--noise-anneal-steps", "constant"]),
    (["--instance-noise", "0.1", "--noise-schedule", "linear", "--noise-anneal-steps", "-5"],
     ["--noise-anneal-steps", "0..", "'-5'"]),
    (["--noise-target", "g_of_z"], ["--noise-target", "g_of_z", "d_inputs"]),
    (["--noise-schedule", "cosine"], ["--noise-schedule", "cosine", "exponential"]),
    (["--minibatch", "--mbd-kernels", "0"], ["--mbd-kernels", "1..1024", "'0'"]),
    (["--minibatch", "--mbd-dims", "0"], ["--mbd-dims", "1..1024", "'0'"]),
    (["--mbd-dims", "2.5"], ["--mbd-dims", "integer", "'2.5'"]),
    (["--g-loss", "none"], ["G needs a loss", "--g-loss 'none'", "feature-matching"]),
    (["--g-loss", "wgan"], ["--g-loss", "wgan", "non_saturating"]),
    (["--feature-matching", "l1"], ["--feature-matching", "'l1'", "paired_sq"]),
    (["--historical-averaging", "-1"], ["--historical-averaging", "historical averaging", ">= 0", "'-1'"]),
    # Starting from a variant: the clash is reported with the variant named.
    (["--variant", "post000/fm", "--feature-matching", "none"],
     ["G needs a loss", "--variant post000/fm"]),
    (["--variant", "noise/d_inputs-0.1-linear", "--steps", "100"],
     ["annealing over 2500 steps is longer than the run (101 steps)", "--variant noise/d_inputs-0.1-linear"]),
    (["--variant", "smoothing/alpha0.9", "--label-smoothing", "0"], ["label smoothing", "(0, 1]"]),
    (["--variant", "post000/mbd", "--batch-size", "1"], ["batch size", ">= 2", "minibatch"]),
]


@pytest.mark.parametrize("args, words", BAD_TECHNIQUES, ids=[" ".join(a) for a, _ in BAD_TECHNIQUES])
def test_invalid_technique_combination_exits_2_before_training(args, words, no_training, capsys):
    rc = main(["run", *args, "--out", str(no_training / "out")])
    captured = capsys.readouterr()
    assert rc == 2
    line = one_error_line(captured.err)
    for word in words:
        assert word in line, (word, line)
    assert captured.out == ""
    assert tree(no_training) == set()


def config_of(*argv: str) -> ExperimentConfig:
    return config_from_args(build_parser().parse_args(["run", *argv]))


def test_without_variant_options_build_the_config():
    assert config_of() == make_config("2017")
    assert config_of("--protocol", "2016", "--minibatch") == make_config("2016", minibatch=True)
    c = config_of("--g-loss", "saturating", "--feature-matching", "paired_sq", "--fm-weight", "2",
                  "--instance-noise", "0.05", "--noise-target", "z", "--noise-schedule", "exponential",
                  "--noise-anneal-steps", "1000", "--label-smoothing", "0.8", "--historical-averaging", "1e-3",
                  "--minibatch", "--mbd-kernels", "7", "--mbd-dims", "2", "--mbd-self-term", "none",
                  "--pretrain-steps", "10", "--seeds", "0-3")
    assert c == make_config("2017", minibatch=True, g_loss="saturating", feature_matching="paired_sq",
                            fm_weight=2.0, instance_noise=0.05, noise_target="z", noise_schedule="exponential",
                            noise_anneal_steps=1000, label_smoothing=0.8, historical_averaging=0.001,
                            mbd_kernels=7, mbd_dims=2, mbd_self_term="none", pretrain_steps=10,
                            seeds=(0, 1, 2, 3))
    assert isinstance(c.fm_weight, float) and isinstance(c.noise_anneal_steps, int)


@pytest.mark.parametrize("name", variant_names())
def test_a_variant_alone_is_its_config(name):
    assert config_of("--variant", name) == variant_config(name)


def test_flags_override_a_variant_and_only_the_flags_given():
    base = "post000/mbd+noise+fm"
    assert config_of("--variant", base, "--fm-weight", "0.5") == variant_config(base, fm_weight=0.5)
    assert config_of("--variant", base, "--no-minibatch") == variant_config("post000/noise+fm")
    assert config_of("--variant", base, "--g-loss", "non_saturating", "--feature-matching", "none") == \
        variant_config("post000/mbd+noise")
    # the variant's noise target z no longer applies without noise: reset to the default, not stored
    assert config_of("--variant", base, "--instance-noise", "0") == variant_config("post000/mbd+fm")
    assert config_of("--variant", base, "--noise-target", "d_inputs", "--seeds", "2-3", "--steps", "7",
                     "--dtype", "float64") == \
        variant_config(base, noise_target="d_inputs", seeds=(2, 3), num_steps=7, dtype="float64")
    # --protocol starts from that protocol's defaults, the variant's switches kept.
    assert config_of("--variant", "blog2017/minibatch", "--protocol", "2016") == variant_config("blog2016/minibatch")
    assert config_of("--variant", "blog2016/vanilla", "--minibatch") == variant_config("blog2016/minibatch")
    assert config_of("--variant", "noise/d_inputs-0.1-linear", "--noise-anneal-steps", "50", "--steps", "100") == \
        variant_config("noise/d_inputs-0.1-linear", noise_anneal_steps=50, num_steps=100)


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_run_post000_variant_with_every_technique_on(framework, capsys):
    """A real tiny run of post 000's cell with minibatch, noise on z and feature matching."""
    doc = run_json(capsys, ["--variant", "post000/mbd+noise+fm", "--steps", "20", "--seeds", "0-1",
                            "--framework", framework])
    config = doc["config"]
    assert config == {**variant_config("post000/mbd+noise+fm").to_dict(), "num_steps": 20, "seeds": [0, 1]}
    assert doc["variant"] == "post000/mbd+noise+fm" and doc["framework"] == framework
    assert doc["identity"] == "p2017-mbd-exp0-K5C3-B8-T20-h4-noadv-fm_paired_l2x1-in0.001z-float32@0-1"
    assert [r["seed"] for r in doc["runs"]] == [0, 1]
    assert all(r["status"] in STATUSES and set(r["metrics"]) == METRIC_KEYS for r in doc["runs"])
    assert any(r["status"] != "diverged" for r in doc["runs"])


@pytest.mark.slow
def test_run_variant_flags_override_in_json_and_table(capsys):
    doc = run_json(capsys, ["--variant", "post000/mbd+noise+fm", "--steps", "5", "--fm-weight", "0.5",
                            "--feature-matching", "mean_sq", "--no-minibatch", "--label-smoothing", "0.9"])
    config = doc["config"]
    assert (config["minibatch"], config["g_loss"], config["feature_matching"], config["fm_weight"],
            config["instance_noise"], config["noise_target"], config["label_smoothing"], config["num_steps"]) == \
        (False, "none", "mean_sq", 0.5, 0.001, "z", 0.9, 5)
    assert doc["slug"] == "p2017-vanilla-B8-T5-h4-noadv-fm_mean_sqx0.5-in0.001z-ls0.9-float32"

    assert main(["run", "--variant", "smoothing/alpha0.9", "--steps", "5", "--historical-averaging", "0.01",
                 "--quiet"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("p2017-vanilla-B8-T5-h4-ls0.9-ha0.01-float32@0 ")
    assert "variant=smoothing/alpha0.9" in header and "framework=torch" in header


# ---- every bad input: one line, the right exit code, no traceback, nothing written ------------------
# (argv, exit code, fragment of the one-line message). Paths are relative to an empty working
# folder that holds "userdir/mine.txt", a file "afile" and a runs folder "runs/" (with one entry).
BAD_INPUTS = [
    (["run", "--seeds", "0-4294967295"], 2, "--seeds: seed range '0-4294967295' names at least 4294967296 seeds"),
    (["run", "--seeds", "0-100000", "--steps", "20"], 2, "a run stacks at most 65536"),
    (["run", "--seeds", "0-600,601-70000"], 2, "a run stacks at most 65536"),
    (["run", "--seeds", "0-9999"], 2, "over the limit of 4 GiB per run"),
    (["run", "--steps", "1000000000000"], 2, "--steps: must be an integer in 1..1000000, got '1000000000000'"),
    (["run", "--steps", "1e12"], 2, "--steps: expected an integer in 1..1000000, got '1e12'"),
    (["run", "--batch-size", "1000000000"], 2, "--batch-size: must be an integer in 1..65536"),
    (["run", "--hidden-size", "1000000"], 2, "--hidden-size: must be an integer in 1..4096"),
    (["run", "--minibatch", "--mbd-kernels", "100000000"], 2, "--mbd-kernels: must be an integer in 1..1024"),
    (["run", "--pretrain-steps", "1000000000000"], 2, "--pretrain-steps: must be an integer in 0..100000"),
    (["run", "--steps", "9" * 5000], 2, "--steps: expected an integer"),
    (["run", "--hidden-size", "4096"], 2, "over the limit of 4 GiB per run"),
    (["run", "--seeds", "0-1023", "--minibatch", "--batch-size", "512"], 2, "over the limit of 4 GiB per run"),
    (["run", "--feature-matching", "mean_sq", "--fm-weight", "1e400"], 2,
     "--fm-weight: expected a finite number, got '1e400'"),
    (["run", "--feature-matching", "mean_sq", "--fm-weight=-1e-3"], 2,
     "--fm-weight: feature-matching weight must be a number > 0, got '-1e-3'"),
    (["run", "--historical-averaging", "inf"], 2, "--historical-averaging: expected a finite number, got 'inf'"),
    (["run", "--mbd-kernels", "7"], 2, "--mbd-kernels applies only with --minibatch"),
    (["run", "--mbd-dims", "3"], 2, "--mbd-dims applies only with --minibatch"),
    (["run", "--mbd-self-term", "none"], 2, "--mbd-self-term applies only with --minibatch"),
    (["run", "--fm-weight", "2"], 2, "--fm-weight applies only with --feature-matching"),
    (["run", "--noise-target", "z"], 2, "--noise-target applies only with --instance-noise > 0"),
    (["run", "--variant", "post000/noise", "--instance-noise", "0", "--noise-target", "z"], 2,
     "--noise-target applies only with --instance-noise > 0 (starting from --variant post000/noise)"),
    (["run", "--variant", "blog2017/minibatch", "--no-minibatch", "--mbd-kernels", "4"], 2,
     "--mbd-kernels applies only with --minibatch"),
    (["run", "--out", ""], 2, "--out is empty"),
    (["run", "--out", "/proc/x"], 2, "--out '/proc/x' cannot be written"),
    (["run", "--out", "userdir"], 2, "--out 'userdir' is a folder that ganrepro did not write"),
    (["run", "--out", "."], 2, "--out '.' is a folder that ganrepro did not write"),
    (["run", "--out", "afile/sub"], 2, "--out 'afile/sub' cannot be created"),
    (["report", "--grid", "smoke", "--runs", "runs", "--out", "/proc/x"], 2, "--out '/proc/x' cannot be written"),
    (["report", "--grid", "smoke", "--runs", "runs", "--out", "."], 2, "--out '.' contains the --runs folder 'runs'"),
    (["report", "--grid", "smoke", "--runs", "runs", "--out", "runs"], 2, "--out 'runs' is the --runs folder"),
    (["report", "--grid", "smoke", "--runs", "runs", "--out", "runs/report"], 2, "lies inside the --runs folder"),
    (["report", "--grid", "smoke", "--runs", "runs", "--out", "userdir"], 2, "ganrepro did not write"),
    (["report", "--grid", "smoke", "--runs", "runs", "--out", ""], 2, "--out is empty"),
    (["report", "--grid", "smoke", "--runs", ""], 2, "--runs is empty"),
    (["report", "--seed", "3"], 2, "--seed applies only with --animate"),
    (["report", "--framework", "tf", "--frames", "10"], 2, "--framework and --frames apply only with --animate"),
    (["report", "--animate", "blog2017/vanilla", "--grid", "smoke"], 2, "--grid does not apply with --animate"),
    (["report", "--animate", "blog2017/vanilla", "--out", "/proc/x"], 2, "--out '/proc/x' cannot be written"),
    (["report", "--animate", "blog2017/vanilla", "--out", "userdir"], 2, "ganrepro did not write"),
    (["report", "--animate", "blog2017/vanilla", "--frames", "100000"], 2, "--frames: must be an integer in 2..1000"),
    (["bench", "--out", "/proc/x"], 2, "--out '/proc/x' cannot be written"),
    (["bench", "--out", "afile/sub"], 2, "--out 'afile/sub' cannot be created: 'afile' is not a folder"),
    (["bench", "--out", "userdir"], 2, "ganrepro did not write"),
    (["bench", "--out", ""], 2, "--out is empty"),
    (["bench", "--batch-sizes", "8,8"], 2, "batch sizes must be distinct, got '8,8'"),
    (["bench", "--batch-sizes", "1000000"], 2, "batch sizes must be at most 16384"),
]


@pytest.mark.parametrize("argv, code, fragment", BAD_INPUTS, ids=[" ".join(a)[:60] for a, _, _ in BAD_INPUTS])
def test_every_bad_input_is_one_line_with_its_exit_code(argv, code, fragment, no_training, monkeypatch, capsys):
    from ganrepro import bench

    monkeypatch.setattr(bench, "measure", lambda *a, **k: pytest.fail("bench measured despite a bad command line"))
    (no_training / "userdir").mkdir()
    (no_training / "userdir" / "mine.txt").write_text("keep me\n")
    (no_training / "afile").write_text("keep me\n")
    (no_training / "runs" / "p2017-x").mkdir(parents=True)
    def snapshot():
        return {p: (p.read_bytes() if p.is_file() else None) for p in sorted(no_training.rglob("*"))}

    before = snapshot()
    rc = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    line = one_error_line(captured.err)
    assert rc == code, line
    assert fragment in line, (fragment, line)
    assert captured.out == ""
    assert snapshot() == before


def test_bad_inputs_in_a_subprocess_print_no_traceback(tmp_path):
    """The console script itself, for the inputs that used to end in a traceback."""
    script = Path(sys.executable).with_name("ganrepro")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "ganrepro"]
    for argv in (["run", "--seeds", "0-4294967295"], ["run", "--out", "/proc/x"], ["bench", "--batch-sizes", "8,8"]):
        proc = subprocess.run([*cmd, *argv], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        one_error_line(proc.stderr)


def test_version_prints_the_pinned_frameworks_without_importing_them(capsys):
    code = ("import sys; from ganrepro.cli import main; rc = main(['--version']); "
            "print(rc, sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    first, isa_line, last = proc.stdout.strip().splitlines()
    assert first.startswith("ganrepro ") and "torch==" in first and "tensorflow-cpu==" in first
    assert isa_line.startswith("instruction set: ")
    assert last == "0 []"


def test_inert_values_are_never_stored():
    """The rule for options that do not apply: refused on the command line (above), reset to the
    default when inherited from a variant, and refused by ExperimentConfig itself."""
    from ganrepro.config import ConfigError

    assert config_of("--variant", "post000/noise", "--instance-noise", "0").noise_target == "d_inputs"
    for bad in (dict(mbd_kernels=7), dict(mbd_dims=2), dict(mbd_self_term="none"), dict(fm_weight=2.0),
                dict(noise_target="z")):
        with pytest.raises(ConfigError, match="applies only with"):
            make_config("2017", **bad)
    assert make_config("2017", minibatch=True, mbd_kernels=7).mbd_kernels == 7
