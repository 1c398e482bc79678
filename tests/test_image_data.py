"""The image data sets (ganrepro.image.data, docs/images.md#data-sets) and ``ganrepro data``.

Offline throughout: the IDX loaders run on small files written here (raw and gzipped), with the
checksum table and the expected counts patched to fit them; digits8 comes from scikit-learn's
bundled copy; the real Fashion-MNIST files are read where Debian's ``dataset-fashion-mnist`` is
installed (skipped elsewhere); ``download`` runs against a fake ``urlopen``.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import struct
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from ganrepro.cli import data as cli_data
from ganrepro.errors import EXIT_USAGE, EnvironmentFault, UsageError
from ganrepro.image import data
from ganrepro.image.data import DataError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
TRAIN_N, TEST_N, VAL_N, SIDE = 12, 5, 4, 3
"""The synthetic sets' sizes: a training file of 12 images (8 train, 4 validation), a test file of 5, 3x3."""


# ---- helpers -------------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    """IDX bytes of a uint8 array of 1 or 3 dimensions."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x800 | array.ndim
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def gz(raw: bytes, mtime: int = 0) -> bytes:
    return gzip.compress(raw, mtime=mtime)


def synthetic_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        data.TRAIN_IMAGES: rng.integers(0, 256, (TRAIN_N, SIDE, SIDE), dtype=np.uint8),
        data.TRAIN_LABELS: rng.integers(0, 10, TRAIN_N, dtype=np.uint8),
        data.TEST_IMAGES: rng.integers(0, 256, (TEST_N, SIDE, SIDE), dtype=np.uint8),
        data.TEST_LABELS: rng.integers(0, 10, TEST_N, dtype=np.uint8),
    }


def write_set(folder: Path, arrays: dict[str, np.ndarray], gzipped: bool, mtime: int = 0) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for filename, array in arrays.items():
        raw = idx_bytes(array)
        path = folder / (f"{filename}.gz" if gzipped else filename)
        path.write_bytes(gz(raw, mtime) if gzipped else raw)
        paths[filename] = path
    return paths


@pytest.fixture(autouse=True)
def fresh_cache():
    data.clear_cache()
    yield
    data.clear_cache()


@pytest.fixture
def small(monkeypatch):
    """Patch the expected counts and mnist's checksums to fit ``synthetic_arrays()``; return those arrays."""
    arrays = synthetic_arrays()
    monkeypatch.setattr(data, "TRAIN_FILE_COUNT", TRAIN_N)
    monkeypatch.setattr(data, "TEST_FILE_COUNT", TEST_N)
    monkeypatch.setattr(data, "VALIDATION_COUNT", VAL_N)
    monkeypatch.setattr(data, "IDX_SIDE", SIDE)
    table = {f: data.Checksums(hashlib.md5(gz(idx_bytes(a))).hexdigest(), hashlib.sha256(idx_bytes(a)).hexdigest())
             for f, a in arrays.items()}
    monkeypatch.setitem(data.CHECKSUMS, "mnist", table)
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    return arrays


def assert_one_line(exc_info, *parts: str) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


# ---- read_idx ------------------------------------------------------------------------------------

def test_read_idx_raw_and_gzip_by_magic_not_suffix(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    (tmp_path / "images").write_bytes(gz(idx_bytes(images)))  # gzipped, no .gz suffix
    (tmp_path / "labels.gz").write_bytes(idx_bytes(labels))  # raw, with a .gz suffix
    got_images = data.read_idx(tmp_path / "images")
    got_labels = data.read_idx(str(tmp_path / "labels.gz"))
    assert got_images.dtype == np.uint8 and got_images.shape == (2, 3, 4)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_read_idx_reads_multi_member_gzip(tmp_path):
    raw = idx_bytes(np.arange(10, dtype=np.uint8))
    (tmp_path / "f").write_bytes(gz(raw[:7]) + gz(raw[7:]))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "f"), np.arange(10))


@pytest.mark.parametrize("case", ["missing", "empty", "bad magic", "signed magic", "truncated", "too long",
                                  "truncated header", "truncated gzip", "corrupt gzip"])
