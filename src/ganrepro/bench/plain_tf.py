"""The plain baseline of ``ganrepro bench``'s training table, in TensorFlow: the twins' training step,
written the plain way (eager, stacked, per-parameter tensors, ``tf.matmul`` over the seed axis).

Diff this file against ``plain_torch.py``: the two define the same functions in the same order and
differ only in framework idioms. It exists only to be the denominator of the table's
``vs_baseline``, so it computes exactly the step of ``impls/tf_twin.py`` (docs/updates.md),
with the protocol's rules and minibatch discrimination only (no instance noise, feature matching,
label smoothing, historical averaging): one step t is

    D's update   fake = G(z_t) (no gradient); L_D = mean_B(-log D(x_t) - log(1 - D(fake)));
    G's update   L_G = mean_B(-log D'(G(z'_t))), D' = D after its update;

each player's update by the protocol's optimizer on its gradient (2017: TF1 Adam, hand-written,
m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, theta -= alpha_t m / (sqrt(v) + eps); 2016:
gradient descent theta -= lr_t g), alpha_t / lr_t from the chunk (``ganrepro.schedules``);
log is log(max(t, 1e-5)) in protocol 2017. Nets (docs/networks.md), with linear(x) = x W + b:

    G(z) = linear(softplus(linear(z)))
    D(x) = sigmoid(linear(f)),  h = act(linear(act(linear(x)))),  act = relu (2017) or tanh (2016),
    f = act(linear(h)), or with minibatch discrimination f = [h, o(M)], M = linear(h) as (S, B, K, C),
    o[i, k] = sum_j exp(-(sum_c |M[i,k,c] - M[j,k,c]| + s [i == j])) by the published broadcast.

What "plain" leaves out, on purpose: the twins' flat parameter vectors, their production
minibatch kernels, TF's XLA compilation (every op here runs eagerly: no ``tf.function``). It takes
the twins' NumPy inputs (weights as from ``ganrepro.weights.initial_weights``, a
``ganrepro.streams.Chunk``) and returns the same curves (``CURVES`` order). Run it in a process
where the twin was loaded: it then shares the twin's settings (one thread, no TF32, deterministic
kernels).
"""
from __future__ import annotations

from ganrepro.impls import import_order  # noqa: F401  (Triton's LLVM before TensorFlow's: impls/import_order.py)

# isort: split
import numpy as np
import tensorflow as tf

from ..config import LOG_CLIP, ExperimentConfig
from ..schedules import ADAM_BETA1, ADAM_BETA2, ADAM_EPS
from ..streams import Chunk

DEVICE = "/CPU:0"
"""Where the work runs (a ``tf.device`` name): set by :func:`use_device`."""


def use_device(device: str) -> None:
    """Run on ``device``: "cpu" or "cuda" (the first GPU TensorFlow lists)."""
    global DEVICE
    DEVICE = "/GPU:0" if device == "cuda" else "/CPU:0"


def linear(x, w, b):
    """x W + b per seed: x (S, B, in), W (S, in, out), b (S, out) -> (S, B, out), one ``matmul``."""
    return tf.matmul(x, w) + b[:, None, :]


def log(t, config: ExperimentConfig):
    """log(t), or log(max(t, 1e-5)) in protocol 2017."""
    return tf.math.log(tf.maximum(t, LOG_CLIP)) if config.clip_log else tf.math.log(t)


def generator(p: dict, z):
    """G(z) = linear(softplus(linear(z))): z (S, B) -> (S, B)."""
    return linear(tf.math.softplus(linear(z[:, :, None], p["g0.w"], p["g0.b"])), p["g1.w"], p["g1.b"])[:, :, 0]


def minibatch_sums(m, self_term: str):
    """o (S, B, K) = sum_j exp(-(d + s [i == j])), d (S, B_i, K, B_j) = sum_c |M[i,k,c] - M[j,k,c]|,
    as the published broadcast: the (S, B_i, K, C, B_j) differences in one tensor."""
    dist = tf.reduce_sum(tf.abs(m[..., None] - tf.transpose(m, [0, 2, 3, 1])[:, None]), -2)
    eye = tf.eye(m.shape[1], dtype=m.dtype)[:, None, :]  # (B_i, 1, B_j)
    if self_term == "exp-1":
        return tf.reduce_sum(tf.exp(-(dist + eye)), -1)
    if self_term == "exp0":
        return tf.reduce_sum(tf.exp(-dist), -1)
    return tf.reduce_sum(tf.exp(-dist) * (1 - eye), -1)


