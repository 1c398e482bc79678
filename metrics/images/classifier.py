"""The suite's own image classifier: a small convnet in NumPy, trained once per data set and cached.

It reads generated images for the classifier-based scores (:mod:`.frechet` on its penultimate
features, :mod:`.scores` on its class probabilities, :mod:`.stability` on its labels). It is not
Inception v3 and is trained by the suite itself (no weights are ever downloaded), so its scores are
comparable across this suite's runs only.

Architecture (NHWC, kernels HWIO as in docs/images.md; x the (N, H, W) image in [0, 1]):

    z1 = conv3x3(x, 1 -> c1, pad 1) + b1
    a1 = relu(maxpool2(z1))            28x28 -> 14x14     (8x8 images: a1 = relu(z1), no pooling)
    z2 = conv3x3(a1, c1 -> c2, pad 1) + b2
    a2 = relu(maxpool2(z2))            14x14 -> 7x7       (8x8: 8x8 -> 4x4)
    f  = relu(flatten(a2) W3 + b3)     the penultimate features, F = hidden
    p  = softmax(f W4 + b4)            10 classes

with c1 = 16, c2 = 32, hidden = 64 (:class:`Recipe`). Convolutions are im2col by slicing (nine
shifted views, in kernel order (u, v, c)) and one matrix product; 2x2 max pooling of four strided
views (its gradient goes to the first maximum of each window); relu(maxpool(z)) = maxpool(relu(z)).

Training recipe (:func:`recipe_for`): He-normal initial weights (std sqrt(2 / fan_in), biases 0)
from ``default_rng(SeedSequence([seed, 1]))``; softmax cross-entropy; Adam (beta1 0.9, beta2
0.999, eps 1e-8, bias-corrected step size) with a cosine learning-rate decay from ``lr`` to 0 over
all steps; mini-batches of a fixed size from a fresh permutation per epoch
(``default_rng(SeedSequence([seed, 2]))``; the remainder of an epoch that does not fill a batch is
left out of that epoch), with random integer shifts of up to ``shift`` pixels (zero fill) drawn
from the same generator. Training uses the training split only; the test accuracy is measured
after training and stored with the weights.

Determinism: training in float32 arithmetic in NumPy only (matrix products through NumPy's BLAS on fixed
shapes and on one thread, :func:`.parzen.one_blas_thread`; every other reduction NumPy's own),
fixed seeds, fixed order, fixed batch shapes (the evaluation batches are padded to EVAL_BATCH
rows), so the same data and recipe give the same weight bytes on every run; a cached file is
byte-identical too (a zip with fixed timestamps). Evaluation runs in float64 (see :class:`Classifier`).

Cache: ``<cache_dir>/classifier-<key>.npz``, key = SHA-256 of (the data's ``content_sha256``,
ARCHITECTURE_VERSION, the recipe's hyper-parameters, the seed); written atomically
(``ganrepro.files.write_bytes_atomic``), so concurrent processes never read half a file; a file
that cannot be read back (damaged, another key, wrong shapes) is retrained and replaced, with a
warning.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganrepro.files import write_bytes_atomic

from .parzen import one_blas_thread

ARCHITECTURE_VERSION = "ganrepro-image-classifier-1: conv3x3-relu[-maxpool2]-conv3x3-relu-maxpool2-dense-relu-dense; " \
    "He init; Adam + cosine decay; shifts; float32 training, float64 evaluation"
"""Names the architecture and training procedure; part of the cache key (change it with either)."""

N_CLASSES = 10

MIN_ACCURACY = {"digits8": 0.97, "mnist": 0.99, "fashion-mnist": 0.90}
"""The least test accuracy the classifier must reach per data set for its scores to be used."""

EVAL_BATCH = 128
"""Images per evaluation batch (the last one padded with zeros); 28x28: 29 MiB of float64 patches."""

CACHE_ENV = "GANREPRO_CACHE"

_WEIGHT_NAMES = ("w1", "b1", "w2", "b2", "w3", "b3", "w4", "b4")


@dataclass(frozen=True)
class Recipe:
    """The architecture's sizes and the training hyper-parameters (all part of the cache key)."""

    image_size: int
    pool1: bool
    conv1: int = 16
    conv2: int = 32
    hidden: int = 64
    batch_size: int = 64
    epochs: int = 6
    lr: float = 1e-3
    shift: int = 0

    @property
    def flat_size(self) -> int:
        """Size of flatten(a2)."""
        side = self.image_size // 2 if self.pool1 else self.image_size
        return (side // 2) ** 2 * self.conv2


def recipe_for(image_size: int) -> Recipe:
    """The default recipe: 8x8 (digits8) or 28x28 (MNIST, Fashion-MNIST)."""
    if image_size == 8:
        return Recipe(image_size=8, pool1=False, hidden=64, batch_size=32, epochs=30, lr=2e-3, shift=1)
    if image_size == 28:
        return Recipe(image_size=28, pool1=True, hidden=128, batch_size=64, epochs=10, lr=1e-3, shift=1)
    raise ValueError(f"no classifier recipe for {image_size}x{image_size} images (8 or 28)")


# ---- layers --------------------------------------------------------------------------------------

def _im2col3(xp: np.ndarray, h: int, w: int) -> np.ndarray:
    """(B, h+2, w+2, C) padded -> (B, h, w, 9 C): the 3x3 patches in kernel order (u, v, c)."""
    b, c = xp.shape[0], xp.shape[3]
    cols = np.empty((b, h, w, 9, c), dtype=xp.dtype)
    for u in range(3):
        for v in range(3):
            cols[:, :, :, 3 * u + v, :] = xp[:, u : u + h, v : v + w, :]
    return cols.reshape(b, h, w, 9 * c)


def _col2im3(dcols: np.ndarray, h: int, w: int, c: int) -> np.ndarray:
    """The adjoint of :func:`_im2col3` without the padding: (B, h, w, 9 C) -> (B, h, w, C)."""
    b = dcols.shape[0]
    d = dcols.reshape(b, h, w, 9, c)
    dxp = np.zeros((b, h + 2, w + 2, c), dtype=dcols.dtype)
    for u in range(3):
        for v in range(3):
            dxp[:, u : u + h, v : v + w, :] += d[:, :, :, 3 * u + v, :]
    return dxp[:, 1 : h + 1, 1 : w + 1, :]


def _pad1(x: np.ndarray) -> np.ndarray:
    b, h, w, c = x.shape
    xp = np.zeros((b, h + 2, w + 2, c), dtype=x.dtype)
    xp[:, 1 : h + 1, 1 : w + 1, :] = x
    return xp


def _conv(cols: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """cols (B, h, w, 9 C) times the kernel (3, 3, C, O), plus the bias: (B, h, w, O)."""
    b, h, wd, k = cols.shape
    out = np.matmul(cols.reshape(-1, k), w.reshape(k, -1))
    out += bias
    return out.reshape(b, h, wd, -1)


_POOL_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))