def test_read_idx_errors_name_the_file_and_what_was_expected(tmp_path, case):
    raw = idx_bytes(np.zeros((4, 2, 2), dtype=np.uint8))  # 16-byte header + 16 bytes
    contents = {
        "empty": b"",
        "bad magic": b"\x12\x34\x56\x78" + raw[4:],
        "signed magic": b"\x00\x00\x09\x03" + raw[4:],
        "truncated": raw[:-1],
        "too long": raw + b"\x00",
        "truncated header": raw[:10],
        "truncated gzip": gz(raw)[:-12],
        "corrupt gzip": b"\x1f\x8b" + b"\x00" * 30,
    }
    path = tmp_path / "file-idx3-ubyte"
    if case != "missing":
        path.write_bytes(contents[case])
    with pytest.raises(DataError) as exc_info:
        data.read_idx(path)
    expected = {"missing": "no such file", "empty": "0x00000803", "bad magic": "0x00000801",
                "signed magic": "bad IDX magic 0x00000903", "truncated": "needs exactly 32",
                "too long": "needs exactly 32", "truncated header": "16-byte header",
                "truncated gzip": "gzip", "corrupt gzip": "gzip"}[case]
    assert_one_line(exc_info, str(path), expected)
    assert isinstance(exc_info.value, UsageError) and exc_info.value.exit_code == EXIT_USAGE


def test_read_idx_refuses_a_file_too_large_before_reading_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MAX_IDX_BYTES", 100)
    raw = idx_bytes(np.zeros(1000, dtype=np.uint8))
    path = tmp_path / "big"
    path.write_bytes(raw)
    with pytest.raises(DataError) as exc_info:
        data.read_idx(path)
    assert_one_line(exc_info, str(path), "at most 100 bytes")
    path.write_bytes(gz(raw))  # small compressed, large decompressed
    assert path.stat().st_size < 100
    with pytest.raises(DataError) as exc_info:
        data.read_idx(path)
    assert_one_line(exc_info, str(path), "decompresses to more than 100 bytes")


# ---- the 28x28 loaders on small synthetic files ---------------------------------------------------

@pytest.mark.parametrize("gzipped", [False, True], ids=["raw", "gz"])
def test_load_small_set_splits_and_scales(tmp_path, small, gzipped):
    write_set(tmp_path, small, gzipped)
    d = data.load_dataset("mnist", tmp_path)
    n_train = TRAIN_N - VAL_N
    assert d.name == "mnist" and d.image_size == 28
    assert d.split_sizes == {"train": n_train, "validation": VAL_N, "test": TEST_N}
    expect_train = small[data.TRAIN_IMAGES].astype(np.float64) / 255.0
    np.testing.assert_array_equal(d.train_x, expect_train[:n_train])
    np.testing.assert_array_equal(d.val_x, expect_train[n_train:])
    np.testing.assert_array_equal(d.test_x, small[data.TEST_IMAGES].astype(np.float64) / 255.0)
    np.testing.assert_array_equal(d.train_y, small[data.TRAIN_LABELS][:n_train])
    np.testing.assert_array_equal(d.val_y, small[data.TRAIN_LABELS][n_train:])
    np.testing.assert_array_equal(d.test_y, small[data.TEST_LABELS])
    for name in ("train_x", "val_x", "test_x"):
        a = getattr(d, name)
        assert a.dtype == np.float64 and a.shape[1:] == (SIDE, SIDE) and 0.0 <= a.min() and a.max() <= 1.0
        assert not a.flags.writeable
    for name in ("train_y", "val_y", "test_y"):
        assert getattr(d, name).dtype == np.int64 and not getattr(d, name).flags.writeable
    how = "MD5" if gzipped else "SHA-256"
    assert len(d.sources) == 4 and all(how in line for line in d.sources)


