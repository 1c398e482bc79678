"""The one interface both twins implement. NumPy arrays in, NumPy arrays out.

Weights are dicts name -> array with a leading seed axis S (names and shapes from
``ganrepro.weights``). Batches are (S, B) per step. Each backend module (``torch_twin``,
``tf_twin``) defines the same functions; the runner and the tests only use these.

    versions() -> dict                                  library versions for records
    pretrain(config, d_weights, pretraining) -> d_weights
    init_state(config, g_weights, d_weights) -> state   (framework tensors; opaque)
    train_chunk(config, state, chunk) -> (state, curves (L, S, 6) over CURVES)
    state_weights(config, state) -> {"G": g_weights, "D": d_weights}
    generate(config, g_weights, z (S, N)) -> G(z) (S, N)
    discriminate(config, d_weights, x (S, N)) -> D(x) (S, N), fed in batches of B
    forward_and_gradients(config, g_weights, d_weights, x, z) -> dict   (the agreement ladder)
    optimizer_update(config, params, grads, slots, lr) -> (params, slots)
"""
from __future__ import annotations

CURVES = ("loss/D", "loss/G", "loss/real", "loss/fake", "norms/G", "norms/D")
"""Diagnostics of seed 004 (PROTOCOLS.md section 3), one value per seed and step:
loss/D = mean(-log D(x) - log(1 - D(G(z)))), loss/G = mean(-log D(G(z'))),
loss/real = mean(-log D(x)), loss/fake = mean(-log(1 - D(G(z)))),
norms/G = ||dL_G / d theta_G||_2, norms/D = ||dL_G / d G(z')||_2 (the gradient D hands back to G).
loss/D, loss/real and loss/fake come from D's update (before it), loss/G and the norms from G's
update of the same step (after D's)."""

FORWARD_KEYS = ("g_out", "d_real", "d_fake", "f_real", "f_fake", "loss_d", "loss_g", "loss_real", "loss_fake")
"""Keys of forward_and_gradients' result besides the gradients "grad_d/<name>", "grad_g/<name>"
(of loss_d w.r.t. D and loss_g w.r.t. G, both at the same weights) and "grad_g_out"."""
