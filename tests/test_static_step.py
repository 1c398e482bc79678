"""The PyTorch twin's training step on static buffers (``torch_twin.StaticStep``).

``train_chunk`` runs every step through one ``StaticStep`` per chunk shape: eagerly on the CPU,
as replays of one captured CUDA graph on CUDA. Everywhere: a call leaves its input state alone
(the training table times repeated calls from one state), buffers reused from another run of the
same shape give the numbers of fresh ones, and the form the graph captures (each step's inputs
selected on the device, counters advanced on the device) equals the eager step bit for bit. On a
GPU: graph replays equal eager steps bit for bit, over chunk boundaries and a short last chunk,
for every kind of step (minibatch discrimination, historical averaging, instance noise, feature
matching, protocol 2016).
"""
from __future__ import annotations

import numpy as np
import pytest

from ganrepro import impls
from ganrepro.config import make_config
from ganrepro.streams import training_chunks
from ganrepro.training import train
from ganrepro.weights import initial_weights

from helpers import relative_difference

pytestmark = pytest.mark.skipif(not impls.available("torch"), reason="needs PyTorch")


def _twin():
    from ganrepro.impls import torch_twin

    torch_twin.use_device("cpu")
    return torch_twin


def _first_chunk(config):
    return next(training_chunks(config, max_chunk=50))


def _state_arrays(twin, state) -> list[np.ndarray]:
    return [twin._host(t).copy() for v in state.values() for t in (v if isinstance(v, tuple) else (v,))]


