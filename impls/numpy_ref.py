"""The float64 NumPy reference: every layer, loss and update of the spec, written out plainly
(docs/networks.md, docs/losses.md, docs/updates.md).

This is the first rung of the agreement ladder: both twins are checked against these functions
(and their gradients against finite differences of these functions). It favours transparency
over speed: the minibatch layer is written as an explicit loop over the pairs (i, j), and nothing
here is shared with the twins. Shapes follow the twins: a leading seed axis S, batches (S, B).
"""
from __future__ import annotations

import numpy as np

from ganrepro.config import LOG_CLIP, ExperimentConfig
from ganrepro.schedules import ADAM_BETA1, ADAM_BETA2, ADAM_EPS


def linear(x, w, b):
    """y[s, i, o] = sum_n x[s, i, n] W[s, n, o] + b[s, o]."""
    return np.einsum("sin,sno->sio", x, w) + b[:, None, :]


def softplus(x):
    """log(1 + exp(x)), via logaddexp(0, x) (NumPy's own, independent of the twins' formula)."""
    return np.logaddexp(0.0, x)


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return 1.0 / (1.0 + np.exp(-x))


def generator(p, z):
    """G(z) = linear(softplus(linear(z, h)), 1), z (S, B) -> (S, B)."""
    h = softplus(linear(z[..., None], p["g0.w"], p["g0.b"]))
    return linear(h, p["g1.w"], p["g1.b"])[..., 0]


SELF_TERM_S = {"exp-1": 1.0, "exp0": 0.0, "none": np.inf}


def minibatch_features(f, w, b, config: ExperimentConfig):
    """o[s, i, k] = sum_j exp(-(sum_c |M[s,i,k,c] - M[s,j,k,c]| + s_self [i == j])), looping over i, j."""
    m = linear(f, w, b).reshape(f.shape[0], f.shape[1], config.mbd_kernels, config.mbd_dims)
    n = m.shape[1]
    s_self = SELF_TERM_S[config.mbd_self_term]
    out = np.zeros(m.shape[:3])
    for i in range(n):
        for j in range(n):
            if i == j and np.isinf(s_self):
                continue
            d = np.abs(m[:, i] - m[:, j]).sum(axis=-1)  # (S, K)
            out[:, i] += np.exp(-(d + (s_self if i == j else 0.0)))
    return out



def minibatch_kernel_sums(m, self_term: str):
    """o[..., i, k] = sum_j exp(-(d_k(i, j) + s [i == j])) from M (..., B, K, C), in float64.

    d_k(i, j) = sum_c |M[i,k,c] - M[j,k,c]|, written out as a (..., B_i, B_j, K) array; the
    diagonal term is exp(-s) (s = 1, 0, or +inf: left out). The reference of every formulation
    of ``torch_minibatch`` and ``tf_minibatch`` at any batch size.
    """
    m = np.asarray(m, dtype=np.float64)
    dist = np.abs(m[..., :, None, :, :] - m[..., None, :, :, :]).sum(axis=-1)  # (..., B_i, B_j, K)
    kernel = np.exp(-dist)
    diagonal = np.arange(m.shape[-3])
    kernel[..., diagonal, diagonal, :] = np.exp(-SELF_TERM_S[self_term])
    return kernel.sum(axis=-2)


def minibatch_kernel_vjp(m, self_term: str, g):
    """dL/dM for L = sum(g * o), o = ``minibatch_kernel_sums(m)``, g (..., B, K); float64.

    Each pair (i, j) enters o[i] through E[i,j,k] = exp(-d_k(i, j)), and dE/dM[i,k,c] =
    -E sign(M[i,k,c] - M[j,k,c]) = -dE/dM[j,k,c]; summed over both ends of every pair, without
    using the symmetry of E (the production backward does; this is its independent check).
    The diagonal has derivative zero (sign(0) = 0), whatever the self term.
    """
    m, g = np.asarray(m, dtype=np.float64), np.asarray(g, dtype=np.float64)
    diff = m[..., :, None, :, :] - m[..., None, :, :, :]  # (..., B_i, B_j, K, C)
    kernel = np.exp(-np.abs(diff).sum(axis=-1))  # (..., B_i, B_j, K)
    part = (g[..., :, None, :] * kernel)[..., None] * np.sign(diff)  # dE[i,j]/dM[i] weighted by g[i]
    return -part.sum(axis=-3) + part.sum(axis=-4)