def discriminator(p: dict, x, config: ExperimentConfig):
    """D(x): x (S, B) -> probability (S, B)."""
    act = tf.tanh if config.activation == "tanh" else tf.nn.relu
    h = act(linear(act(linear(x[:, :, None], p["d0.w"], p["d0.b"])), p["d1.w"], p["d1.b"]))
    if config.minibatch:
        m = tf.reshape(linear(h, p["mbd.w"], p["mbd.b"]), [*h.shape[:2], config.mbd_kernels, config.mbd_dims])
        f = tf.concat([h, minibatch_sums(m, config.mbd_self_term)], axis=-1)
    else:
        f = act(linear(h, p["d2.w"], p["d2.b"]))
    return tf.sigmoid(linear(f, p["out.w"], p["out.b"])[:, :, 0])


def update(config: ExperimentConfig, params: dict, grads, slots: dict, lr):
    """(params, slots) after one update of the protocol's optimizer, parameter by parameter."""
    if config.optimizer != "adam_tf1":
        return {k: p - lr * g for (k, p), g in zip(params.items(), grads, strict=True)}, slots
    new_params, new_slots = {}, {}
    for (k, p), g in zip(params.items(), grads, strict=True):
        m, v = slots[k]
        m = ADAM_BETA1 * m + (1 - ADAM_BETA1) * g
        v = ADAM_BETA2 * v + (1 - ADAM_BETA2) * (g * g)
        new_params[k], new_slots[k] = p - lr * m / (tf.sqrt(v) + ADAM_EPS), (m, v)
    return new_params, new_slots


def init_state(config: ExperimentConfig, g_weights: dict, d_weights: dict) -> dict:
    """{"G", "D": {name: tensor on DEVICE}, "G_slots", "D_slots": {name: (m, v)} (Adam) or {}}."""
    state: dict = {}
    with tf.device(DEVICE):
        for player, weights in (("G", g_weights), ("D", d_weights)):
            state[player] = {k: tf.identity(tf.constant(v)) for k, v in weights.items()}
            adam = config.optimizer == "adam_tf1"
            state[player + "_slots"] = {k: (tf.zeros_like(v), tf.zeros_like(v))
                                        for k, v in state[player].items()} if adam else {}
    return state


def train_chunk(config: ExperimentConfig, state: dict, chunk: Chunk):
    """Run the chunk's valid steps: (state, curves (L, S, 6) in the order of ``interface.CURVES``:
    loss/D, loss/G, loss/real, loss/fake, norms/G = ||dL_G/d theta_G||, norms/D = ||dL_G/d G(z')||)."""
    with tf.device(DEVICE):
        x, z_d, z_g = (tf.constant(a) for a in (chunk.x, chunk.z_d, chunk.z_g))
        lr_d, lr_g = tf.constant(chunk.lr_d), tf.constant(chunk.lr_g)
        g, d, g_slots, d_slots = state["G"], state["D"], state["G_slots"], state["D_slots"]
        rows = []
        for i in range(chunk.n_valid):
            fake = generator(g, z_d[i])
            with tf.GradientTape() as tape:
                tape.watch(list(d.values()))
                real = -log(discriminator(d, x[i], config), config)
                fake_term = -log(1 - discriminator(d, fake, config), config)
                loss_d, loss_real, loss_fake = (tf.reduce_mean(real + fake_term, -1), tf.reduce_mean(real, -1),
                                                tf.reduce_mean(fake_term, -1))
                total = tf.reduce_sum(loss_d)
            d_grads = tape.gradient(total, list(d.values()))
            d, d_slots = update(config, d, d_grads, d_slots, lr_d[i])

            with tf.GradientTape() as tape:
                tape.watch(list(g.values()))
                fake = generator(g, z_g[i])
                loss_g = tf.reduce_mean(-log(discriminator(d, fake, config), config), -1)
                total = tf.reduce_sum(loss_g)
            *g_grads, grad_fake = tape.gradient(total, [*g.values(), fake])
            g, g_slots = update(config, g, g_grads, g_slots, lr_g[i])
            norm_g = tf.sqrt(tf.reduce_sum(tf.stack([tf.reduce_sum(tf.reshape(v, [v.shape[0], -1]) ** 2, -1)
                                                     for v in g_grads]), 0))
            rows.append(tf.stack([loss_d, loss_g, loss_real, loss_fake, norm_g, tf.norm(grad_fake, axis=-1)], -1))
        curves = np.zeros((x.shape[0], x.shape[1], 6), dtype=chunk.x.dtype)
        if rows:  # reading the values waits for the device's queued work
            curves[:chunk.n_valid] = tf.stack(rows).numpy()
    state = {"G": g, "D": d, "G_slots": g_slots, "D_slots": d_slots}
    return state, curves


def state_weights(config: ExperimentConfig, state: dict) -> dict:
    """{"G": g_weights, "D": d_weights} of a state, as NumPy arrays."""
    return {player: {k: np.array(v) for k, v in state[player].items()} for player in ("G", "D")}
