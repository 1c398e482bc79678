"""Image track, agreement ladder rung (a): every layer of each image twin (docs/images.md#layers) at
float64 against the NumPy reference (``impls/numpy_image_ref.py``), its gradients (the twin's
autodiff) against central finite differences of the reference; and the framework traps: each
twin's convolutions against the framework's own built-ins on the native layout, the odd-kernel
padding off-by-one, batch norm's epsilon and running variance, the Adam forms, the leaky ReLU slope's
precision, and no framework initialiser.
"""
from __future__ import annotations

import numpy as np
import pytest

from ganrepro.image.config import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, BN_EPS, BN_MOMENTUM, ImageConfig
from ganrepro.image.weights import initial_weights
from ganrepro.impls import get_image_backend
from ganrepro.impls import numpy_image_ref as ref

RELATIVE = 1e-12
"""Bound of every float64 value against the reference, relative to the quantity's scale."""
FD_STEP = 1e-6


def rel(a, b) -> float:
    """max |a - b| / max |b|: the error relative to the quantity's scale."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def fd_bound(value: float, scale: float) -> float:
    """What central differences resolve, relative to the gradient's scale: rounding eps |f| / h (times 10
    for safety) plus 1e-8 for the O(h^2) truncation term (as the 1D ladder's ``fd_bound``)."""
    return 10 * np.finfo(np.float64).eps * max(abs(value), 1.0) / FD_STEP / scale + 1e-8


def draw(shape, scale=1.0, seed=0):
    return scale * np.random.default_rng([seed, *shape]).standard_normal(shape)


# ---- each layer: value and gradients ---------------------------------------------------------
def _bn_train(i):
    return lambda x, g, b: (ref.batch_norm(x, g, b)[i])


LAYERS = {
    # name: (twin function name, reference, input shapes, index of the output in a tuple result or None);
    # batch_norm_inference's running statistics and batch_norm's moments take no gradient (training never
    # differentiates them): the former are constants here, the latter are checked for their values only
    "dense": ("dense", ref.dense, [(2, 3, 5), (2, 5, 4), (2, 4)], None),
    "dense-one-output": ("dense", ref.dense, [(2, 3, 5), (2, 5, 1), (2, 1)], None),
    "conv": ("conv", ref.conv, [(2, 3, 4, 4, 2), (2, 4, 4, 2, 3), (2, 3)], None),
    "conv-one-channel-in": ("conv", ref.conv, [(2, 3, 4, 4, 1), (2, 4, 4, 1, 3)], None),
    "conv_transpose": ("conv_transpose", ref.conv_transpose, [(2, 3, 2, 2, 3), (2, 4, 4, 3, 2)], None),
    "conv_transpose-one-channel-out": ("conv_transpose", ref.conv_transpose,
                                       [(2, 3, 2, 2, 3), (2, 4, 4, 3, 1), (2, 1)], None),
    "batch_norm": ("batch_norm", _bn_train(0), [(2, 3, 2, 2, 3), (2, 3), (2, 3)], 0),
    "batch_norm-mean": ("batch_norm", _bn_train(1), [(2, 3, 2, 2, 3), (2, 3), (2, 3)], 1),
    "batch_norm-var": ("batch_norm", _bn_train(2), [(2, 3, 2, 2, 3), (2, 3), (2, 3)], 2),
    "batch_norm_inference": ("batch_norm_inference", ref.batch_norm_inference,
                             [(2, 3, 2, 2, 3), (2, 3), (2, 3), (2, 3), (2, 3)], None),
    "leaky_relu": ("leaky_relu", ref.leaky_relu, [(2, 3, 4, 4, 2)], None),
    "softplus": ("softplus", ref.softplus, [(2, 7)], None),
}


def layer_inputs(name, shapes):
    arrays = [draw(s, seed=k) for k, s in enumerate(shapes)]
    if name == "batch_norm_inference":
        arrays[4] = np.abs(arrays[4]) + 0.5  # a variance
    if name.startswith("batch_norm"):
        arrays[0] = 2.0 * arrays[0] + 0.7  # a mean and a spread of their own
    return arrays


def twin_layer(twin, fn_name, index):
    fn = getattr(twin, fn_name)
    return fn if index is None else (lambda *a: fn(*a)[index])


CONSTANT_INPUTS = {"batch_norm_inference": 2}
"""Layers whose last inputs are constants (not differentiated): how many."""


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_and_its_gradients_match_the_reference(framework, name, agreement):
    twin = get_image_backend(framework)
    fn_name, full_reference, shapes, index = LAYERS[name]
    arrays = layer_inputs(name, shapes)
    constants = arrays[len(arrays) - CONSTANT_INPUTS.get(name, 0):]
    arrays = arrays[:len(arrays) - len(constants)]
    fn = twin_layer(twin, fn_name, index)
    held = list(twin.to_tensors(dict(enumerate(constants))).values())

    def reference(*a):
        return full_reference(*a, *constants)

    expected = reference(*arrays)
    cotangent = draw(expected.shape, seed=99)
    value, grads = twin.vjp(lambda *a: fn(*a, *held), arrays, cotangent)
    assert value.shape == expected.shape and value.dtype == np.float64
    agreement(f"{framework} {name} vs NumPy (float64)", rel(value, expected), RELATIVE)
    if index in (1, 2):
        return  # batch moments: values only

    def total(inputs):
        return float(np.sum(cotangent * reference(*inputs)))

    fd = ref.numerical_gradient(lambda p: total([p[k] for k in range(len(arrays))]),
                                {k: a.copy() for k, a in enumerate(arrays)}, FD_STEP)
    scale = max(np.max(np.abs(g)) for g in fd.values())
    err = max(np.max(np.abs(grads[k] - fd[k])) for k in fd) / scale
    agreement(f"{framework} {name} gradients vs finite differences", err, fd_bound(total(arrays), scale))


def test_running_statistics_match_the_reference(framework, agreement):
    """r_mu <- 0.9 r_mu + 0.1 mu, r_var <- 0.9 r_var + 0.1 var n / (n - 1), from the batch norm's own moments."""
    twin = get_image_backend(framework)
    x, gamma, beta = layer_inputs("batch_norm", LAYERS["batch_norm"][2])
    mean, var = draw((2, 3), seed=5), np.abs(draw((2, 3), seed=6)) + 0.5
    _, mu, v = (np.asarray(t) for t in twin.batch_norm(*twin.to_tensors({"x": x, "g": gamma, "b": beta}).values()))
    n = x.shape[1] * x.shape[2] * x.shape[3]
    got = twin.running_stats(*twin.to_tensors({"m": mean, "v": var, "mu": mu, "var": v}).values(), n)
    expected = ref.running_stats(mean, var, *ref.batch_norm(x, gamma, beta)[1:], n)
    agreement(f"{framework} running statistics vs NumPy",
              max(rel(np.asarray(a), b) for a, b in zip(got, expected, strict=True)), RELATIVE)


def test_softplus_is_exact_up_to_logits_of_100(framework, agreement):
    """The exact formula, compiled as in training: relative error per element vs logaddexp(0, x)."""
    twin = get_image_backend(framework)
    x = np.concatenate([np.linspace(-100, 100, 4001), [-99.9, -40.0, -36.0, 19.9, 20.1, 33.0, 36.0, 99.9]])
    got, (grad,) = twin.vjp(twin.softplus, [x], np.ones_like(x))
    agreement(f"{framework} softplus vs logaddexp, relative per element",
              float(np.max(np.abs(got - ref.softplus(x)) / ref.softplus(x))), 1e-15)
    agreement(f"{framework} softplus' = sigmoid, relative per element",
              float(np.max(np.abs(grad - ref.sigmoid(x)) / ref.sigmoid(x))), 1e-15)


@pytest.mark.parametrize("g_loss", ["non_saturating", "saturating"])
def test_losses_and_their_logit_gradients_at_large_logits(framework, g_loss, agreement):
    """L_D's halves and the G loss for logits up to |100| against the reference; their derivatives in the
    logit are post 004's: d/dl of -log sigmoid(l) = sigmoid(l) - 1 (-> -1, never vanishing, as l -> -inf)
    and of log(1 - sigmoid(l)) = -sigmoid(l) (-> 0)."""
    twin = get_image_backend(framework)
    config = ImageConfig(g_loss=g_loss, dtype="float64")
    logits = np.linspace(-100, 100, 41).reshape(1, -1)
    b = logits.shape[1]
    for k, part in enumerate(("loss_d", "loss_real", "loss_fake")):
        value, _ = twin.vjp(lambda lr, lf, k=k: twin.d_losses(lr, lf)[k], [logits, -logits], np.ones(1))
        agreement(f"{framework} {part} at |l| <= 100 vs NumPy", rel(value, ref.d_losses(logits, -logits)[k]), RELATIVE)
    value, (grad,) = twin.vjp(lambda lf: twin.g_loss(config, lf), [logits], np.ones(1))
    agreement(f"{framework} {g_loss} G loss at |l| <= 100 vs NumPy", rel(value, ref.g_loss(config, logits)), RELATIVE)
    expected = (ref.sigmoid(logits) - 1 if g_loss == "non_saturating" else -ref.sigmoid(logits)) / b
    agreement(f"{framework} {g_loss} dL/dl vs its formula", rel(grad, expected), RELATIVE)
    if g_loss == "non_saturating":
        assert grad[0, 0] * b == pytest.approx(-1.0, abs=1e-15)  # G's gradient does not vanish when D rejects
    else:
        assert abs(grad[0, 0]) * b < 1e-43


# ---- the networks at float64 ---------------------------------------------------------------
@pytest.mark.parametrize("model", ["linear", "dcgan"])
def test_networks_match_the_reference(framework, model, agreement):
    """G in training mode (images and batch moments) and inference mode, D's logits."""
    twin = get_image_backend(framework)
    config = ImageConfig(model=model, dtype="float64", seeds=(0, 1), batch_size=8)
    w = initial_weights(config)
    stats = {k: v + draw(v.shape, 0.1, seed=3) for k, v in w["G_stats"].items()}
    z, x = draw((2, 8, 2), seed=1), np.random.default_rng(2).random((2, 8, 8, 8))
    p, d, tz, tx = twin.to_tensors(w["G"]), twin.to_tensors(w["D"]), *twin.to_tensors({"z": z, "x": x}).values()
    images, moments = twin.generator(config, p, tz)
    r_images, r_moments = ref.generator(config, w["G"], z)
    worst = rel(np.asarray(images), r_images)
    for name, (mu, var, n) in r_moments.items():
        assert moments[name][2] == n
        worst = max(worst, rel(np.asarray(moments[name][0]), mu), rel(np.asarray(moments[name][1]), var))
    inference, _ = twin.generator(config, p, tz, twin.to_tensors(stats))
    worst = max(worst, rel(np.asarray(inference), ref.generator(config, w["G"], z, stats)[0]))
    worst = max(worst, rel(np.asarray(twin.discriminator(config, d, tx)), ref.discriminator(config, w["D"], x)))
    agreement(f"{framework} {model} G (both modes), moments and D vs NumPy", worst, RELATIVE)


# ---- the framework traps ----------------------------------------------------------------------
def native_conv(framework, x, w, transpose: bool, **torch_padding):
    """The framework's built-in on its native layout, seed by seed: PyTorch conv2d / conv_transpose2d on
    NCHW with OIHW / (C_in, C_out, k, k) kernels; TensorFlow conv2d / conv2d_transpose with "SAME" on NHWC."""
    out = []
    for s in range(x.shape[0]):
        if framework == "torch":
            import torch
            import torch.nn.functional as F

            xt = torch.from_numpy(x[s]).permute(0, 3, 1, 2)
            if transpose:
                y = F.conv_transpose2d(xt, torch.from_numpy(w[s]).permute(2, 3, 0, 1), stride=2,
                                       **(torch_padding or {"padding": 1}))
            else:
                y = F.conv2d(xt, torch.from_numpy(w[s]).permute(3, 2, 0, 1), stride=2, padding=1)
            out.append(y.permute(0, 2, 3, 1).numpy())
        else:
            import tensorflow as tf

            if transpose:
                shape = [x.shape[1], 2 * x.shape[2], 2 * x.shape[3], w.shape[-1]]
                y = tf.nn.conv2d_transpose(x[s], np.transpose(w[s], (0, 1, 3, 2)), shape, 2, "SAME")
            else:
                y = tf.nn.conv2d(x[s], w[s], 2, "SAME")
            out.append(y.numpy())
    return np.stack(out)


@pytest.mark.parametrize("layer", ["conv", "conv_transpose"])
def test_convolutions_equal_the_framework_builtin_on_its_native_layout(framework, layer, agreement):
    """Kernel 4, stride 2: PyTorch's padding=1 (output_padding=0) and TensorFlow's "SAME" are the spec's
    layers, after the layout change (NHWC <-> NCHW, HWIO <-> OIHW), and both equal the reference."""
    twin = get_image_backend(framework)
    x, w = draw((2, 3, 4, 4, 3), seed=1), draw((2, 4, 4, 3, 5), seed=2)
    got = np.asarray(getattr(twin, layer)(*twin.to_tensors({"x": x, "w": w}).values()))
    builtin = native_conv(framework, x, w, layer == "conv_transpose")
    assert got.shape == builtin.shape
    agreement(f"{framework} {layer} vs the framework's built-in", rel(got, builtin), RELATIVE)
    agreement(f"{framework} built-in {layer} vs NumPy", rel(builtin, getattr(ref, layer)(x, w)), RELATIVE)


def test_odd_kernel_transposed_convolution_is_off_by_one_pixel(twins):
    """Kernel 5, stride 2, H -> 2H: TensorFlow's "SAME" pads the forward conv asymmetrically (1 before,
    2 after). PyTorch with padding=2 needs output_padding=1 for the 2H size (output_padding=0 gives
    2H - 1), but its result is TensorFlow's shifted by one pixel; TensorFlow's equals PyTorch's
    padding=1 cropped to 2H. With the spec's kernel 4 the two agree (padding=1, output_padding=0)."""
    x, w = draw((1, 2, 4, 4, 3), seed=1), draw((1, 5, 5, 3, 2), seed=2)
    tf_out = native_conv("tf", x, w, True)[0]
    assert tf_out.shape[1:3] == (8, 8)
    assert native_conv("torch", x, w, True, padding=2, output_padding=0)[0].shape[1:3] == (7, 7)
    shifted = native_conv("torch", x, w, True, padding=2, output_padding=1)[0]
    assert shifted.shape == tf_out.shape and rel(shifted, tf_out) > 0.1
    assert rel(shifted[:, :-1, :-1], tf_out[:, 1:, 1:]) < RELATIVE  # the same numbers, one pixel up and left
    assert rel(native_conv("torch", x, w, True, padding=1)[0][:, :8, :8], tf_out) < RELATIVE
    w4 = draw((1, 4, 4, 3, 2), seed=3)
    kernel4 = native_conv("torch", x, w4, True, padding=1, output_padding=0)
    assert rel(kernel4, native_conv("tf", x, w4, True)) < RELATIVE


def test_batch_norm_equals_the_framework_builtin_and_differs_from_its_defaults(framework, agreement):
    """PyTorch: BatchNorm2d's defaults (eps 1e-5, momentum 0.1, unbiased running variance) are the spec,
    output and running statistics. Keras: BatchNormalization(momentum=0.9, epsilon=1e-5) normalises as
    the spec, but its moving variance takes the biased batch variance (the spec follows PyTorch's
    unbiased one), and its default epsilon 1e-3 is another function."""
    x, gamma, beta = draw((1, 6, 3, 3, 4), seed=1) * 0.05 + 0.3, draw((1, 4), seed=2), draw((1, 4), seed=3)
    y, mu, var = ref.batch_norm(x, gamma, beta)
    n = x.shape[1] * x.shape[2] * x.shape[3]
    r_mean, r_var = ref.running_stats(np.zeros((1, 4)), np.ones((1, 4)), mu, var, n)
    if framework == "torch":
        import torch

        get_image_backend("torch")
        bn = torch.nn.BatchNorm2d(4).double().train()
        assert bn.eps == BN_EPS and bn.momentum == BN_MOMENTUM
        with torch.no_grad():
            bn.weight.copy_(torch.from_numpy(gamma[0]))
            bn.bias.copy_(torch.from_numpy(beta[0]))
            out = bn(torch.from_numpy(x[0]).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        agreement("torch BatchNorm2d (train) vs the spec", rel(out, y[0]), RELATIVE)
        agreement("torch BatchNorm2d running mean, var vs the spec",
                  max(rel(bn.running_mean.numpy(), r_mean[0]), rel(bn.running_var.numpy(), r_var[0])), RELATIVE)
        return
    get_image_backend("tf")
    import tensorflow as tf

    def keras_bn(**kw):
        layer = tf.keras.layers.BatchNormalization(dtype="float64", **kw)
        layer.build(x[0].shape)
        layer.gamma.assign(gamma[0])
        layer.beta.assign(beta[0])
        return layer, layer(tf.constant(x[0]), training=True).numpy()

    layer, out = keras_bn(momentum=0.9, epsilon=BN_EPS)
    agreement("Keras BatchNormalization(momentum=0.9, epsilon=1e-5) vs the spec", rel(out, y[0]), RELATIVE)
    assert rel(layer.moving_mean.numpy(), r_mean[0]) < RELATIVE
    batch_term = (layer.moving_variance.numpy() - 0.9) / 0.1  # from 1: r_var = 0.9 + 0.1 (the batch's variance)
    assert rel(batch_term, var[0]) < 1e-9  # Keras: the biased variance mean((x - mu)^2)
    assert rel(batch_term, var[0] * n / (n - 1)) > 1e-2  # the spec (PyTorch): var n / (n - 1), n = 54
    _, default = keras_bn()
    assert rel(default, y[0]) > 1e-2  # epsilon 1e-3 vs 1e-5 on a batch of small spread


def test_adam_is_the_spec_form_not_the_builtin_default(framework, agreement):
    """The spec's Adam (alpha_t = lr sqrt(1 - b2^t) / (1 - b1^t), eps added to sqrt(v)) equals the
    reference. torch.optim.Adam at the same lr adds eps to the bias-corrected sqrt(v / (1 - b2^t)): an
    eps smaller by sqrt(1 - b2^t) (30 times at t = 1), so steps differ wherever |g| is not far above
    eps. Keras' Adam is the spec's form: equal with epsilon=1e-8, not with its default 1e-7. (Equal up
    to 2e-5: Keras takes beta2^t in float32, and 1 - float32(0.999) is off by 1.3e-5, half that in the
    square root.)"""
    twin = get_image_backend(framework)
    rng = np.random.default_rng(0)
    theta = rng.standard_normal((2, 50))
    grads = [rng.standard_normal((2, 50)) * 10.0 ** rng.integers(-9, 0, (2, 50)) for _ in range(3)]
    lr = 2e-4
    alphas = [lr * np.sqrt(1 - ADAM_BETA2**t) / (1 - ADAM_BETA1**t) for t in (1, 2, 3)]
    p = twin.to_tensors({"t": theta})["t"]
    slots = tuple(twin.to_tensors({"m": np.zeros_like(theta), "v": np.zeros_like(theta)}).values())
    r_p, r_slots = {"t": theta}, {"t": (np.zeros_like(theta), np.zeros_like(theta))}
    for g, alpha in zip(grads, alphas, strict=True):
        p, slots = twin.adam_update(p, twin.to_tensors({"g": g})["g"], slots, alpha)
        r_p, r_slots = ref.adam_update(r_p, {"t": g}, r_slots, alpha)
    ours = np.asarray(p) - theta

    def per_entry(a, b):
        return float(np.max(np.abs(a - b) / np.abs(b)))

    agreement(f"{framework} Adam (spec form) vs NumPy, per entry", per_entry(ours, r_p["t"] - theta), 1e-14)
    builtin = builtin_adam(framework, theta, grads, lr, ADAM_EPS) - theta
    if framework == "torch":
        assert per_entry(builtin, ours) > 1.0  # torch.optim.Adam, eps=1e-8: another function
        return
    agreement("Keras Adam(epsilon=1e-8) vs the spec form, per entry", per_entry(builtin, ours), 2e-5)
    assert per_entry(builtin_adam(framework, theta, grads, lr, None) - theta, ours) > 1.0  # epsilon=1e-7


def builtin_adam(framework, theta, grads, lr, eps):
    """theta after len(grads) steps of the framework's Adam (beta1 0.5, beta2 0.999), eps None = its default."""
    if framework == "torch":
        import torch

        t = torch.from_numpy(theta.copy()).requires_grad_(True)
        opt = torch.optim.Adam([t], lr=lr, betas=(ADAM_BETA1, ADAM_BETA2), eps=eps)
        for g in grads:
            t.grad = torch.from_numpy(g)
            opt.step()
        return t.detach().numpy()
    import tensorflow as tf

    v = tf.Variable(theta)
    opt = tf.keras.optimizers.Adam(lr, ADAM_BETA1, ADAM_BETA2, **({} if eps is None else {"epsilon": eps}))
    for g in grads:
        opt.apply_gradients([(tf.constant(g), v)])
    return v.numpy()


def test_leaky_relu_slope_is_exact_in_float64(framework):
    """The twins' leaky ReLU is max(x, 0) + 0.2 min(x, 0) bit for bit. PyTorch's F.leaky_relu is too;
    TensorFlow's tf.nn.leaky_relu keeps its slope as a 32-bit attribute: 0.2f = 0.20000000298."""
    twin = get_image_backend(framework)
    x = draw((1000,), seed=4)
    assert np.array_equal(np.asarray(twin.leaky_relu(twin.to_tensors({"x": x})["x"])), ref.leaky_relu(x))
    if framework == "torch":
        import torch

        assert np.array_equal(torch.nn.functional.leaky_relu(torch.from_numpy(x), 0.2).numpy(), ref.leaky_relu(x))
    else:
        import tensorflow as tf

        builtin = tf.nn.leaky_relu(tf.constant(x), 0.2).numpy()
        assert 1e-9 < rel(builtin, ref.leaky_relu(x)) < 1e-7


@pytest.mark.parametrize("model", ["linear", "dcgan"])
def test_initial_weights_are_used_exactly(framework, model):
    """No framework initialiser: the training state holds the NumPy-drawn weights bit for bit (a single
    seed too, which the twins run as a stack of two)."""
    twin = get_image_backend(framework)
    for seeds in ((3, 4), (5,)):
        config = ImageConfig(model=model, seeds=seeds)
        w = initial_weights(config)
        out = twin.state_weights(config, twin.init_state(config, w, np.zeros((10, 8, 8), np.float32)))
        for net in ("G", "G_stats", "D"):
            assert list(out[net]) == list(w[net])
            for k in w[net]:
                assert out[net][k].dtype == w[net][k].dtype and out[net][k].tobytes() == w[net][k].tobytes(), k