def _maxpool(z: np.ndarray) -> np.ndarray:
    """2x2 max pooling with stride 2 of z (B, H, W, C), H and W even."""
    top = np.maximum(z[:, 0::2, 0::2], z[:, 0::2, 1::2])
    bottom = np.maximum(z[:, 1::2, 0::2], z[:, 1::2, 1::2])
    return np.maximum(top, bottom, out=top)


def _unpool(z: np.ndarray, m: np.ndarray, dm: np.ndarray) -> np.ndarray:
    """Gradient of 2x2 max pooling at z (pooled m) given the pooled gradient dm: each window's gradient goes
    to its first maximum in the order (0, 0), (0, 1), (1, 0), (1, 1)."""
    dz = np.zeros_like(z)
    free = np.ones(m.shape, dtype=bool)
    for i, j in _POOL_OFFSETS:
        hit = z[:, i::2, j::2] == m
        hit &= free
        np.multiply(dm, hit, out=dz[:, i::2, j::2])
        free &= ~hit
    return dz


def _forward(wts: dict[str, np.ndarray], x: np.ndarray, recipe: Recipe, keep: bool = False):
    """Logits (B, 10) and features (B, hidden) of images x (B, H, W) in the dtype of x and wts; the cache if keep."""
    b, h, w = x.shape
    xp = np.zeros((b, h + 2, w + 2, 1), dtype=x.dtype)
    xp[:, 1 : h + 1, 1 : w + 1, 0] = x
    cols1 = _im2col3(xp, h, w)
    z1 = _conv(cols1, wts["w1"], wts["b1"])
    if recipe.pool1:
        m1 = _maxpool(z1)
        a1 = np.maximum(m1, 0.0)
    else:
        m1 = z1
        a1 = np.maximum(z1, 0.0)
    h2, w2 = a1.shape[1], a1.shape[2]
    cols2 = _im2col3(_pad1(a1), h2, w2)
    z2 = _conv(cols2, wts["w2"], wts["b2"])
    m2 = _maxpool(z2)
    a2 = np.maximum(m2, 0.0)
    flat = a2.reshape(b, -1)
    z3 = np.matmul(flat, wts["w3"])
    z3 += wts["b3"]
    feats = np.maximum(z3, 0.0)
    logits = np.matmul(feats, wts["w4"])
    logits += wts["b4"]
    if not keep:
        return logits, feats
    cache = dict(cols1=cols1, z1=z1, m1=m1, cols2=cols2, z2=z2, m2=m2, flat=flat, z3=z3, feats=feats)
    return logits, feats, cache