def test_content_sha256_is_the_same_however_the_files_were_compressed(tmp_path, small):
    write_set(tmp_path / "raw", small, gzipped=False)
    write_set(tmp_path / "gz", small, gzipped=True)
    write_set(tmp_path / "regz", small, gzipped=True, mtime=12345)  # other .gz bytes: passes by SHA-256
    hashes = set()
    for sub in ("raw", "gz", "regz"):
        d = data.load_dataset("mnist", tmp_path / sub)
        hashes.add(d.content_sha256)
    assert len(hashes) == 1
    regz = data.load_dataset("mnist", tmp_path / "regz")
    assert all("decompressed SHA-256" in line for line in regz.sources)
    d = data.load_dataset("mnist", tmp_path / "raw")
    changed = data.content_sha256([(f, getattr(d, f)) for f in d.SPLIT_FIELDS[:-1]]
                                  + [("test_y", (d.test_y + 1) % 10)])
    assert changed != d.content_sha256


def test_content_sha256_formula():
    x = np.array([[0.5, 1.0]])
    y = np.array([3], dtype=np.int64)
    expected = hashlib.sha256(b"x <f8 1x2\n" + x.tobytes() + b"y <i8 1\n" + y.tobytes()).hexdigest()
    assert data.content_sha256([("x", x), ("y", y)]) == expected


def test_raw_file_is_preferred_and_gz_used_when_raw_is_absent(tmp_path, small):
    write_set(tmp_path, small, gzipped=True)
    raw_train = tmp_path / data.TRAIN_IMAGES
    raw_train.write_bytes(idx_bytes(small[data.TRAIN_IMAGES]))
    d = data.load_dataset("mnist", tmp_path)
    assert any(line.startswith(f"{raw_train}:") for line in d.sources)
    assert any(line.startswith(f"{tmp_path / data.TEST_IMAGES}.gz:") for line in d.sources)


@pytest.mark.parametrize("gzipped", [False, True], ids=["raw", "gz"])
def test_wrong_checksum_names_the_file_and_how_to_fix_it(tmp_path, small, gzipped):
    tampered = dict(small)
    tampered[data.TEST_IMAGES] = small[data.TEST_IMAGES].copy()
    tampered[data.TEST_IMAGES][0, 0, 0] ^= 1
    paths = write_set(tmp_path, tampered, gzipped)
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("mnist", tmp_path)
    sums = data.CHECKSUMS["mnist"][data.TEST_IMAGES]
    assert_one_line(exc_info, str(paths[data.TEST_IMAGES]), sums.idx_sha256, "MNIST",
                    f"ganrepro data download mnist --data-dir {tmp_path}")
    if gzipped:
        assert sums.gz_md5 in str(exc_info.value)


def test_raw_file_without_a_sha256_in_the_table_is_refused_with_advice(tmp_path, small, monkeypatch):
    table = dict(data.CHECKSUMS["mnist"])
    table[data.TRAIN_LABELS] = data.Checksums(table[data.TRAIN_LABELS].gz_md5, None)
    monkeypatch.setitem(data.CHECKSUMS, "mnist", table)
    paths = write_set(tmp_path, small, gzipped=False)
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("mnist", tmp_path)
    assert_one_line(exc_info, str(paths[data.TRAIN_LABELS]), "raw (uncompressed)", "use the .gz file",
                    table[data.TRAIN_LABELS].gz_md5)
    data.clear_cache()
    write_set(tmp_path / "gz", small, gzipped=True)  # the .gz as distributed passes by its MD5
    assert data.load_dataset("mnist", tmp_path / "gz").split_sizes["test"] == TEST_N


def test_missing_file_is_named(tmp_path, small):
    write_set(tmp_path, small, gzipped=True)
    (tmp_path / f"{data.TRAIN_LABELS}.gz").unlink()
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("mnist", tmp_path)
    assert_one_line(exc_info, str(tmp_path / data.TRAIN_LABELS), "missing", ".gz")


def test_truncated_file_in_a_set_is_named(tmp_path, small):
    paths = write_set(tmp_path, small, gzipped=False)
    path = paths[data.TRAIN_IMAGES]
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("mnist", tmp_path)
    assert_one_line(exc_info, str(path), "truncated", f"needs exactly {16 + TRAIN_N * SIDE * SIDE}")


