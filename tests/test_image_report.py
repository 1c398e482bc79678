"""The image track's report (``ganrepro report --grid image``), from a synthetic store of image runs.

The store is built the way a sweep stores runs (``records.save_runs`` of ``ImageTrainingOutput``
values, with records shaped like ``image.scoring.score``'s), from random arrays and hand-set
metrics, so the report's numbers are known: z-dim 7 has a lower FID and mapping instability than
z-dim 2 in every run, the frozen G's norms/G vanishes in some seeds of one framework and in none of
the other. The real-images floor is stubbed (the classifier is not trained here).
"""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from ganrepro import records
from ganrepro.cells import plan
from ganrepro.cli import main
from ganrepro.grids import Grid, get_grid
from ganrepro.image.streams import checkpoint_steps
from ganrepro.image.training import ImageTrainingOutput
from ganrepro.impls.interface import CURVES
from ganrepro.report import image_build, image_figures, image_tables
from ganrepro.report.build import IncompleteRunsError, build_report
from ganrepro.training import recorded_steps

GRID = Grid(name="image-tiny", description="test grid",
            variants=("post004/dcgan-z2", "post004/dcgan-z7", "post004/linear-z2", "post004/dcgan-z2-frozen-g"),
            frameworks=("torch", "tf"), seeds=(0, 1, 2, 3),
            overrides=(("num_steps", 40), ("curve_interval", 10), ("checkpoint_interval", 10)))

FLOOR = image_tables.Floor("digits8", {"parzen_ll": 50.0, "parzen_ll_stderr": 0.5, "fid": 0.1, "inception_score": 9.5,
                                       "classes_covered": 10, "class_kl_uniform": 0.001}, 0.985)


def fake_metrics(config, framework: str, seed: int, rng) -> dict:
    """Hand-set scores: z-dim 7 beats z-dim 2 on FID and stability in every run; the frozen G's norms/G
    vanishes in seeds 0 and 1 under PyTorch, never under TensorFlow."""
    z7 = config.z_dim == 7
    fid = (1.0 if z7 else 5.0) + 0.1 * seed + rng.uniform(0, 0.05)
    instability = (0.05 if z7 else 0.4) + 0.01 * seed
    vanish = 19 if (config.freeze_g and framework == "torch" and seed < 2) else None
    status = "diverged" if (config.model == "linear" and framework == "tf" and seed == 3) else "ok"
    return {"parzen_ll": (30.0 if z7 else 20.0) + seed + rng.uniform(0, 1), "parzen_ll_stderr": 0.3,
            "parzen_sigma": 0.2, "fid": fid, "inception_score": 5.0 + rng.uniform(0, 1),
            "classes_covered": int(8 + seed % 3), "class_kl_uniform": float(rng.uniform(0, 0.2)),
            "sample_mean": 0.3, "status": status, "mapping_instability": instability, "vanish_step": vanish,
            "loss_g_at_vanish": None if vanish is None else 17.0 + seed, "norms_g_median": 0.01,
            "norms_d_median": 0.02, "loss_g_final": 3.0, "loss_d_final": 0.5}


def fake_output(config, framework: str, rng) -> ImageTrainingOutput:
    s, h = len(config.seeds), config.image_size
    steps = recorded_steps(config.iterations, config.curve_interval)
    curves = rng.uniform(0.1, 2.0, size=(len(steps), s, len(CURVES)))
    if config.freeze_g:  # norms/G falls by 1e-4 over the run
        curves[:, :, CURVES.index("norms/G")] *= np.logspace(0, -4, len(steps))[:, None]
    ck = np.asarray(checkpoint_steps(config), dtype=np.int64)
    return ImageTrainingOutput(config=config, framework=framework, weights={}, curve_steps=steps, curves=curves,
                               checkpoint_steps=ck, checkpoints=rng.uniform(0, 1, size=(len(ck), s, 225, h, h)),
                               samples=rng.uniform(0, 1, size=(s, 100, h, h)), timings={"train_s": 1.0})