def _backward(wts: dict[str, np.ndarray], dlogits: np.ndarray, cache: dict, recipe: Recipe) -> dict[str, np.ndarray]:
    """Gradients of the loss w.r.t. every weight, given d loss / d logits (B, 10)."""
    g: dict[str, np.ndarray] = {}
    b = dlogits.shape[0]
    g["w4"] = np.matmul(cache["feats"].T, dlogits)
    g["b4"] = dlogits.sum(axis=0)
    dz3 = np.matmul(dlogits, wts["w4"].T)
    dz3 *= cache["z3"] > 0
    g["w3"] = np.matmul(cache["flat"].T, dz3)
    g["b3"] = dz3.sum(axis=0)
    m2, z2 = cache["m2"], cache["z2"]
    dm2 = np.matmul(dz3, wts["w3"].T).reshape(m2.shape)
    dm2 *= m2 > 0
    dz2 = _unpool(z2, m2, dm2)
    c2 = dz2.shape[3]
    dz2_2d = dz2.reshape(-1, c2)
    cols2 = cache["cols2"]
    g["w2"] = np.matmul(cols2.reshape(-1, cols2.shape[3]).T, dz2_2d).reshape(wts["w2"].shape)
    g["b2"] = dz2_2d.sum(axis=0)
    c1 = wts["w1"].shape[3]
    dcols2 = np.matmul(dz2_2d, wts["w2"].reshape(-1, c2).T).reshape(b, z2.shape[1], z2.shape[2], 9 * c1)
    da1 = _col2im3(dcols2, z2.shape[1], z2.shape[2], c1)
    m1, z1 = cache["m1"], cache["z1"]
    da1 *= m1 > 0
    dz1 = _unpool(z1, m1, da1) if recipe.pool1 else da1
    dz1_2d = dz1.reshape(-1, c1)
    cols1 = cache["cols1"]
    g["w1"] = np.matmul(cols1.reshape(-1, 9).T, dz1_2d).reshape(wts["w1"].shape)
    g["b1"] = dz1_2d.sum(axis=0)
    return g