def test_header_dimensions_and_labels_are_checked(tmp_path, small, monkeypatch):
    wrong = dict(small)
    wrong[data.TEST_LABELS] = np.zeros(TEST_N + 1, dtype=np.uint8)
    paths = write_set(tmp_path / "count", wrong, gzipped=False)
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("mnist", tmp_path / "count")
    assert_one_line(exc_info, str(paths[data.TEST_LABELS]), f"header says {TEST_N + 1}", f"expected {TEST_N}")

    wrong = dict(small)
    wrong[data.TRAIN_IMAGES] = np.zeros((TRAIN_N, SIDE, SIDE + 1), dtype=np.uint8)
    paths = write_set(tmp_path / "side", wrong, gzipped=False)
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("mnist", tmp_path / "side")
    assert_one_line(exc_info, str(paths[data.TRAIN_IMAGES]), f"expected {TRAIN_N} x {SIDE} x {SIDE}")

    wrong = dict(small)
    wrong[data.TEST_LABELS] = np.full(TEST_N, 10, dtype=np.uint8)
    paths = write_set(tmp_path / "label", wrong, gzipped=False)
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("mnist", tmp_path / "label")
    assert_one_line(exc_info, str(paths[data.TEST_LABELS]), "label 10", "0..9")

    wrong = dict(small)  # images where labels belong: the magic tells
    wrong[data.TRAIN_LABELS] = np.zeros((TRAIN_N, SIDE, SIDE), dtype=np.uint8)
    paths = write_set(tmp_path / "kind", wrong, gzipped=False)
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("mnist", tmp_path / "kind")
    assert_one_line(exc_info, str(paths[data.TRAIN_LABELS]), f"expected {TRAIN_N} (MNIST's")


def test_data_dir_from_argument_or_environment(tmp_path, small, monkeypatch):
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("mnist")
    assert_one_line(exc_info, "--data-dir", data.DATA_DIR_ENV, "ganrepro data download mnist")
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("mnist", tmp_path / "nowhere")
    assert_one_line(exc_info, str(tmp_path / "nowhere"), "no such folder")
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("mnist", tmp_path / "a-file")
    assert_one_line(exc_info, "not a folder")
    write_set(tmp_path / "set", small, gzipped=True)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "set"))
    assert data.load_dataset("mnist").split_sizes["validation"] == VAL_N


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("cifar10")
    assert_one_line(exc_info, "'cifar10'", "digits8, mnist, fashion-mnist")
    with pytest.raises(DataError):
        data.download("cifar10", "/nonexistent")


def test_loaded_sets_are_cached_and_reread_when_a_file_changes(tmp_path, small):
    paths = write_set(tmp_path, small, gzipped=False)
    first = data.load_dataset("mnist", tmp_path)
    assert data.load_dataset("mnist", str(tmp_path)) is first
    assert data.load_dataset("mnist", tmp_path / "." / "") is first  # same resolved paths
    path = paths[data.TRAIN_IMAGES]
    path.write_bytes(gz(path.read_bytes()))  # same content, now gzipped (other size): read again
    second = data.load_dataset("mnist", tmp_path)
    assert second is not first and second.content_sha256 == first.content_sha256


# ---- digits8 -------------------------------------------------------------------------------------

