"""The image track's float64 NumPy reference: every layer, both networks, the losses, batch norm
(training, inference, running statistics) and Adam, written out plainly from docs/images.md.

The first rung of the image track's agreement ladder (``tests/test_image_layers.py``,
``tests/test_image_twins.py``): each twin is checked against these functions, and the twins'
gradients against central finite differences of them (no backward pass is written here). It
favours transparency over speed: convolutions are loops over output pixels and kernel taps, in
the spec's index formulas, sharing nothing with the twins. Shapes follow the spec: activations
``(S, B, H, W, C)``, kernels ``(S, k, k, C_in, C_out)``, dense weights ``(S, n_in, n_out)``.
"""
from __future__ import annotations

import numpy as np

from ganrepro.image.config import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, BN_EPS, BN_MOMENTUM, LEAKY_SLOPE, ImageConfig

from .numpy_ref import numerical_gradient  # noqa: F401 (central differences, shared with the 1D reference)

STRIDE, PAD = 2, 1


# ---- layers ---------------------------------------------------------------------------------
def dense(x, w, b=None):
    """y[s, b, o] = sum_n x[s, b, n] W[s, n, o] (+ b[s, o])."""
    y = np.einsum("sbn,sno->sbo", x, w)
    return y if b is None else y + b[:, None, :]


