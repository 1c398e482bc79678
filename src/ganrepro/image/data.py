"""The image track's data sets (docs/images.md#data-sets): loading, checking and splitting them.

Framework-free (NumPy; scikit-learn for ``digits8``, imported only when that set is loaded).

Data sets and pixels:

    digits8        sklearn.datasets.load_digits(): 1,797 images 8x8, values 0..16;  x = v / 16
    mnist          the four IDX files of LeCun, Cortes and Burges, 70,000 images 28x28;  x = byte / 255
    fashion-mnist  the four IDX files of Xiao, Rasul and Vollgraf, 70,000 images 28x28;  x = byte / 255

Every x is computed in float64 (``astype(float64)`` then one division), so it lies in [0, 1]; labels
are int64 in 0..9. An ``ImageData``'s arrays are read-only (loaded sets are cached per process and
shared).

Splits (fixed, independent of seeds):

    digits8   p = default_rng(SeedSequence([4, 8])).permutation(1797);
              test = p[:300], validation = p[300:600], train = p[600:] (1,197), in p's order
    28x28     train = the first 50,000 images of the training file, validation = its last 10,000,
              test = the 10,000 of the test file, in file order

IDX files (``read_idx``): a 4-byte big-endian magic ``0x0000TTNN`` (TT the type, NN the number of
dimensions), NN big-endian uint32 dimensions, then the values, row-major. Only unsigned bytes are
used: ``0x00000801`` (labels, 1 dimension) and ``0x00000803`` (images, 3 dimensions). A file is read
raw or gzipped, told apart by its first two bytes (gzip's magic ``1f 8b``), never by its name; the
file size must equal ``4 + 4 NN + prod(dims)`` exactly.

Where the 28x28 files are looked for: ``data_dir``, else the environment variable
``GANREPRO_DATA_DIR``; each of ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` raw, or with ``.gz`` when the raw file is
absent. Each file is checked before use, in this order: the gzip stream, the IDX magic and size,
the header's dimensions against the expected ones (training file 60,000, test file 10,000 images,
28 x 28; as many labels, each 0..9), then the checksum table :data:`CHECKSUMS`. A file passes the
checksum if it is gzipped and the MD5 of the file as it is matches the ``.gz`` MD5 published with
the data set, or if the SHA-256 of its decompressed IDX bytes matches the table's (which does not
depend on how, or whether, the file was compressed). Any failure raises :class:`DataError` (exit
code 2), one line naming the file and what was expected.

Where the checksums come from:

- ``.gz`` MD5s: published with the data sets and listed by torchvision (``torchvision/datasets/
  mnist.py``, ``MNIST.resources`` and ``FashionMNIST.resources``); Fashion-MNIST's also in its
  README (github.com/zalandoresearch/fashion-mnist, "Get the Data").
- Fashion-MNIST decompressed SHA-256: computed from Debian's package ``dataset-fashion-mnist``
  (0.0~git20200523.55506a9-1, ``/usr/share/datasets/fashion-mnist``; Debian re-gzips the files, so
  their ``.gz`` MD5s differ from the published ones); the same four values are listed by
  independent third-party projects that derived them from archives with the published MD5s.
- MNIST decompressed SHA-256: the dataset's authors publish no checksums and no dataset registry
  lists these; the values are the ones that many independent public projects (data-fetch scripts
  pinning the files they decompressed from the ossci / CVDF mirrors, whose ``.gz`` files carry the
  published MD5s) agree on. No copy of MNIST was at hand to recompute them offline. A wrong value
  could only refuse a genuine raw file; the ``.gz`` files as distributed pass by their MD5 anyway.

``content_sha256`` (the classifier cache's key): SHA-256 over, for each split array in the order
train_x, train_y, val_x, val_y, test_x, test_y, the line ``"<field> <dtype.str> <d0>x<d1>...\\n"``
followed by the array's C-order bytes (``<f8`` images, ``<i8`` labels). It depends only on the
arrays, so the same files give the same value however they were compressed.

``download`` fetches the four ``.gz`` files (MNIST from the ossci-datasets mirror that torchvision
uses, Fashion-MNIST from its publishers' address), checks each one's MD5 before writing it, and
writes it atomically (``ganrepro.files.write_bytes_atomic``): a corrupt download is never written.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import importlib
import io
import math
import os
import shlex
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import EnvironmentFault, UsageError
from ..files import write_bytes_atomic

DATASETS = ("digits8", "mnist", "fashion-mnist")
IMAGE_SIZE = {"digits8": 8, "mnist": 28, "fashion-mnist": 28}
NUM_CLASSES = 10
IDX_DATASETS = ("mnist", "fashion-mnist")
"""The data sets read from IDX files (``--data-dir``)."""
TITLE = {"digits8": "digits8", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
DATA_DIR_ENV = "GANREPRO_DATA_DIR"

# ---- digits8 -------------------------------------------------------------------------------------
DIGITS8_COUNT = 1797
DIGITS8_LEVELS = 16
"""load_digits' values are 0..16 (17 grey levels); x = value / 16."""
DIGITS8_SEED = (4, 8)
DIGITS8_TEST = 300
DIGITS8_VALIDATION = 300