def _softmax64(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64; each row's sum is taken column by column, in a fixed order.

    (NumPy's sum over axis 1 may change its order of additions with the number of rows, which
    would make a row's probabilities depend on the rows evaluated with it.)
    """
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    total = z[:, 0].copy()
    for k in range(1, z.shape[1]):
        total += z[:, k]
    z /= total[:, None]
    return z


def init_weights(recipe: Recipe, seed: int) -> dict[str, np.ndarray]:
    """He-normal float32 weights (std sqrt(2 / fan_in)), zero biases, drawn in the order of _WEIGHT_NAMES."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1]))
    shapes = {
        "w1": ((3, 3, 1, recipe.conv1), 9),
        "w2": ((3, 3, recipe.conv1, recipe.conv2), 9 * recipe.conv1),
        "w3": ((recipe.flat_size, recipe.hidden), recipe.flat_size),
        "w4": ((recipe.hidden, N_CLASSES), recipe.hidden),
    }
    sizes = {"b1": recipe.conv1, "b2": recipe.conv2, "b3": recipe.hidden, "b4": N_CLASSES}
    wts = {}
    for name in _WEIGHT_NAMES:
        if name in shapes:
            shape, fan_in = shapes[name]
            wts[name] = (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)
        else:
            wts[name] = np.zeros(sizes[name], dtype=np.float32)
    return wts


def _as_images(x, image_size: int, name: str = "images", dtype=np.float32) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 3 or a.shape[1:] != (image_size, image_size):
        raise ValueError(f"{name} must have shape (N, {image_size}, {image_size}), got {a.shape}")
    if not bool(np.isfinite(a).all()):
        raise ValueError(f"{name} contain non-finite values")
    return np.ascontiguousarray(a, dtype=dtype)


# ---- the classifier ------------------------------------------------------------------------------

class Classifier:
    """A trained classifier: ``weights`` (float32 arrays), its ``recipe``, ``test_accuracy`` and cache ``key``.

    Every method takes images (N, H, W) in [0, 1] (finite; ValueError otherwise) and evaluates the
    network in float64 (the float32 weights converted exactly) in batches of EVAL_BATCH images, the
    last one padded with zeros. An image's result depends on that image only, not on N nor on its
    place among the images passed (tests/test_image_metrics.py checks it on slices): with the
    suite's pinned NumPy and OpenBLAS (Haswell kernels), float64 matrix products give each row the
    same bits wherever it sits in the matrix, which float32 products do not (measured: some rows
    change in their last bits when moved within the matrix).
    """

    def __init__(self, weights: dict[str, np.ndarray], recipe: Recipe, test_accuracy: float = math.nan,
                 key: str = "") -> None:
        self.weights = {k: np.ascontiguousarray(weights[k], dtype=np.float32) for k in _WEIGHT_NAMES}
        self.recipe = recipe
        self.test_accuracy = float(test_accuracy)
        self.key = key
        self._weights64 = {k: v.astype(np.float64) for k, v in self.weights.items()}

    @property
    def image_size(self) -> int:
        return self.recipe.image_size

    def _batched(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(logits (N, 10), features (N, hidden)), float64."""
        imgs = _as_images(x, self.image_size, dtype=np.float64)
        n = imgs.shape[0]
        logits = np.empty((n, N_CLASSES))
        feats = np.empty((n, self.recipe.hidden))
        batch = np.zeros((EVAL_BATCH, self.image_size, self.image_size))
        with one_blas_thread():
            for i in range(0, n, EVAL_BATCH):
                j = min(i + EVAL_BATCH, n)
                batch[: j - i] = imgs[i:j]
                batch[j - i :] = 0.0
                lg, ft = _forward(self._weights64, batch, self.recipe)
                logits[i:j] = lg[: j - i]
                feats[i:j] = ft[: j - i]
        return logits, feats

    def logits(self, x) -> np.ndarray:
        """The logits f W4 + b4, float64 (N, 10)."""
        return self._batched(x)[0]

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities softmax(logits), float64 (N, 10)."""
        return _softmax64(self._batched(x)[0])

    def proba_and_features(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(predict_proba(x), features(x)) from one pass over the images."""
        logits, feats = self._batched(x)
        return _softmax64(logits), feats

    def predict(self, x) -> np.ndarray:
        """Predicted classes argmax(logits) (the first maximum on ties), int64 (N,)."""
        return np.argmax(self._batched(x)[0], axis=1).astype(np.int64)

    def features(self, x) -> np.ndarray:
        """The penultimate features relu(flatten(a2) W3 + b3), float64 (N, hidden)."""
        return self._batched(x)[1]

    def accuracy(self, x, y) -> float:
        """The fraction of images whose predicted class equals y."""
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def to_bytes(self) -> bytes:
        """The cache file's bytes: an .npz (zip, fixed timestamps) of the weights and a JSON ``meta``."""
        meta = {"key": self.key, "version": ARCHITECTURE_VERSION, "recipe": dataclasses.asdict(self.recipe),
                "test_accuracy": self.test_accuracy}
        arrays = dict(self.weights)
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
        return _npz_bytes(arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Classifier:
        """The classifier stored by :meth:`to_bytes`; ValueError if the bytes are not such a file."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"].item()))
                weights = {k: np.array(npz[k]) for k in _WEIGHT_NAMES}
            recipe = Recipe(**meta["recipe"])
            expected = init_weights(recipe, 0)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise ValueError(f"not a classifier file ({type(exc).__name__}: {exc})") from None
        if meta.get("version") != ARCHITECTURE_VERSION:
            raise ValueError(f"classifier file of another version: {meta.get('version')!r}")
        for k in _WEIGHT_NAMES:
            if weights[k].shape != expected[k].shape or weights[k].dtype != np.float32:
                raise ValueError(f"classifier file: {k} has shape {weights[k].shape} dtype {weights[k].dtype}, "
                                 f"expected {expected[k].shape} float32")
            if not bool(np.isfinite(weights[k]).all()):
                raise ValueError(f"classifier file: {k} has non-finite values")
        return cls(weights, recipe, meta["test_accuracy"], str(meta["key"]))


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz of ``arrays`` (sorted names) with fixed zip timestamps: the same bytes every time."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            array = np.asarray(arrays[name])
            if not array.flags.c_contiguous:
                array = np.ascontiguousarray(array)  # (not for 0-d arrays: it would make them 1-d)
            np.lib.format.write_array(member, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


# ---- training ------------------------------------------------------------------------------------

def _shift_batch(x: np.ndarray, offsets: np.ndarray, shift: int) -> np.ndarray:
    """Each image x[i] (B, H, W) moved by offsets[i] = (dy, dx) in -shift..shift pixels, zero fill."""
    b, h, w = x.shape
    xp = np.zeros((b, h + 2 * shift, w + 2 * shift), dtype=x.dtype)
    xp[:, shift : shift + h, shift : shift + w] = x
    out = np.empty_like(x)
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            sel = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            if sel.any():
                out[sel] = xp[sel, shift - dy : shift - dy + h, shift - dx : shift - dx + w]
    return out


def train_weights(train_x, train_y, recipe: Recipe, seed: int = 0) -> dict[str, np.ndarray]:
    """Train the network on (train_x, train_y) with ``recipe`` (module docstring); the float32 weights."""
    x = _as_images(train_x, recipe.image_size, "train_x")
    y = np.asarray(train_y, dtype=np.int64)
    n = x.shape[0]
    bs = recipe.batch_size
    if y.shape != (n,) or bool(np.any(y < 0)) or bool(np.any(y >= N_CLASSES)):
        raise ValueError(f"train_y must be (N,) labels in 0..{N_CLASSES - 1}")
    if n < bs:
        raise ValueError(f"{n} training images is fewer than one batch ({bs})")
    with one_blas_thread():
        return _train(x, y, recipe, int(seed))


def _train(x: np.ndarray, y: np.ndarray, recipe: Recipe, seed: int) -> dict[str, np.ndarray]:
    """The training loop of :func:`train_weights` (checked inputs)."""
    n = x.shape[0]
    bs = recipe.batch_size
    wts = init_weights(recipe, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    steps_per_epoch = n // bs
    total = steps_per_epoch * recipe.epochs
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    m = {k: np.zeros_like(w) for k, w in wts.items()}  # Adam's moments
    v = {k: np.zeros_like(w) for k, w in wts.items()}
    eye = np.eye(N_CLASSES, dtype=np.float32)
    t = 0
    for _ in range(recipe.epochs):
        perm = rng.permutation(n)
        offsets = rng.integers(-recipe.shift, recipe.shift + 1, size=(n, 2)) if recipe.shift else None
        for s in range(steps_per_epoch):
            idx = perm[s * bs : (s + 1) * bs]
            xb = x[idx]
            if offsets is not None:
                xb = _shift_batch(xb, offsets[idx], recipe.shift)
            logits, _, cache = _forward(wts, xb, recipe, keep=True)
            dlogits = (_softmax64(logits) - eye[y[idx]]).astype(np.float32) / np.float32(bs)
            grads = _backward(wts, dlogits, cache, recipe)
            t += 1
            lr = recipe.lr * 0.5 * (1.0 + math.cos(math.pi * (t - 1) / total))
            step = np.float32(lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t))
            for k in _WEIGHT_NAMES:
                gk = grads[k]
                m[k] *= np.float32(beta1)
                m[k] += np.float32(1.0 - beta1) * gk
                v[k] *= np.float32(beta2)
                v[k] += np.float32(1.0 - beta2) * (gk * gk)
                wts[k] -= step * m[k] / (np.sqrt(v[k]) + np.float32(eps))
    return wts


def cache_key(data, recipe: Recipe, seed: int = 0) -> str:
    """SHA-256 (hex) of the data's content_sha256, ARCHITECTURE_VERSION, the recipe and the seed."""
    payload = {"data": str(data.content_sha256), "version": ARCHITECTURE_VERSION,
               "recipe": dataclasses.asdict(recipe), "seed": int(seed)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def _image_size(data) -> int:
    size = getattr(data, "image_size", None)
    return int(size) if size is not None else int(np.asarray(data.train_x).shape[1])


def train_classifier(data, *, seed: int = 0, recipe: Recipe | None = None) -> Classifier:
    """Train on data.train_x / train_y (only), measure the accuracy on data.test_x / test_y.

    ``data``: anything with train_x, train_y, test_x, test_y (and content_sha256, image_size if
    present; val_x / val_y are not used). ``recipe``: :func:`recipe_for` the image size by default.
    """
    recipe = recipe or recipe_for(_image_size(data))
    wts = train_weights(data.train_x, data.train_y, recipe, seed)
    key = cache_key(data, recipe, seed) if hasattr(data, "content_sha256") else ""
    clf = Classifier(wts, recipe, key=key)
    clf.test_accuracy = clf.accuracy(data.test_x, data.test_y)
    return clf


def default_cache_dir() -> Path:
    """``$GANREPRO_CACHE`` or ``~/.cache/ganrepro``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ganrepro")


def cache_path(data, cache_dir=None, *, seed: int = 0, recipe: Recipe | None = None) -> Path:
    """``<cache_dir>/classifier-<key>.npz`` for this data set, recipe and seed."""
    recipe = recipe or recipe_for(_image_size(data))
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder / f"classifier-{cache_key(data, recipe, seed)}.npz"


def load_or_train(data, cache_dir=None, *, seed: int = 0, recipe: Recipe | None = None) -> Classifier:
    """The cached classifier of ``data`` (by :func:`cache_key`), trained and cached first if absent.

    A cached file that cannot be read back as this key's classifier is retrained and replaced
    (RuntimeWarning naming the file and the reason). Never downloads anything.
    """
    recipe = recipe or recipe_for(_image_size(data))
    path = cache_path(data, cache_dir, seed=seed, recipe=recipe)
    key = cache_key(data, recipe, seed)
    if path.is_file():
        try:
            clf = Classifier.from_bytes(path.read_bytes())
            if clf.key != key or clf.recipe != recipe:
                raise ValueError(f"it holds key {clf.key[:12]}..., expected {key[:12]}...")
            return clf
        except (OSError, ValueError) as exc:
            warnings.warn(f"classifier cache {path} is unusable ({exc}); retraining", RuntimeWarning, stacklevel=2)
    clf = train_classifier(data, seed=seed, recipe=recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, clf.to_bytes())
    return clf


def check_accuracy(classifier: Classifier, dataset: str) -> None:
    """ValueError unless classifier.test_accuracy >= MIN_ACCURACY[dataset]."""
    need = MIN_ACCURACY[dataset]
    if not classifier.test_accuracy >= need:
        raise ValueError(f"the {dataset} classifier's test accuracy {classifier.test_accuracy:.4f} is below {need}")
