"""``ganrepro bench``'s outputs: the table of the measured rows, its Markdown, the plot, the files.

Per device, in the output folder (``reports/benchmarks/`` by default)::

    minibatch_<device>.csv / .md   one row per case: seconds, ratio to the reference formulation,
                                   ratio to the arithmetic floor, peak memory, device, capability
    minibatch_<device>.png         log-log time against batch size per framework and formulation
    training_<device>.csv/.md/.png the twins' training step per stack size beside a plain baseline
                                   (``training_steps``)
    image_training_<device>.*      one training step of the image track (``image_steps``)
    README.md                      :data:`METHOD`, then every device's tables found in the folder

A run replaces the rows of the frameworks and devices it measured only (a GPU run adds
``*_cuda.*`` and keeps the committed CPU tables; ``--frameworks tf`` keeps PyTorch's rows).
Every file is written atomically (``ganrepro.files``).
"""
from __future__ import annotations

import math
from pathlib import Path

from .cases import DEVICES, DIMS, KERNELS, SELF_TERM

COLUMNS = ["framework", "formulation", "passes", "batch", "best_s", "median_s", "rounds", "vs_reference",
           "vs_floor", "peak_MiB", "peak_bytes", "floor_s", "matmul_gflops", "device", "device_name",
           "framework_version", "capability", "inductor_simd_bits", "memory_method"]


def table(rows: list[dict]):
    """A pandas DataFrame with the ratios: time / reference's time (same framework, pass, batch)
    and time / arithmetic floor."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["peak_MiB"] = frame["peak_bytes"] / 2 ** 20
    keys = ["framework", "passes", "batch"]
    reference = frame[frame["formulation"] == "reference"].set_index(keys)["best_s"]
    frame["vs_reference"] = [row.best_s / reference.get(tuple(row[k] for k in keys), math.nan)
                             for _, row in frame.iterrows()]
    frame["vs_floor"] = frame["best_s"] / frame["floor_s"]
    if "inductor_simd_bits" not in frame:
        frame["inductor_simd_bits"] = None
    return frame[COLUMNS].sort_values(["framework", "passes", "formulation", "batch"]).reset_index(drop=True)


def markdown(frame, device: str) -> str:
    """The table as Markdown, seconds in ms, with the device named."""
    names = ", ".join(sorted(set(frame["device_name"])))
    rates = ", ".join(f"{f} {r:.0f}" for f, r in frame.groupby("framework")["matmul_gflops"].first().items())
    pairs = zip(frame["framework"], frame["framework_version"], strict=True)
    versions = ", ".join(f"{f} {v}" for f, v in sorted(set(pairs)))
    lines = [f"# Minibatch-discrimination layer, {device}: {names}", "",
             (f"K = {KERNELS}, C = {DIMS}, self term {SELF_TERM}, float32, one thread. time = best of the rounds; "
              "vs ref = time / reference formulation's time; vs floor = time / arithmetic floor "
              f"(float32 matmul rate here: {rates} GFLOP/s); capability = ATen's CPU kernels (PyTorch) or how the "
              "formulation runs (TF). "
              f"Versions: {versions}."), "",
             "| framework | formulation | pass | B | time (ms) | vs ref | vs floor | peak MiB | capability |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for _, r in frame.iterrows():
        ratio = "" if math.isnan(r.vs_reference) else f"{r.vs_reference:.3g}"
        lines.append(f"| {r.framework} | {r.formulation} | {r.passes} | {r.batch} | {r.best_s * 1e3:.4g} | {ratio} | "
                     f"{r.vs_floor:.3g} | {r.peak_MiB:.1f} | {r.capability} |")
    return "\n".join(lines) + "\n"


def plot_bytes(frame, device: str) -> bytes:
    """:func:`plot`'s PNG, as bytes."""
    import io

    buf = io.BytesIO()
    plot(frame, buf, device)
    return buf.getvalue()


def plot(frame, path, device: str) -> None:
    """Log-log time against batch size, one line per framework x formulation x pass (``path``: a
    file name or a binary file object)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for (framework, formulation, pass_), part in frame.groupby(["framework", "formulation", "passes"]):
        ax.loglog(part["batch"], part["best_s"], marker="o", linestyle="-" if pass_ == "forward+backward" else ":",
                  label=f"{framework} {formulation} {pass_}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size B")
    ax.set_ylabel("seconds per call")
    ax.set_title(f"minibatch layer, {device}: {', '.join(sorted(set(frame['device_name'])))}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


METHOD = """\
# Benchmarks: the minibatch-discrimination layer and the training step