# ---- the 28x28 IDX sets --------------------------------------------------------------------------
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
TRAIN_FILE_COUNT = 60_000
TEST_FILE_COUNT = 10_000
VALIDATION_COUNT = 10_000
"""The last VALIDATION_COUNT images of the training file; the first TRAIN_FILE_COUNT - VALIDATION_COUNT train."""
IDX_SIDE = 28

MAGIC_LABELS = 0x00000801
MAGIC_IMAGES = 0x00000803
GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 64 * 2**20
"""No IDX file of these sets is larger (the biggest has 47,040,016 bytes); a larger one is refused
before it is read or decompressed in full."""
MAX_DOWNLOAD_BYTES = 64 * 2**20
DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Checksums:
    """One file's checksums: the MD5 of the ``.gz`` file as distributed, and the SHA-256 of the
    decompressed IDX bytes (None where no trustworthy value is known)."""

    gz_md5: str
    idx_sha256: str | None


CHECKSUMS: dict[str, dict[str, Checksums]] = {
    "mnist": {
        TRAIN_IMAGES: Checksums("f68b3c2dcbeaaa9fbdd348bbdeb94873",
                                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        TRAIN_LABELS: Checksums("d53e105ee54ea40749a09fcbcd1e9432",
                                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        TEST_IMAGES: Checksums("9fb629c4189551a2d022fa330f9573f3",
                               "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        TEST_LABELS: Checksums("ec29112dd5afa0611ce80d1b7f02629c",
                               "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    },
    "fashion-mnist": {
        TRAIN_IMAGES: Checksums("8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        TRAIN_LABELS: Checksums("25c81989df183df01b3e8a0aad5dffbe",
                                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        TEST_IMAGES: Checksums("bef4ecab320f06d8554ea6380940ec79",
                               "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        TEST_LABELS: Checksums("bb300cfdad3c16e7a12a480ee83cd310",
                               "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
}
"""Data set -> IDX file (without ``.gz``) -> its checksums; sources in the module docstring."""

DOWNLOAD_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
"""Where ``download`` fetches ``<file>.gz`` from (plain http for Fashion-MNIST, its publishers'
address: every file's MD5 is checked before it is written)."""


class DataError(UsageError):
    """A data set that cannot be used (exit 2): unknown name, no data folder, a missing, damaged or
    unexpected file. One line naming the file (its full path) and what was expected."""


@dataclass(frozen=True, eq=False)
class ImageData:
    """A loaded data set, split. ``*_x``: float64 (N, H, W) in [0, 1]; ``*_y``: int64 (N,) in 0..9.

    ``sources``: one line per file read and how it was verified (informational; not part of
    ``content_sha256``).
    """

    name: str
    image_size: int
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    sources: tuple[str, ...] = ()

    SPLIT_FIELDS = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")

    @cached_property
    def content_sha256(self) -> str:
        """SHA-256 over the six split arrays (the formula is in the module docstring)."""
        return content_sha256([(f, getattr(self, f)) for f in self.SPLIT_FIELDS])

    @property
    def split_sizes(self) -> dict[str, int]:
        """{"train": N, "validation": N, "test": N}."""
        return {"train": len(self.train_x), "validation": len(self.val_x), "test": len(self.test_x)}


def content_sha256(arrays: list[tuple[str, np.ndarray]]) -> str:
    """SHA-256 over ``(label, array)`` pairs: per pair ``"<label> <dtype.str> <shape>\\n"`` then the C-order bytes."""
    h = hashlib.sha256()
    for label, array in arrays:
        a = np.ascontiguousarray(array)
        h.update(f"{label} {a.dtype.str} {'x'.join(map(str, a.shape))}\n".encode("ascii"))
        h.update(a.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


# ---- IDX files -----------------------------------------------------------------------------------

def _read_file(path: Path) -> bytes:
    """The bytes of ``path``; DataError if it is missing, not a file, or too large to be an IDX file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    if not path.is_file():
        raise DataError(f"{path}: not a regular file; expected an IDX file, raw or .gz")
    if size > MAX_IDX_BYTES:
        raise DataError(f"{path}: {size} bytes, too long for an IDX file of these data sets "
                        f"(at most {MAX_IDX_BYTES} bytes)")
    return path.read_bytes()


def _gunzip(path: Path, data: bytes) -> bytes:
    """Decompress gzip ``data`` (all members); DataError naming ``path`` if it is corrupt or too long."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{path}: corrupt gzip data ({reason}); expected a complete gzip stream holding "
                        "an IDX file") from None
    if len(out) > MAX_IDX_BYTES:
        raise DataError(f"{path}: decompresses to more than {MAX_IDX_BYTES} bytes, too long for an IDX file "
                        "of these data sets")
    return out


def _idx_bytes(path: Path, data: bytes) -> tuple[bytes, bool]:
    """(the IDX bytes, whether ``data`` was gzipped): gzip is told by its magic bytes, not by the name."""
    if data[:2] == GZIP_MAGIC:
        return _gunzip(path, data), True
    return data, False


def _parse_idx(path: Path, data: bytes, gzipped: bool = False) -> np.ndarray:
    """The uint8 array (read-only) of IDX bytes ``data``; DataError naming ``path`` on a bad magic or size."""
    what = "decompressed IDX data" if gzipped else "IDX file"
    if len(data) < 4:
        raise DataError(f"{path}: {what} of {len(data)} bytes, too short for the 4-byte IDX magic "
                        f"(expected 0x{MAGIC_LABELS:08x} labels or 0x{MAGIC_IMAGES:08x} images)")
    (magic,) = struct.unpack(">I", data[:4])
    if magic not in (MAGIC_LABELS, MAGIC_IMAGES):
        raise DataError(f"{path}: bad IDX magic 0x{magic:08x}; expected 0x{MAGIC_LABELS:08x} (labels, unsigned "
                        f"bytes, 1 dimension) or 0x{MAGIC_IMAGES:08x} (images, unsigned bytes, 3 dimensions)")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated {what}: {len(data)} bytes, shorter than its {header}-byte header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    count = math.prod(dims)
    expected = header + count
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "too long"
        raise DataError(f"{path}: {state} {what}: {len(data)} bytes; its header ({' x '.join(map(str, dims))} "
                        f"unsigned bytes) needs exactly {expected}")
    return np.frombuffer(data, dtype=np.uint8, count=count, offset=header).reshape(dims)


def read_idx(path) -> np.ndarray:
    """The array stored in the IDX file ``path`` (raw or gzipped): uint8, read-only, shape from the header.

    DataError naming the file if it is missing, not gzip when it starts with gzip's magic, has a
    bad magic number, or is shorter or longer than its header says."""
    path = Path(path)
    data, gzipped = _idx_bytes(path, _read_file(path))
    return _parse_idx(path, data, gzipped)


# ---- checks of the 28x28 files -------------------------------------------------------------------

def expected_shape(filename: str) -> tuple[int, ...]:
    """The IDX dimensions ``filename`` (one of IDX_FILES) must have."""
    count = TRAIN_FILE_COUNT if filename.startswith("train") else TEST_FILE_COUNT
    return (count, IDX_SIDE, IDX_SIDE) if "images" in filename else (count,)


def _redownload_hint(name: str, data_dir: Path) -> str:
    return f"re-download it with: ganrepro data download {name} --data-dir {shlex.quote(str(data_dir))}"


def _check_checksum(name: str, filename: str, path: Path, raw: bytes, idx: bytes, gzipped: bool) -> str:
    """How ``path`` passed the checksum table (a short text); DataError if it did not."""
    sums = CHECKSUMS[name][filename]
    title = TITLE[name]
    hint = _redownload_hint(name, path.parent)
    md5 = hashlib.md5(raw).hexdigest() if gzipped else None
    if md5 is not None and md5 == sums.gz_md5:
        return f".gz MD5 {md5} (published)"
    if not gzipped and sums.idx_sha256 is None:
        raise DataError(f"{path}: a raw (uncompressed) {title} file cannot be checked: raw files are checked "
                        f"against the SHA-256 of the IDX bytes and the table has none for {title}'s {filename}; "
                        f"use the .gz file as distributed (its published MD5 {sums.gz_md5} is checked): {hint}")
    sha = hashlib.sha256(idx).hexdigest()
    if sha == sums.idx_sha256:
        return f"decompressed SHA-256 {sha}" if gzipped else f"SHA-256 {sha}"
    if md5 is not None:
        expected = f".gz MD5 {sums.gz_md5}" + (f" or decompressed sha256 {sums.idx_sha256}" if sums.idx_sha256 else "")
        raise DataError(f"{path}: .gz MD5 {md5} and decompressed sha256 {sha} do not match {title}'s checksums of "
                        f"{filename} (expected {expected}); {hint}")
    raise DataError(f"{path}: sha256 {sha} does not match {title}'s checksum of {filename} (expected "
                    f"{sums.idx_sha256}, or the .gz file with MD5 {sums.gz_md5}); {hint}")


def _check_dims(name: str, filename: str, path: Path, array: np.ndarray) -> None:
    """DataError unless ``array`` (from ``path``) has the dimensions and, for labels, the values expected."""
    shape = expected_shape(filename)
    if array.shape != shape:
        raise DataError(f"{path}: IDX header says {' x '.join(map(str, array.shape))}; expected "
                        f"{' x '.join(map(str, shape))} ({TITLE[name]}'s {filename})")
    if "labels" in filename and array.size and int(array.max()) >= NUM_CLASSES:
        raise DataError(f"{path}: label {int(array.max())} found; expected labels 0..{NUM_CLASSES - 1}")


def find_file(filename: str, data_dir: Path) -> Path:
    """``data_dir/filename`` if it exists, else ``data_dir/filename.gz``; DataError naming both if neither does."""
    for candidate in (data_dir / filename, data_dir / f"{filename}.gz"):
        if candidate.exists():
            return candidate
    raise DataError(f"{data_dir / filename}: missing (looked for it raw and as {filename}.gz in {data_dir})")


def load_idx_file(name: str, filename: str, path: Path) -> tuple[np.ndarray, str]:
    """(the uint8 array of ``path``, how its checksum passed), after every check of the module docstring."""
    raw = _read_file(path)
    idx, gzipped = _idx_bytes(path, raw)
    array = _parse_idx(path, idx, gzipped)
    _check_dims(name, filename, path, array)
    return array, _check_checksum(name, filename, path, raw, idx, gzipped)


# ---- loading -------------------------------------------------------------------------------------

_CACHE: dict[tuple, ImageData] = {}


def clear_cache() -> None:
    """Forget the data sets loaded by this process."""
    _CACHE.clear()


def check_name(name: str) -> str:
    """``name`` if it is a data set; DataError naming the allowed ones otherwise."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; allowed: {', '.join(DATASETS)}")
    return name


def resolve_data_dir(name: str, data_dir=None) -> Path:
    """The folder of ``name``'s IDX files: ``data_dir``, else $GANREPRO_DATA_DIR; DataError if neither is a folder."""
    text = os.fspath(data_dir) if data_dir is not None else os.environ.get(DATA_DIR_ENV, "")
    source = "--data-dir" if data_dir is not None else DATA_DIR_ENV
    if not str(text).strip():
        raise DataError(f"{name} is read from its four IDX files: pass --data-dir DIR (or set {DATA_DIR_ENV}); "
                        f"'ganrepro data download {name} --data-dir DIR' fetches them")
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"{source} {str(path)!r}: no such folder; expected the folder of {name}'s four IDX files")
    if not path.is_dir():
        raise DataError(f"{source} {str(path)!r}: not a folder; expected the folder of {name}'s four IDX files")
    return path.resolve()


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _make(name: str, arrays: dict[str, np.ndarray], sources: tuple[str, ...]) -> ImageData:
    """An ImageData of float64 '<f8' images and int64 '<i8' labels, all read-only."""
    fixed = {k: _readonly(np.ascontiguousarray(v, dtype="<f8" if k.endswith("_x") else "<i8"))
             for k, v in arrays.items()}
    return ImageData(name=name, image_size=IMAGE_SIZE[name], sources=sources, **fixed)


def digits8_permutation() -> np.ndarray:
    """The fixed permutation of digits8's 1,797 indices: first 300 test, next 300 validation, rest train."""
    return np.random.default_rng(np.random.SeedSequence(list(DIGITS8_SEED))).permutation(DIGITS8_COUNT)


def _load_digits8() -> ImageData:
    """digits8 from scikit-learn's bundled copy, scaled by 1/16 in float64 and split by the fixed permutation."""
    try:
        datasets = importlib.import_module("sklearn.datasets")
    except ImportError:
        raise DataError("digits8 needs scikit-learn (pip install scikit-learn; a dependency of ganrepro)") from None
    bunch = datasets.load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)
    labels = np.asarray(bunch.target, dtype=np.int64)
    if images.shape != (DIGITS8_COUNT, 8, 8) or images.min() < 0 or images.max() > DIGITS8_LEVELS:
        raise DataError(f"sklearn.datasets.load_digits(): images {images.shape}, values {images.min()}.."
                        f"{images.max()}; expected ({DIGITS8_COUNT}, 8, 8) with values 0..{DIGITS8_LEVELS}")
    x = images / DIGITS8_LEVELS
    p = digits8_permutation()
    test, val, train = (p[:DIGITS8_TEST], p[DIGITS8_TEST:DIGITS8_TEST + DIGITS8_VALIDATION],
                        p[DIGITS8_TEST + DIGITS8_VALIDATION:])
    version = getattr(importlib.import_module("sklearn"), "__version__", "?")
    return _make("digits8", {"train_x": x[train], "train_y": labels[train], "val_x": x[val], "val_y": labels[val],
                             "test_x": x[test], "test_y": labels[test]},
                 (f"sklearn.datasets.load_digits() (scikit-learn {version})",))


def _load_idx_set(name: str, paths: dict[str, Path]) -> ImageData:
    """A 28x28 set from its four checked files: train / validation from the training file, test from the test file."""
    arrays, sources = {}, []
    for filename, path in paths.items():
        arrays[filename], how = load_idx_file(name, filename, path)
        sources.append(f"{path}: {how}")
    n_train = TRAIN_FILE_COUNT - VALIDATION_COUNT
    train_x = arrays[TRAIN_IMAGES].astype(np.float64) / 255.0
    train_y = arrays[TRAIN_LABELS].astype(np.int64)
    test_x = arrays[TEST_IMAGES].astype(np.float64) / 255.0
    test_y = arrays[TEST_LABELS].astype(np.int64)
    return _make(name, {"train_x": train_x[:n_train], "train_y": train_y[:n_train], "val_x": train_x[n_train:],
                        "val_y": train_y[n_train:], "test_x": test_x, "test_y": test_y}, tuple(sources))


def load_dataset(name: str, data_dir=None) -> ImageData:
    """The data set ``name``, split (docs/images.md#splits); cached per process.

    ``digits8`` needs no files (``data_dir`` is ignored). The 28x28 sets are read from ``data_dir``,
    else ``$GANREPRO_DATA_DIR``, and every file is checked first (module docstring). The cache key is
    the name and each file's resolved path, size and modification time, so a replaced file is read
    again."""
    check_name(name)
    if name == "digits8":
        key: tuple = (name,)
        if key not in _CACHE:
            _CACHE[key] = _load_digits8()
        return _CACHE[key]
    folder = resolve_data_dir(name, data_dir)
    paths = {filename: find_file(filename, folder).resolve() for filename in IDX_FILES}
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths.values()]
    key = (name, *stats)
    if key not in _CACHE:
        _CACHE[key] = _load_idx_set(name, paths)
    return _CACHE[key]


# ---- downloading ---------------------------------------------------------------------------------

def _fetch(url: str, urlopen: Callable) -> bytes:
    """The body at ``url`` (at most MAX_DOWNLOAD_BYTES); EnvironmentFault naming the address if it fails."""
    try:
        with urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            body = response.read(MAX_DOWNLOAD_BYTES + 1)
    except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError and timeouts are OSErrors
        reason = " ".join(str(getattr(exc, "reason", None) or exc).split())
        raise EnvironmentFault(f"could not download {url}: {reason}") from None
    if len(body) > MAX_DOWNLOAD_BYTES:
        raise DataError(f"{url}: more than {MAX_DOWNLOAD_BYTES} bytes; no file of these data sets is that large")
    return bytes(body)


def download(name: str, data_dir, *, urlopen: Callable | None = None,
             log: Callable[[str], None] | None = None) -> list[Path]:
    """Fetch ``name``'s four ``.gz`` files into ``data_dir`` (created if needed); the paths written.

    Each file's MD5 is checked before it is written (atomically), so a corrupt download is never
    written: DataError naming the address, the MD5 received and the one expected (files fetched
    before it stay, they passed). A ``.gz`` already there with the published MD5 is kept, not
    fetched again. ``digits8`` ships with scikit-learn: nothing to download (``log`` says so and the
    list is empty). ``urlopen``: ``urllib.request.urlopen`` by default (tests pass a fake);
    ``log``: called with one line per file."""
    check_name(name)
    say = log or (lambda line: None)
    if name not in IDX_DATASETS:
        say(f"{name} ships with scikit-learn (sklearn.datasets.load_digits): nothing to download")
        return []
    if urlopen is None:
        from urllib.request import urlopen as default_urlopen

        urlopen = default_urlopen
    folder = Path(os.fspath(data_dir)).expanduser()
    if folder.exists() and not folder.is_dir():
        raise DataError(f"--data-dir {str(folder)!r}: not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for filename in IDX_FILES:
        target = folder / f"{filename}.gz"
        expected = CHECKSUMS[name][filename].gz_md5
        if target.is_file() and hashlib.md5(target.read_bytes()).hexdigest() == expected:
            say(f"{target}: already there, MD5 {expected} as published")
            continue
        url = DOWNLOAD_URLS[name] + f"{filename}.gz"
        say(f"downloading {url}")
        body = _fetch(url, urlopen)
        md5 = hashlib.md5(body).hexdigest()
        if md5 != expected:
            raise DataError(f"{url}: downloaded {len(body)} bytes with MD5 {md5}; expected {TITLE[name]}'s published "
                            f"MD5 {expected}; nothing written to {target}; try again later")
        write_bytes_atomic(target, body)
        written.append(target)
    return written