def discriminator(p, x, config: ExperimentConfig):
    """(D(x) (S, B), last hidden layer f (S, B, F))."""
    act = np.tanh if config.activation == "tanh" else (lambda a: np.maximum(a, 0.0))
    h = act(linear(x[..., None], p["d0.w"], p["d0.b"]))
    h = act(linear(h, p["d1.w"], p["d1.b"]))
    if config.minibatch:
        f = np.concatenate([h, minibatch_features(h, p["mbd.w"], p["mbd.b"], config)], axis=-1)
    else:
        f = act(linear(h, p["d2.w"], p["d2.b"]))
    return sigmoid(linear(f, p["out.w"], p["out.b"])[..., 0]), f


def log(t, config: ExperimentConfig):
    return np.log(np.maximum(t, LOG_CLIP)) if config.clip_log else np.log(t)


def feature_matching(f_real, f_fake, config):
    """paired_l2: sqrt(sum_i sum_k (f(x_i)_k - f(G(z_i))_k)^2); paired_sq: its square;
    mean_sq: sum_k (mean_i f(x_i)_k - mean_i f(G(z_i))_k)^2 (docs/techniques.md#feature-matching)."""
    if config.feature_matching == "mean_sq":
        return np.sum((f_real.mean(axis=1) - f_fake.mean(axis=1)) ** 2, axis=-1)
    paired_sq = np.sum((f_real - f_fake) ** 2, axis=(1, 2))
    return np.sqrt(paired_sq) if config.feature_matching == "paired_l2" else paired_sq


def losses(config, g_params, d_params, x, z) -> dict:
    """All forward quantities of one step at fixed weights: the keys of ``interface.FORWARD_KEYS``.

    loss_d = mean(-[a log D(x) + (1 - a) log(1 - D(x))] - log(1 - D(G(z)))) (a = label smoothing);
    loss_g = adversarial term (non-saturating -log D(G(z)), saturating log(1 - D(G(z))), or none)
    + fm_weight * feature matching.
    """
    g_out = generator(g_params, z)
    d_real, f_real = discriminator(d_params, x, config)
    d_fake, f_fake = discriminator(d_params, g_out, config)
    a = config.label_smoothing
    real = -log(d_real, config) if a == 1.0 else -(a * log(d_real, config) + (1 - a) * log(1 - d_real, config))
    adversarial = {"non_saturating": lambda: np.mean(-log(d_fake, config), axis=-1),
                   "saturating": lambda: np.mean(log(1 - d_fake, config), axis=-1),
                   "none": lambda: 0.0}[config.g_loss]()
    fm = config.fm_weight * feature_matching(f_real, f_fake, config) if config.feature_matching != "none" else 0.0
    return {
        "g_out": g_out, "d_real": d_real, "d_fake": d_fake, "f_real": f_real, "f_fake": f_fake,
        "loss_d": np.mean(real - log(1 - d_fake, config), axis=-1),
        "loss_g": adversarial + fm + np.zeros(len(z)),
        "loss_real": np.mean(-log(d_real, config), axis=-1),
        "loss_fake": np.mean(-log(1 - d_fake, config), axis=-1),
    }


def historical_penalty(theta, past_sum, t, lam):
    """lambda * sum_p (theta_p - past_sum_p / t)^2 per seed; 0 at t = 0. Gradient: 2 lambda (theta - avg)."""
    if t == 0:
        return np.zeros(theta.shape[0]), np.zeros_like(theta)
    diff = theta - past_sum / t
    return lam * np.sum(diff**2, axis=-1), 2 * lam * diff


def pretrain_loss(config, d_params, inputs, labels):
    """Per seed: mean_B((D_pre(d) - labels)^2)."""
    return np.mean((discriminator(d_params, inputs, config)[0] - labels) ** 2, axis=-1)


def gd_update(params, grads, lr):
    """theta - lr * g."""
    return {k: params[k] - lr * grads[k] for k in params}


def adam_update(params, grads, slots, lr):
    """m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; theta - alpha_t m / (sqrt(v) + eps)."""
    new_p, new_s = {}, {}
    for k in params:
        m, v = slots[k]
        m = ADAM_BETA1 * m + (1 - ADAM_BETA1) * grads[k]
        v = ADAM_BETA2 * v + (1 - ADAM_BETA2) * grads[k] ** 2
        new_p[k] = params[k] - lr * m / (np.sqrt(v) + ADAM_EPS)
        new_s[k] = (m, v)
    return new_p, new_s


def numerical_gradient(fn, params: dict, step: float = 1e-6) -> dict:
    """Central differences of the scalar fn(params) w.r.t. every entry: (f(p + h) - f(p - h)) / 2h."""
    grads = {}
    for name, value in params.items():
        g = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            orig = value[idx]
            h = step * max(1.0, abs(orig))
            value[idx] = orig + h
            up = fn(params)
            value[idx] = orig - h
            down = fn(params)
            value[idx] = orig
            g[idx] = (up - down) / (2 * h)
        grads[name] = g
    return grads