def conv(x, w, b=None):
    """y[s,b,i,j,o] = b[o] + sum_{u,v,c} xp[s,b,2i+u,2j+v,c] W[s,u,v,c,o], xp = x padded by one zero each side."""
    s, n, h, wd, _ = x.shape
    k, c_out = w.shape[1], w.shape[-1]
    xp = np.pad(x, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD), (0, 0)))
    y = np.zeros((s, n, h // STRIDE, wd // STRIDE, c_out))
    for i in range(h // STRIDE):
        for j in range(wd // STRIDE):
            for u in range(k):
                for v in range(k):
                    y[:, :, i, j] += np.einsum("sbc,sco->sbo", xp[:, :, STRIDE * i + u, STRIDE * j + v], w[:, u, v])
    return y if b is None else y + b[:, None, None, None, :]


def conv_transpose(x, w, b=None):
    """y[s,b,p,q,o] = b[o] + sum x[s,b,i,j,c] W[s,u,v,c,o] over 2i + u - 1 = p, 2j + v - 1 = q (0 <= p < 2H)."""
    s, n, h, wd, _ = x.shape
    k, c_out = w.shape[1], w.shape[-1]
    y = np.zeros((s, n, STRIDE * h, STRIDE * wd, c_out))
    for i in range(h):
        for j in range(wd):
            for u in range(k):
                for v in range(k):
                    p, q = STRIDE * i + u - PAD, STRIDE * j + v - PAD
                    if 0 <= p < STRIDE * h and 0 <= q < STRIDE * wd:
                        y[:, :, p, q] += np.einsum("sbc,sco->sbo", x[:, :, i, j], w[:, u, v])
    return y if b is None else y + b[:, None, None, None, :]


def _broadcast(t, x):
    """A per-seed, per-channel (S, C) array shaped to broadcast against x (S, ..., C)."""
    return t.reshape(t.shape[0], *([1] * (x.ndim - 2)), t.shape[-1])


def batch_norm(x, gamma, beta):
    """Training mode, per seed and channel over the batch (and spatial) axes: mu = mean(x),
    var = mean((x - mu)^2) (biased), y = gamma (x - mu) / sqrt(var + eps) + beta. Returns (y, mu, var)."""
    axes = tuple(range(1, x.ndim - 1))
    mu = x.mean(axis=axes)
    var = ((x - _broadcast(mu, x)) ** 2).mean(axis=axes)
    return batch_norm_inference(x, gamma, beta, mu, var), mu, var


def batch_norm_inference(x, gamma, beta, mean, var):
    """y = gamma (x - mean) / sqrt(var + eps) + beta with given (running) statistics."""
    return _broadcast(gamma, x) * (x - _broadcast(mean, x)) / np.sqrt(_broadcast(var, x) + BN_EPS) + _broadcast(beta, x)


def running_stats(mean, var, batch_mean, batch_var, n):
    """r_mu <- (1 - m) r_mu + m mu, r_var <- (1 - m) r_var + m var n / (n - 1), m = 0.1 (PyTorch's)."""
    m = BN_MOMENTUM
    return (1 - m) * mean + m * batch_mean, (1 - m) * var + m * batch_var * n / (n - 1)


def leaky_relu(x):
    """max(x, 0) + 0.2 min(x, 0)."""
    return np.maximum(x, 0.0) + LEAKY_SLOPE * np.minimum(x, 0.0)


def sigmoid(x):
    """1 / (1 + exp(-x)), evaluated without overflow on either side."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(x):
    """log(1 + exp(x)) via NumPy's logaddexp(0, x) (independent of the twins' formula)."""
    return np.logaddexp(0.0, x)


# ---- networks -------------------------------------------------------------------------------
def _bn(x, p, stats, name, moments):
    """Batch norm ``name`` in training mode (stats None; its moments and count n appended) or inference mode."""
    gamma, beta = p[f"{name}.gamma"], p[f"{name}.beta"]
    if stats is not None:
        return batch_norm_inference(x, gamma, beta, stats[f"{name}.mean"], stats[f"{name}.var"])
    y, mu, var = batch_norm(x, gamma, beta)
    moments[name] = (mu, var, x[0].size // x.shape[-1])
    return y


def generator(config: ImageConfig, p, z, stats=None):
    """G(z) -> (images (S, B, H, W), {bn name: (mu, var, n)}); training mode (batch statistics) if stats is None.

    linear: sigmoid(dense(lrelu(dense(z, h)), n)); dcgan: dense(z, s0*s0*2f) -> (s0, s0, 2f) -> bn ->
    lrelu -> convT(f) -> bn -> lrelu -> convT(1) + b -> sigmoid.
    """
    s, n, side = z.shape[0], z.shape[1], config.image_size
    moments: dict = {}
    if config.model == "linear":
        h = leaky_relu(dense(z, p["g0.w"], p["g0.b"]))
        return sigmoid(dense(h, p["g1.w"], p["g1.b"])).reshape(s, n, side, side), moments
    s0, f2 = config.first_map, 2 * config.base_width
    h = dense(z, p["g0.w"]).reshape(s, n, s0, s0, f2)
    h = leaky_relu(_bn(h, p, stats, "g0.bn", moments))
    h = leaky_relu(_bn(conv_transpose(h, p["g1.w"]), p, stats, "g1.bn", moments))
    return sigmoid(conv_transpose(h, p["g2.w"], p["g2.b"]))[..., 0], moments


def update_stats(stats: dict, moments: dict) -> dict:
    """G's running statistics after a training-mode pass with the given batch moments."""
    out = dict(stats)
    for name, (mu, var, n) in moments.items():
        out[f"{name}.mean"], out[f"{name}.var"] = running_stats(stats[f"{name}.mean"], stats[f"{name}.var"], mu, var, n)
    return out


def discriminator(config: ImageConfig, p, x):
    """D(x) -> logits (S, B), x (S, B, H, W). linear: dense(lrelu(dense(flatten(x), h)), 1);
    dcgan: dense(flatten(lrelu(bn(conv(lrelu(conv(x, f) + b1), 2f)))), 1), always batch statistics."""
    s, n = x.shape[0], x.shape[1]
    if config.model == "linear":
        h = leaky_relu(dense(x.reshape(s, n, -1), p["d0.w"], p["d0.b"]))
        return dense(h, p["d1.w"], p["d1.b"])[..., 0]
    h = leaky_relu(conv(x[..., None], p["d0.w"], p["d0.b"]))
    h = leaky_relu(_bn(conv(h, p["d1.w"]), p, None, "d1.bn", {}))
    return dense(h.reshape(s, n, -1), p["d2.w"], p["d2.b"])[..., 0]


# ---- losses ---------------------------------------------------------------------------------
def d_losses(l_real, l_fake):
    """(L_D, loss/real, loss/fake) per seed: loss/real = mean softplus(-l_r), loss/fake = mean softplus(l_f)."""
    real, fake = softplus(-l_real).mean(axis=-1), softplus(l_fake).mean(axis=-1)
    return real + fake, real, fake


def g_loss(config: ImageConfig, l_fake):
    """Non-saturating mean softplus(-l_f) (= mean -log sigmoid(l_f)) or saturating -mean softplus(l_f)."""
    if config.g_loss == "non_saturating":
        return softplus(-l_fake).mean(axis=-1)
    return -softplus(l_fake).mean(axis=-1)


def forward(config: ImageConfig, weights: dict, x, z, z_g) -> dict:
    """Every forward quantity of ``forward_and_gradients`` at fixed weights (no gradients):
    l_real = D(x), l_fake = D(G(z)), the D losses, loss_g at G(z_g) through the same D, g_out = G(z)
    (training mode) and "stats/<name>" after the G(z) and then the G(z_g) pass."""
    g, d, stats = weights["G"], weights["D"], weights["G_stats"]
    g_out, moments = generator(config, g, z)
    stats = update_stats(stats, moments)
    l_real, l_fake = discriminator(config, d, x), discriminator(config, d, g_out)
    loss_d, loss_real, loss_fake = d_losses(l_real, l_fake)
    g_out_g, moments = generator(config, g, z_g)
    stats = update_stats(stats, moments)
    out = {"l_real": l_real, "l_fake": l_fake, "loss_d": loss_d, "loss_real": loss_real, "loss_fake": loss_fake,
           "loss_g": g_loss(config, discriminator(config, d, g_out_g)), "g_out": g_out}
    out.update({f"stats/{k}": v for k, v in stats.items()})
    return out


# ---- Adam and finite differences ------------------------------------------------------------
def adam_update(params: dict, grads: dict, slots: dict, lr: float):
    """m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; theta - alpha_t m / (sqrt(v) + eps);
    b1 = 0.5, b2 = 0.999, eps = 1e-8, alpha_t = lr precomputed."""
    new_p, new_s = {}, {}
    for k in params:
        m, v = slots[k]
        m = ADAM_BETA1 * m + (1 - ADAM_BETA1) * grads[k]
        v = ADAM_BETA2 * v + (1 - ADAM_BETA2) * grads[k] ** 2
        new_p[k] = params[k] - lr * m / (np.sqrt(v) + ADAM_EPS)
        new_s[k] = (m, v)
    return new_p, new_s


def directional_derivative(fn, params: dict, direction: dict, step: float = 1e-6) -> float:
    """Central difference of the scalar fn along ``direction``: (f(p + h d) - f(p - h d)) / 2h."""
    up = fn({k: v + step * direction.get(k, 0.0) for k, v in params.items()})
    down = fn({k: v - step * direction.get(k, 0.0) for k, v in params.items()})
    return (up - down) / (2 * step)
