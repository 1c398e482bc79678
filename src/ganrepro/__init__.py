"""ganrepro: the reproducibility benchmark suite for GAN training techniques.

One spec, two backends. This package holds the framework-free spec and driver:

    config.py     ExperimentConfig: the immutable value that names an experiment
    seeding.py    one NumPy generator per (run seed, purpose)
    sampling.py   target, stratified noise, pretraining data (docs/problem.md)
    weights.py    NumPy-drawn initial weights in a fixed parameter order
    schedules.py  learning-rate schedules, precomputed (section 5)
    streams.py    batch chunks for the training loops, evaluation inputs
    training.py   train(config, framework): drives a twin, returns NumPy results
    records.py    per-seed records, metrics, saving runs
    cells.py      a grid's stored cells (below both the sweep and the report)
    animate.py    train one run and record its animation frames (``report --animate``)
    labels.py     display names (frameworks, metrics), defined once
    progress.py   the tqdm progress bars of ``run`` and ``sweep``
    cli/          the ``ganrepro`` command: parser, then one module per command
    bench/        ``ganrepro bench``: cases, worker processes, tables
    isa.py        the instruction-set pin: the same bytes on every x86-64 CPU

Sub-packages installed from the repository's top-level folders:
``ganrepro.impls`` (impls/: the PyTorch and TensorFlow twins, the NumPy reference) and
``ganrepro.metrics`` (metrics/: KS, W1, KDE log-likelihood, status, floor).
"""

from . import isa as _isa

_isa.pin()  # before anything imports NumPy or a framework: one instruction set on every CPU (isa.py)

__version__ = "0.1.0"