Written by `ganrepro bench` (`tox -e bench-tables`); do not edit. The layer maps M (B, K, C) to
o[i, k] = sum_j exp(-(d_k(i, j) + s [i == j])), d_k(i, j) = sum_c |M[i,k,c] - M[j,k,c]|
(`impls/torch_minibatch.py`, `impls/tf_minibatch.py`). Formulations: `reference`, the published
(B, K, C, B) broadcast with autograd's backward; `production`, what training uses (PyTorch: a
pair-major broadcast up to 16 rows, then the per-C loop; TF: a compiled per-C loop; above 64
rows, kernels that never hold a B x B tensor, with a hand-written backward).

Method: each framework and device runs in two fresh worker processes pinned to one core, one
for the timings (default allocator) and one for the memory; time = the best of several calls
after a warm-up call (compilation excluded; CUDA calls end with `torch.cuda.synchronize()`);
peak memory = what one call adds after a warm-up call (CPU: resident-set high-water mark with
glibc made to return freed memory; CUDA: `torch.cuda.max_memory_allocated`); arithmetic
floor = 55 B^2 operations forward (165 B^2 with the backward) at the float32 matmul rate measured
in the same run. `pytest benchmarks` (`tox -e bench`) times the same cases under
pytest-benchmark, together with training steps and whole runs.

Training table (`training_<device>.*`, `src/ganrepro/bench/training_steps.py`): one training step
(D's update, then G's; float32) of the twins for S = 1, 128, 4,096 and 65,536 stacked seeds
(where half the free memory holds the case), per framework, device, protocol and minibatch
discrimination; time = the best of several calls of the twin's `train_chunk` on a chunk of a few
steps (10 up to S = 128, 2 at 4,096, 1 at 65,536 on the CPU; 10 on CUDA), every call from the same
initial state, after a warm-up call (XLA compilation excluded); the weights and the chunk are drawn
for up to 128 seeds and repeated to S. Beside each, the same steps of a plain baseline measured in
the same worker right after: eager, per-parameter tensors, batched matmuls over the seed axis, a
hand-written Adam, the published broadcast for minibatch discrimination
(`src/ganrepro/bench/plain_torch.py`, `plain_tf.py`; a test checks that it computes the twins' step):
vs baseline = twin time / baseline time. run = step time x 5,001 steps (2017) or x 2,200 (2016:
1,200 training steps, its 1,000 pretraining steps counted as training steps, an upper bound);
vs cpu (CUDA rows) = time / the same case's CPU time, this run's or the committed table's.
"""


def write_tables(rows: list[dict], out: Path) -> list[Path]:
    """minibatch_<device>.csv/.md/.png for every device in ``rows`` (other devices' files stay, and
    so do the rows of frameworks not in ``rows``), then README.md: the method and every device's
    table found in ``out``."""
    import pandas as pd

    from .. import outdirs
    from ..files import write_bytes_atomic, write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    outdirs.write_manifest(out, "benchmarks")
    rows = list(rows)
    for device in sorted({r["device"] for r in rows}):
        previous = out / f"minibatch_{device}.csv"
        if previous.exists():  # keep the rows of frameworks not measured this time
            measured = {r["framework"] for r in rows if r["device"] == device}
            old = pd.read_csv(previous)
            rows.extend(old[~old["framework"].isin(measured)].to_dict("records"))
    frame = table(rows)
    written = []
    for device, part in frame.groupby("device"):
        part = part.reset_index(drop=True)
        paths = [out / f"minibatch_{device}.{ext}" for ext in ("csv", "md", "png")]
        for path in paths:  # what a killed earlier run left (files.write_bytes_atomic's temporaries)
            outdirs.remove_stale_temporaries(out, path.name)
        write_text_atomic(paths[0], part.to_csv(index=False))
        write_text_atomic(paths[1], markdown(part, device))
        write_bytes_atomic(paths[2], plot_bytes(part, device))
        written.extend(paths)
    written.append(write_readme(out))
    return written


def write_readme(out: Path) -> Path:
    """README.md of ``out``: :data:`METHOD`, then every device's minibatch table, training table
    (``training_<device>.md``) and image-track training table (``image_training_<device>.md``)
    found in the folder."""
    from .. import outdirs
    from ..files import write_text_atomic

    sections = [METHOD]
    for device in DEVICES:
        table_md = out / f"minibatch_{device}.md"
        if table_md.exists():
            sections.append("#" + table_md.read_text() + f"\n![time against batch size](minibatch_{device}.png)\n")
    for device in DEVICES:
        training_md = out / f"training_{device}.md"
        if training_md.exists():
            sections.append("#" + training_md.read_text()
                            + f"\n![cost per seed-step against stack size](training_{device}.png)\n")
    for device in DEVICES:
        image_md = out / f"image_training_{device}.md"
        if image_md.exists():
            sections.append("#" + image_md.read_text())
    outdirs.remove_stale_temporaries(out, "README.md")
    write_text_atomic(out / "README.md", "\n".join(sections))
    return out / "README.md"