def fake_store(grid: Grid, root) -> None:
    """Every cell of ``grid`` stored under ``root`` as ``records.save_runs`` stores a sweep's runs."""
    for i, cell in enumerate(plan(grid)):
        rng = np.random.default_rng(i)
        config = cell.config
        output = fake_output(config, cell.framework, rng)
        config_dict = config.to_dict()
        config_dict.pop("seeds")
        recs = []
        for j, seed in enumerate(config.seeds):
            metrics = fake_metrics(config, cell.framework, seed, rng)
            labels = rng.integers(0, 10, size=(len(output.checkpoint_steps), 225)).astype(np.int64)
            recs.append({"config": dict(config_dict), "slug": config.slug, "framework": cell.framework,
                         "seed": int(seed), "metrics": metrics, "status": metrics["status"],
                         "timings": {"train_s": 1.0 + j, "stack_size": len(config.seeds)},
                         "versions": {"numpy": "test", "python": "test"}, "device": "cpu", "isa": {},
                         "extras": {"checkpoint_labels": labels}})
        records.save_runs(output, recs, root)


@pytest.fixture(autouse=True)
def stub_floor(monkeypatch):
    monkeypatch.setattr(image_build, "real_images_floor", lambda dataset: FLOOR)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("image-runs")
    fake_store(GRID, root)
    return root


