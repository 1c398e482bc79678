"""``ganrepro bench``: what the minibatch-discrimination layer costs, per framework, formulation,
batch size, pass and device, and what a training step costs per stack size; written as tables and
plots to ``reports/benchmarks/``.

    cases.py    the cases (``make_case``) and how one is measured (``time_case``, ``peak_memory``,
                ``matmul_rate``, ``floor_seconds``); shared with ``benchmarks/test_bench_minibatch.py``
    workers.py  one framework on one device in fresh worker processes pinned to one core
                (``measure``: the timings and the peak memory of every case)
    tables.py   the table, its Markdown, the log-log plot, and the files (``write_tables``)
    image_steps.py  the image track's rows: one training step of the linear GAN and the DCGAN
                (``image_step_rows``, ``write_image_tables``)
    training_steps.py  the training table: the twins' step per protocol, minibatch discrimination
                and stack size S beside a plain baseline of the same step (``training_rows``,
                ``write_training_tables``)
    plain_torch.py, plain_tf.py  those baselines: eager, stacked, per-parameter tensors (twin files)

The method (timing, peak memory, arithmetic floor) is stated once, in :data:`tables.METHOD`,
which heads the written ``README.md``. The command line (validation, progress, output) is
``ganrepro.cli.bench``; this package has no entry point of its own. Importing it loads no
framework.
"""
from __future__ import annotations

from .cases import (
                    DEFAULT_BATCH_SIZES,
                    DEFAULT_OUT,
                    DEVICES,
                    DIMS,
                    FORMULATIONS,
                    FRAMEWORKS,
                    KERNELS,
                    LARGE_BATCH,
                    MAX_BENCH_BATCH,
                    PASSES,
                    QUICK_BATCH_SIZES,
                    SELF_TERM,
                    Case,
                    compiled_with,
                    cuda_available,
                    device_name,
                    estimated_bytes,
                    fits,
                    floor_seconds,
                    free_bytes,
                    inputs,
                    make_case,
                    matmul_rate,
                    peak_memory,
                    time_case,
)
from .image_steps import write_image_tables
from .tables import COLUMNS, METHOD, markdown, plot, plot_bytes, table, write_readme, write_tables
from .training_steps import QUICK_STACKS as TRAINING_QUICK_STACKS
from .training_steps import STACKS as TRAINING_STACKS
from .training_steps import write_training_tables
from .workers import measure, measure_image, measure_training, run_worker, tf_sees_gpu, worker

PARTS = ("minibatch", "training", "image")
"""What ``ganrepro bench --parts`` may name: the minibatch layer's table, the training table, the
image track's training step."""

__all__ = [
                    "COLUMNS",
                    "DEFAULT_BATCH_SIZES",
                    "DEFAULT_OUT",
                    "DEVICES",
                    "DIMS",
                    "FORMULATIONS",
                    "FRAMEWORKS",
                    "KERNELS",
                    "LARGE_BATCH",
                    "MAX_BENCH_BATCH",
                    "METHOD",
                    "PARTS",
                    "PASSES",
                    "QUICK_BATCH_SIZES",
                    "SELF_TERM",
                    "TRAINING_QUICK_STACKS",
                    "TRAINING_STACKS",
                    "Case",
                    "compiled_with",
                    "cuda_available",
                    "device_name",
                    "estimated_bytes",
                    "fits",
                    "floor_seconds",
                    "free_bytes",
                    "inputs",
                    "make_case",
                    "markdown",
                    "matmul_rate",
                    "measure",
                    "measure_image",
                    "measure_training",
                    "peak_memory",
                    "plot",
                    "plot_bytes",
                    "run_worker",
                    "table",
                    "tf_sees_gpu",
                    "time_case",
                    "worker",
                    "write_image_tables",
                    "write_readme",
                    "write_tables",
                    "write_training_tables",
]