def test_digits8_splits_values_and_determinism():
    d = data.load_dataset("digits8")
    assert d.name == "digits8" and d.image_size == 8
    assert d.split_sizes == {"train": 1197, "validation": 300, "test": 300}
    p = np.random.default_rng(np.random.SeedSequence([4, 8])).permutation(1797)
    np.testing.assert_array_equal(data.digits8_permutation(), p)
    assert len(set(p[:300]) | set(p[300:600]) | set(p[600:])) == 1797  # disjoint and complete

    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float64) / 16.0
    np.testing.assert_array_equal(d.test_x, x[p[:300]])
    np.testing.assert_array_equal(d.val_x, x[p[300:600]])
    np.testing.assert_array_equal(d.train_x, x[p[600:]])
    np.testing.assert_array_equal(d.test_y, bunch.target[p[:300]])
    np.testing.assert_array_equal(d.train_y, bunch.target[p[600:]])
    for a in (d.train_x, d.val_x, d.test_x):
        assert a.dtype == np.float64 and a.shape[1:] == (8, 8) and a.min() == 0.0 and a.max() == 1.0
        np.testing.assert_array_equal(a * 16, np.round(a * 16))  # 17 grey levels
    for y in (d.train_y, d.val_y, d.test_y):
        assert y.dtype == np.int64 and set(np.unique(y)) <= set(range(10))
    assert set(np.unique(d.train_y)) == set(range(10))

    digest = d.content_sha256
    assert data.load_dataset("digits8") is d
    data.clear_cache()
    again = data.load_dataset("digits8")
    assert again is not d and again.content_sha256 == digest and len(digest) == 64
    assert "scikit-learn" in again.sources[0]