@pytest.mark.parametrize("hist", [0.0, 0.01], ids=["plain", "historical"])
def test_train_chunk_leaves_its_input_state_alone_and_repeats(hist):
    twin = _twin()
    config = make_config("2017", seeds=(0, 1), num_steps=120, historical_averaging=hist)
    weights = initial_weights(config)
    state = twin.init_state(config, weights["G"], weights["D"])
    before = _state_arrays(twin, state)
    chunk = _first_chunk(config)
    first_state, first_curves = twin.train_chunk(config, state, chunk)
    second_state, second_curves = twin.train_chunk(config, state, chunk)
    for a, b in zip(before, _state_arrays(twin, state), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(first_curves, second_curves)
    for a, b in zip(_state_arrays(twin, first_state), _state_arrays(twin, second_state), strict=True):
        assert np.array_equal(a, b)
    assert not np.array_equal(before[0], _state_arrays(twin, first_state)[0])  # it trained


def test_buffers_reused_from_another_run_of_the_same_shape_give_a_fresh_runs_numbers():
    twin = _twin()
    config = make_config("2017", minibatch=True, seeds=(3, 4), num_steps=120, historical_averaging=0.01)
    other = config.replace(seeds=(7, 8))
    twin._STATIC.clear()
    fresh = train(config, "torch", max_chunk=50)
    train(other, "torch", max_chunk=50)  # same shape: the same StaticStep, other values in it
    assert len(twin._STATIC) == 1
    reused = train(config, "torch", max_chunk=50)
    assert np.array_equal(fresh.curves, reused.curves, equal_nan=True)
    for player in ("G", "D"):
        for k, v in fresh.weights[player].items():
            assert np.array_equal(v, reused.weights[player][k])


@pytest.mark.parametrize("cell", ["plain", "mbd-historical-noise"])
def test_the_device_indexed_step_a_cuda_graph_captures_equals_the_eager_step_on_the_cpu(cell):
    twin = _twin()
    values = {"plain": {}, "mbd-historical-noise": dict(minibatch=True, historical_averaging=0.01,
                                                         instance_noise=0.1)}[cell]
    config = make_config("2017", seeds=(0, 1, 2), num_steps=120, **values)
    weights = initial_weights(config)
    state = twin.init_state(config, weights["G"], weights["D"])
    for chunk in training_chunks(config, max_chunk=50):
        viewed = twin.StaticStep(config, state, chunk).run(state, chunk)
        indexed = twin.StaticStep(config, state, chunk, indexed=True).run(state, chunk)
        assert np.array_equal(viewed[1], indexed[1])
        for a, b in zip(_state_arrays(twin, viewed[0]), _state_arrays(twin, indexed[0]), strict=True):
            assert np.array_equal(a, b)
        state = viewed[0]


class _FakeGraph:
    """Stands in for ``torch.cuda.CUDAGraph`` on the CPU: capture runs the step once (a real capture
    only records it: ``run`` reloads the buffers either way) and a replay runs the captured step
    again, writing its curve row into the tensor the capture returned, as a real replay does."""

    def __init__(self):
        self.owner = None

    def replay(self):
        self.owner.row.copy_(self.owner._step(0))


def test_the_capture_and_replay_bookkeeping_gives_the_eager_numbers_with_a_stand_in_graph(monkeypatch):
    import contextlib

    import torch

    twin = _twin()
    stream = type("Stream", (), {"wait_stream": lambda self, other: None})
    monkeypatch.setattr(torch.cuda, "Stream", stream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda: stream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", lambda g: contextlib.nullcontext())
    config = make_config("2017", minibatch=True, seeds=(0, 1), num_steps=100, historical_averaging=0.01)
    weights = initial_weights(config)
    state = twin.init_state(config, weights["G"], weights["D"])
    chunks = list(training_chunks(config, max_chunk=40))
    replayed = twin.StaticStep(config, state, chunks[0], capture=True)
    replayed.graph.owner = replayed
    assert replayed.indexed and replayed.row is not None
    eager_state, replay_state = state, state
    for chunk in chunks:  # 34, 34, 33 steps: fewer than the warm-up's 3 never happens here, see the CUDA test
        eager_state, eager_curves = twin.StaticStep(config, eager_state, chunk).run(eager_state, chunk)
        replay_state, replay_curves = replayed.run(replay_state, chunk)
        assert np.array_equal(eager_curves, replay_curves)
        for a, b in zip(_state_arrays(twin, eager_state), _state_arrays(twin, replay_state), strict=True):
            assert np.array_equal(a, b)


def test_only_the_latest_shape_keeps_its_buffers():
    twin = _twin()
    twin._STATIC.clear()
    for seeds in ((0,), (0, 1)):
        train(make_config("2017", seeds=seeds, num_steps=20), "torch")
    assert len(twin._STATIC) == 1
    (key,) = twin._STATIC
    assert key[1][1] == 2  # the chunk shape (L, S, B) of the second run


# ---- on a GPU: graph replays equal eager steps ---------------------------------------------------
def _cuda_available() -> bool:
    if not impls.available("torch"):
        return False
    import torch

    return torch.cuda.is_available()


GRAPH_CELLS = {
    "2017": dict(protocol="2017"),
    "2017-mbd": dict(protocol="2017", minibatch=True),
    "2017-hist": dict(protocol="2017", historical_averaging=0.001),
    "2017-noise-fm": dict(protocol="2017", instance_noise=0.1, feature_matching="paired_l2"),
    "2017-smoothing-saturating": dict(protocol="2017", label_smoothing=0.9, g_loss="saturating"),
    "2016-mbd": dict(protocol="2016", minibatch=True, pretrain_steps=50),
}


@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA device (PyTorch sees none here)")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", list(GRAPH_CELLS))
def test_cuda_graph_replays_equal_eager_cuda_steps_bit_for_bit(cell, dtype, monkeypatch):
    twin = _twin()
    values = dict(GRAPH_CELLS[cell])
    config = make_config(values.pop("protocol"), seeds=(0, 1, 2), num_steps=130, dtype=dtype, curve_interval=1,
                         **values)
    graphs = train(config, "torch", device="cuda", max_chunk=50)  # chunks of 44, 44, 43 (a short last one)
    monkeypatch.setenv(twin.CUDA_GRAPHS_ENV, "0")
    eager = train(config, "torch", device="cuda", max_chunk=50)
    assert np.array_equal(graphs.curves, eager.curves, equal_nan=True)
    assert np.array_equal(graphs.samples_uniform, eager.samples_uniform, equal_nan=True)
    for player in ("G", "D"):
        for k, v in graphs.weights[player].items():
            assert np.array_equal(v, eager.weights[player][k], equal_nan=True), (player, k)


@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA device (PyTorch sees none here)")
def test_cuda_graphs_of_a_run_shorter_than_the_warm_up_equal_eager_steps(monkeypatch):
    twin = _twin()
    config = make_config("2017", seeds=(0, 1), num_steps=1, curve_interval=1)  # 2 steps: fewer than the warm-up's 3
    graphs = train(config, "torch", device="cuda")
    monkeypatch.setenv(twin.CUDA_GRAPHS_ENV, "0")
    eager = train(config, "torch", device="cuda")
    assert np.array_equal(graphs.curves, eager.curves, equal_nan=True)
    assert np.array_equal(graphs.samples_uniform, eager.samples_uniform, equal_nan=True)


# ---- the compiled step (CUDA's default), exercised on the CPU ---------------------------------------
@pytest.mark.slow
def test_the_compiled_step_repeats_bit_for_bit_and_agrees_with_the_eager_step():
    """``StaticStep(compiled=True)``, the step CUDA runs (TorchInductor; here its CPU kernels, about
    20 s to compile on 2 cores): one graph for a step with every kind of term (minibatch
    discrimination, historical averaging, instance noise, feature matching), the same bits from
    the same state twice, over chunks with a short last one, and within the agreement
    ladder's float64 bound (1e-9 relative) of the eager step after 60 steps: a compiled step sums
    in other orders, so the bits differ (they must differ somewhere: else the test would not show
    that the compiled step ran). Another config of the same cell (other seeds) reuses the one
    compilation, as a sweep's stacks must."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    twin = _twin()
    config = make_config("2017", minibatch=True, seeds=(0, 1, 2), num_steps=60, historical_averaging=0.01,
                         instance_noise=0.1, feature_matching="paired_l2", dtype="float64")
    weights = initial_weights(config)
    start = twin.init_state(config, weights["G"], weights["D"])
    chunks = list(training_chunks(config, max_chunk=25))  # 3 chunks of 21, 21 and 19 valid steps
    torch._dynamo.reset()
    counters.clear()
    results = {}
    for name, compiled in (("compiled", True), ("again", True), ("eager", False)):
        state, curves = start, []
        for chunk in chunks:
            state, rows = twin.StaticStep(config, state, chunk, indexed=True, compiled=compiled).run(state, chunk)
            curves.append(rows[:chunk.n_valid])
        results[name] = (_state_arrays(twin, state), np.concatenate(curves), twin.state_weights(config, state))
    # a config that differs only in its seeds (a sweep's next stack of the same cell) reuses the compilation
    other = config.replace(seeds=(7, 8, 9))
    other_weights = initial_weights(other)
    other_state = twin.init_state(other, other_weights["G"], other_weights["D"])
    chunk = next(training_chunks(other, max_chunk=25))
    twin.StaticStep(other, other_state, chunk, indexed=True, compiled=True).run(other_state, chunk)
    assert counters["stats"]["unique_graphs"] == 1
    compiled, again, eager = results["compiled"], results["again"], results["eager"]
    assert np.array_equal(compiled[1], again[1])
    assert all(np.array_equal(a, b) for a, b in zip(compiled[0], again[0], strict=True))
    # the weights, less mbd.b: D does not depend on it (its gradient is pure rounding, see
    # test_ladder_cd_runs.assert_runs_agree), and its Adam slots with it
    differences = [relative_difference(compiled[2][net][k], eager[2][net][k]) for net in ("G", "D")
                   for k in eager[2][net] if k != "mbd.b"]
    differences.append(relative_difference(compiled[1], eager[1]))
    assert 0 < max(differences) <= 1e-9, differences