@pytest.fixture(scope="module")
def report(store, tmp_path_factory):
    """The report of GRID from the synthetic store (built once for the tests that only read it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(image_build, "real_images_floor", lambda dataset: FLOOR)
        return image_build.build_image_report(GRID, store, tmp_path_factory.mktemp("report") / "r")


def files_of(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- the whole report -------------------------------------------------------------------------
def test_report_regenerates_byte_for_byte(store, tmp_path):
    first = build_report(GRID, store, tmp_path / "a")  # dispatches on GRID.track
    second = image_build.build_image_report(GRID, store, tmp_path / "b")
    a, b = files_of(first), files_of(second)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], name
    assert {"README.md", "index.html", "runs.csv", "summary.csv", "comparisons.csv", "signs.csv", "frozen.csv",
            ".ganrepro-output.json", "figures/sigmoid-gradients.png", "figures/frozen-g-curves.png",
            "figures/strip-mapping_instability.png", "figures/strip-fid.png"} <= set(a)
    slugs = {GRID.config(v).slug for v in GRID.variants}
    for slug in slugs:
        assert {f"figures/{slug}-curves.png", f"figures/{slug}-samples.png"} <= set(a)
    latent = {n for n in a if n.endswith("-latent.png")}
    assert latent == {f"figures/{GRID.config(v).slug}-latent.png" for v in ("post004/dcgan-z2", "post004/dcgan-z7")}
    assert all(a[n].startswith(b"\x89PNG") for n in a if n.endswith(".png"))
    runs = pd.read_csv(first / "runs.csv")
    assert len(runs) == len(GRID.variants) * len(GRID.frameworks) * len(GRID.seeds)
    # rebuilding over the same folder replaces it whole, and leaves no temporary sibling
    image_build.build_image_report(GRID, store, tmp_path / "a")
    assert files_of(tmp_path / "a") == a
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_report_text(store, report):
    out = report
    text = (out / "README.md").read_text(encoding="utf-8")
    for needle in ("# Report: grid `image-tiny` (image track)", "train 1,197, validation 300 and test 300 images",
                   "`ganrepro sweep --grid image-tiny --runs RUNS`", "`ganrepro report --grid image-tiny --runs RUNS`",
                   "Runs recorded: numpy test, python test; device cpu.", "real images (floor)",
                   "test split with accuracy 0.985", "IQM 95% CI", "P(z-dim 7 more stable)", "agree on the sign of",
                   "The frozen G", "about 16", "figures/sigmoid-gradients.png", image_build.THEIS_URL,
                   "Mapping instability of the latent grid"):
        assert needle in text, needle
    # no machine-dependent text: not the runs folder, not the timings
    assert str(store) not in text and "train_s" not in text
    assert "Published for MNIST" not in text  # a digits8 grid: no MNIST numbers
    html = (out / "index.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "The frozen G" in html and "<img src=\"figures/" in html
    summary = pd.read_csv(out / "summary.csv")
    floor = summary[summary["variant"] == image_tables.FLOOR_LABEL].iloc[0]
    assert floor["fid_median"] == pytest.approx(0.1) and summary.iloc[-1]["variant"] == image_tables.FLOOR_LABEL
    linear_tf = summary[(summary["variant"] == "post004/linear-z2") & (summary["framework"] == "tf")].iloc[0]
    assert (linear_tf["diverged"], linear_tf["divergence_rate"], linear_tf["fid_n"]) == (1, 0.25, 3)


def test_p_improvement_is_oriented_per_metric(report):
    out = report
    comp = pd.read_csv(out / "comparisons.csv")
    zdim = comp[(comp["variant"] == "post004/dcgan-z7") & (comp["baseline"] == "post004/dcgan-z2")]
    assert set(zdim["question"]) == {"z-dim 7 vs 2"}
    for metric in ("fid", "mapping_instability", "parzen_ll"):  # z7: lower fid and instability, higher parzen
        rows = zdim[zdim["metric"] == metric]
        assert len(rows) == 2 and (rows["p_improve"] == 1.0).all(), metric
        assert (rows["verdict"] == "better").all()
    signs = pd.read_csv(out / "signs.csv")
    assert signs[signs["variant"] == "post004/dcgan-z7"]["agree"].all()
    # the frozen variant is reported on its own, never compared
    assert "post004/dcgan-z2-frozen-g" not in set(comp["variant"]) | set(comp["baseline"])


def test_p_improvement_orientation_in_the_table():
    rows = []
    for variant, shift in (("base", 0.0), ("tech", -1.0)):
        for seed in range(4):
            value = 2.0 + shift + 0.1 * seed
            rows.append({"variant": variant, "framework": "torch", "seed": seed, "status": "ok",
                         **{m: value for m in image_tables.IMAGE_METRICS}})
    df = pd.DataFrame(rows)
    comp = image_tables.comparison_table(df, [("tech", "base", "q")], ("torch",))
    by = {r["metric"]: r for _, r in comp.iterrows()}
    assert by["fid"]["p_improve"] == 1.0 and by["fid"]["verdict"] == "better"  # lower fid: better
    assert by["mapping_instability"]["p_improve"] == 1.0
    assert by["parzen_ll"]["p_improve"] == 0.0 and by["parzen_ll"]["verdict"] == "worse"  # lower parzen: worse
    assert by["inception_score"]["p_improve"] == 0.0
    assert image_tables.verdict(0.6, 0.4, 0.8) == "no resolved effect" and image_tables.verdict(math.nan, 0, 1) == "n/a"


def test_sign_counts_one_effect_per_comparison_and_metric():
    comp = pd.DataFrame([
        {"variant": "v", "baseline": b, "question": "q", "framework": f, "metric": m, "p_improve": p,
         "p_lo": lo, "p_hi": hi, "verdict": image_tables.verdict(p, lo, hi)}
        for b, f, m, p, lo, hi in (("b", "torch", "fid", 0.9, 0.7, 1.0), ("b", "tf", "fid", 0.8, 0.6, 1.0),
                                   ("b", "torch", "parzen_ll", 0.6, 0.3, 0.9), ("b", "tf", "parzen_ll", 0.4, 0.1, 0.7),
                                   # the same variant against a second baseline is a separate effect
                                   ("c", "torch", "fid", 0.1, 0.0, 0.3), ("c", "tf", "fid", 0.2, 0.0, 0.4))])
    signs = image_tables.sign_table(comp)
    assert list(zip(signs["baseline"], signs["metric"], strict=True)) == [("b", "fid"), ("b", "parzen_ll"),
                                                                          ("c", "fid")]
    assert image_tables.sign_counts(signs) == {"n": 3, "agree": 2, "resolved_both": 2, "resolved_agree": 2}


def test_frozen_section_with_null_vanish_steps(report):
    out = report
    frozen = pd.read_csv(out / "frozen.csv")
    row = frozen[(frozen["variant"] == "post004/dcgan-z2-frozen-g")].set_index("framework")
    assert row.loc["torch", "vanished"] == 2 and row.loc["torch", "vanished_share"] == 0.5
    assert row.loc["torch", "vanish_step_median"] == 19 and row.loc["torch", "vanish_images_median"] == 20 * 64
    assert row.loc["torch", "loss_g_at_vanish_median"] == pytest.approx(17.5)
    assert row.loc["torch", "loss_above_claim"] == 2
    assert row.loc["tf", "vanished"] == 0 and math.isnan(row.loc["tf", "vanish_step_median"])
    assert math.isnan(row.loc["tf", "loss_g_at_vanish_median"])
    assert set(frozen["variant"]) == {"post004/dcgan-z2-frozen-g", "post004/dcgan-z2"}  # with its trained twin
    text = (out / "README.md").read_text(encoding="utf-8")
    assert "did not fall below the threshold in any of 4 seeds" in text
    assert "vanished in 2 of 4 seeds, at median step 19 (1,280 images)" in text
    runs = pd.read_csv(out / "runs.csv")
    assert runs["vanish_step"].isna().sum() > 0  # nulls stored as NaN, never as 0


def test_missing_runs_are_refused_naming_the_sweep(store, tmp_path, capsys):
    bigger = Grid(name="image-tiny", description="test grid", variants=GRID.variants, frameworks=GRID.frameworks,
                  seeds=(0, 1, 2, 3, 4), overrides=GRID.overrides)
    with pytest.raises(IncompleteRunsError, match=r"runs missing .*seeds 4.*ganrepro sweep --grid image-tiny"):
        image_build.build_image_report(bigger, store, tmp_path / "r")
    assert not (tmp_path / "r").exists()
    (tmp_path / "runs").mkdir()
    code = main(["report", "--grid", "image-smoke", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "runs missing" in err and "ganrepro sweep --grid image-smoke" in err
    assert not (tmp_path / "o").exists()


def test_a_damaged_run_is_refused(store, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(store, root)
    path = root / GRID.config("post004/dcgan-z7").slug / "tf" / "seed-2" / "metrics.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["metrics"]["fid"] = 0.0  # a better score, by hand
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    with pytest.raises(IncompleteRunsError, match=r"seed-2.*metrics\.json does not match.*ganrepro sweep"):
        image_build.build_image_report(GRID, root, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_the_cli_builds_an_image_grid(tmp_path, capsys):
    grid = get_grid("image-smoke")
    root = tmp_path / "runs"
    fake_store(grid, root)
    assert main(["report", "--grid", "image-smoke", "--runs", str(root), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    text = (tmp_path / "r" / "README.md").read_text(encoding="utf-8")
    assert "grid `image-smoke`" in text and "figures/strip-fid.png" in text
    assert "The frozen G" not in text  # image-smoke has no frozen-G variant


def test_a_floor_not_yet_computable_is_said_so(store, tmp_path, monkeypatch):
    monkeypatch.setattr(image_build, "real_images_floor",
                        lambda dataset: image_tables.Floor(dataset, None, None, "not computed: TODO"))
    out = image_build.build_image_report(GRID, store, tmp_path / "r")
    text = (out / "README.md").read_text(encoding="utf-8")
    assert "Real images (floor) of digits8: not computed: TODO." in text
    assert image_tables.FLOOR_LABEL not in set(pd.read_csv(out / "summary.csv")["variant"])


def test_published_mnist_numbers_only_in_an_mnist_report():
    blocks = image_build.parzen_notes(("mnist",))
    text = "\n".join(getattr(b, "text", "") for b in blocks)
    assert "Published for MNIST" in text and image_build.THEIS_URL in text
    table = next(b for b in blocks if hasattr(b, "df"))
    values = dict(zip(table.df["model"], table.df["ll"], strict=True))
    assert sorted(values.values()) == [121.0, 138.0, 214.0, 225.0]
    fashion = "\n".join(getattr(b, "text", "") for b in image_build.parzen_notes(("fashion-mnist",)))
    assert "Published for MNIST" not in fashion and "do not apply to Fashion-MNIST" in fashion
    assert image_build.THEIS_URL in fashion


# ---- figures ----------------------------------------------------------------------------------
def test_sigmoid_gradients_match_the_closed_forms():
    x = np.linspace(-10.0, 10.0, 2001)
    g = image_figures.sigmoid_gradients(x)
    assert np.max(np.abs(g["fd_saturating"] - g["closed_saturating"])) < 1e-6
    assert np.max(np.abs(g["fd_non_saturating"] - g["closed_non_saturating"])) < 1e-6
    assert g["closed_saturating"][0] == pytest.approx(-4.54e-5, rel=1e-2)  # -sigmoid(-10): vanishes
    assert g["closed_non_saturating"][0] == pytest.approx(-1.0, abs=1e-4)  # tends to -1
    assert np.all(np.isfinite(image_figures.softplus(np.array([-1e3, 0.0, 1e3]))))


def test_mosaic_and_checkpoint_picks():
    images = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2)
    m = image_figures.mosaic(images, 3)
    assert m.shape == (2 * 3 + 1, 3 * 3 + 1) and m[1, 1] == 0 and m[1, 4] == 4 and m[4, 1] == 12
    assert m[4, 4] == image_figures.MOSAIC_FILL  # the empty fifth tile stays grey
    assert image_figures.checkpoint_picks(11) == [0, 3, 7, 10]
    assert image_figures.checkpoint_picks(3) == [0, 1, 2]