def test_digits8_ignores_data_dir(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    assert data.load_dataset("digits8", "/nonexistent").split_sizes["train"] == 1197


# ---- the real Fashion-MNIST files (Debian's dataset-fashion-mnist) --------------------------------

def need_debian_fashion() -> None:
    if not all((DEBIAN_FASHION / f"{f}.gz").is_file() for f in data.IDX_FILES):
        pytest.skip(f"Debian's dataset-fashion-mnist is not installed ({DEBIAN_FASHION})")


def test_debian_fashion_mnist_loads_and_passes_the_checksums():
    need_debian_fashion()
    d = data.load_dataset("fashion-mnist", DEBIAN_FASHION)
    assert d.image_size == 28
    assert d.split_sizes == {"train": 50_000, "validation": 10_000, "test": 10_000}
    for a in (d.train_x, d.val_x, d.test_x):
        assert a.dtype == np.float64 and a.shape[1:] == (28, 28) and a.min() == 0.0 and a.max() == 1.0
    # Fashion-MNIST is balanced: 6,000 of each class in the training file, 1,000 in the test file
    np.testing.assert_array_equal(np.bincount(np.concatenate([d.train_y, d.val_y]), minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(d.test_y, minlength=10), [1000] * 10)
    # Debian re-gzipped the files: they pass by the SHA-256 of their decompressed bytes
    for filename, line in zip(data.IDX_FILES, d.sources, strict=True):
        sha = data.CHECKSUMS["fashion-mnist"][filename].idx_sha256
        assert line.startswith(str(DEBIAN_FASHION / filename)) and f"decompressed SHA-256 {sha}" in line
    assert len(d.content_sha256) == 64


@pytest.mark.slow
def test_debian_fashion_mnist_uncompressed_gives_the_same_content(tmp_path):
    need_debian_fashion()
    for filename in data.IDX_FILES:
        raw = gzip.decompress((DEBIAN_FASHION / f"{filename}.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == data.CHECKSUMS["fashion-mnist"][filename].idx_sha256
        (tmp_path / filename).write_bytes(raw)
    raw_set = data.load_dataset("fashion-mnist", tmp_path)
    assert all("SHA-256" in line for line in raw_set.sources)
    assert raw_set.content_sha256 == data.load_dataset("fashion-mnist", DEBIAN_FASHION).content_sha256


def test_debian_fashion_mnist_is_not_accepted_as_mnist():
    need_debian_fashion()
    with pytest.raises(DataError) as exc_info:
        data.load_dataset("mnist", DEBIAN_FASHION)
    assert_one_line(exc_info, str(DEBIAN_FASHION), "MNIST's checksums")


def test_checksum_table_is_complete_and_well_formed():
    assert set(data.CHECKSUMS) == set(data.IDX_DATASETS) == set(data.DOWNLOAD_URLS)
    for name, table in data.CHECKSUMS.items():
        assert set(table) == set(data.IDX_FILES), name
        for sums in table.values():
            assert len(sums.gz_md5) == 32 and int(sums.gz_md5, 16) >= 0
            assert sums.idx_sha256 is None or (len(sums.idx_sha256) == 64 and int(sums.idx_sha256, 16) >= 0)
    assert data.CHECKSUMS["mnist"][data.TRAIN_IMAGES].gz_md5 == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert data.CHECKSUMS["fashion-mnist"][data.TRAIN_IMAGES].gz_md5 == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert data.expected_shape(data.TRAIN_IMAGES) == (60_000, 28, 28)
    assert data.expected_shape(data.TEST_LABELS) == (10_000,)


def test_tables_agree_with_the_image_config():
    config = pytest.importorskip("ganrepro.image.config")
    assert tuple(config.DATASETS) == data.DATASETS
    assert dict(config.IMAGE_SIZE) == data.IMAGE_SIZE


def test_importing_the_data_module_loads_no_framework_and_no_scikit_learn():
    code = ("import sys, ganrepro.image.data, ganrepro.cli.data; "
            "bad = [m for m in ('torch', 'tensorflow', 'sklearn') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---- download ------------------------------------------------------------------------------------

class FakeWeb:
    """A fake ``urlopen``: serves ``pages`` (url -> bytes, or an exception to raise) and records the calls."""

    def __init__(self, pages):
        self.pages, self.calls = pages, []

    def __call__(self, url, timeout=None):
        self.calls.append(url)
        page = self.pages[url]
        if isinstance(page, BaseException):
            raise page
        return io.BytesIO(page)


@pytest.fixture
def served(monkeypatch):
    """(pages of mnist's four .gz files, the checksum table patched to their MD5s)."""
    bodies = {f: gz(idx_bytes(a)) for f, a in synthetic_arrays().items()}
    table = {f: data.Checksums(hashlib.md5(b).hexdigest(), None) for f, b in bodies.items()}
    monkeypatch.setitem(data.CHECKSUMS, "mnist", table)
    pages = {data.DOWNLOAD_URLS["mnist"] + f"{f}.gz": b for f, b in bodies.items()}
    return pages, bodies


def test_download_writes_verified_files_and_skips_good_ones(tmp_path, served):
    pages, bodies = served
    web = FakeWeb(pages)
    lines = []
    written = data.download("mnist", tmp_path / "new" / "dir", urlopen=web, log=lines.append)
    folder = tmp_path / "new" / "dir"
    assert written == [folder / f"{f}.gz" for f in data.IDX_FILES]
    for f in data.IDX_FILES:
        assert (folder / f"{f}.gz").read_bytes() == bodies[f]
    assert sorted(web.calls) == sorted(pages) and len(lines) == 4
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{f}.gz" for f in data.IDX_FILES)
    again = FakeWeb(pages)
    assert data.download("mnist", folder, urlopen=again) == [] and again.calls == []


def test_download_refuses_a_corrupt_file_and_writes_nothing_for_it(tmp_path, served):
    pages, _ = served
    bad_url = data.DOWNLOAD_URLS["mnist"] + f"{data.TEST_IMAGES}.gz"
    pages = dict(pages)
    pages[bad_url] = pages[bad_url][:-3] + b"xyz"
    with pytest.raises(DataError) as exc_info:
        data.download("mnist", tmp_path, urlopen=FakeWeb(pages))
    assert_one_line(exc_info, bad_url, hashlib.md5(pages[bad_url]).hexdigest(),
                    data.CHECKSUMS["mnist"][data.TEST_IMAGES].gz_md5)
    names = sorted(p.name for p in tmp_path.iterdir())  # the files before it stay; no temporary files
    assert names == sorted([f"{data.TRAIN_IMAGES}.gz", f"{data.TRAIN_LABELS}.gz"])


def test_download_replaces_a_bad_local_file(tmp_path, served):
    pages, bodies = served
    (tmp_path / f"{data.TRAIN_LABELS}.gz").write_bytes(b"half a file")
    data.download("mnist", tmp_path, urlopen=FakeWeb(pages))
    assert (tmp_path / f"{data.TRAIN_LABELS}.gz").read_bytes() == bodies[data.TRAIN_LABELS]


def test_downloaded_files_load(tmp_path, served, small):
    pages, _ = served
    data.download("mnist", tmp_path, urlopen=FakeWeb(pages))
    assert data.load_dataset("mnist", tmp_path).split_sizes == {"train": TRAIN_N - VAL_N, "validation": VAL_N,
                                                                 "test": TEST_N}


def test_download_network_failure_is_an_environment_fault(tmp_path, served):
    pages, _ = served
    pages = {url: urllib.error.URLError("Name or service not known") for url in pages}
    with pytest.raises(EnvironmentFault) as exc_info:
        data.download("mnist", tmp_path, urlopen=FakeWeb(pages))
    assert_one_line(exc_info, data.DOWNLOAD_URLS["mnist"], "Name or service not known")
    assert list(tmp_path.iterdir()) == []


def test_download_digits8_is_nothing_to_do(tmp_path):
    lines = []
    assert data.download("digits8", tmp_path / "unused", log=lines.append, urlopen=FakeWeb({})) == []
    assert len(lines) == 1 and "nothing to download" in lines[0]
    assert not (tmp_path / "unused").exists()


# ---- ganrepro data -------------------------------------------------------------------------------

def parse(argv):
    parser = argparse.ArgumentParser(prog="ganrepro")
    sub = parser.add_subparsers(dest="command")
    cli_data.add_parser(sub)
    return parser.parse_args(argv)


def test_cli_check_digits8(capsys):
    assert cli_data.main(parse(["data", "check", "digits8"])) == 0
    out = capsys.readouterr().out
    assert "digits8: 8x8 images, 10 classes" in out
    assert "train" in out and "1197" in out and "validation" in out and "300" in out
    assert f"content sha256 {data.load_dataset('digits8').content_sha256}" in out


def test_cli_check_small_set_and_its_errors(tmp_path, small, capsys):
    write_set(tmp_path, small, gzipped=True)
    assert cli_data.main(parse(["data", "check", "mnist", "--data-dir", str(tmp_path)])) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / f"{data.TRAIN_IMAGES}.gz") in out and "content sha256" in out
    assert cli_data.main(parse(["data", "check", "mnist"])) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("ganrepro: error: ") and err.count("\n") == 1 and "--data-dir" in err
    (tmp_path / f"{data.TEST_LABELS}.gz").write_bytes(b"\x1f\x8b junk")
    assert cli_data.main(parse(["data", "check", "mnist", "--data-dir", str(tmp_path)])) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / f"{data.TEST_LABELS}.gz") in err


def test_cli_download(tmp_path, served, monkeypatch, capsys):
    pages, _ = served
    monkeypatch.setattr("urllib.request.urlopen", FakeWeb(pages))
    assert cli_data.main(parse(["data", "download", "mnist", "--data-dir", str(tmp_path / "d")])) == 0
    out = capsys.readouterr().out
    assert out.count("wrote ") == 4
    assert cli_data.main(parse(["data", "download", "digits8"])) == 0
    assert "nothing to download" in capsys.readouterr().out
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    assert cli_data.main(parse(["data", "download", "fashion-mnist"])) == EXIT_USAGE
    assert "--data-dir" in capsys.readouterr().err
    (tmp_path / "file").write_bytes(b"")
    assert cli_data.main(parse(["data", "download", "mnist", "--data-dir", str(tmp_path / "file")])) == EXIT_USAGE
    assert "not a folder" in capsys.readouterr().err
    monkeypatch.setattr("urllib.request.urlopen", FakeWeb({u: OSError("connection refused") for u in pages}))
    assert cli_data.main(parse(["data", "download", "mnist", "--data-dir", str(tmp_path / "e")])) == 1
    assert "could not download" in capsys.readouterr().err


def test_cli_parser_refuses_unknown_names(capsys):
    with pytest.raises(SystemExit):
        parse(["data", "check", "cifar10"])
    with pytest.raises(SystemExit):
        parse(["data"])


def test_cli_help_names_the_environment_variable(capsys):
    with pytest.raises(SystemExit):
        parse(["data", "check", "--help"])
    assert data.DATA_DIR_ENV in capsys.readouterr().out
