"""optlab.data: IDX parsing, the checks and their messages, the search order, the download path.

Most tests run on tiny IDX files written here (20 training and 8 test images) with the data set's
spec patched to those counts and MD5s; the real MNIST files are loaded when they are found in
$OPTLAB_DATA_DIR/mnist or ../shared/datasets/mnist beside the repository.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import optlab.data as data
from optlab.__main__ import main_data
from optlab.data import (
    DATASETS,
    DataError,
    cache_dir,
    download_dataset,
    find_dataset_dir,
    load_dataset,
    parse_idx,
    read_idx,
    synthetic_dataset,
    verify_report,
    write_idx,
)

N_TRAIN, N_TEST = 20, 8
REPO = Path(__file__).resolve().parents[1]


def _real_mnist_root() -> Path | None:
    """Where the real MNIST is: $OPTLAB_DATA_DIR (as CI sets it), else ../shared/datasets."""
    env = os.environ.get("OPTLAB_DATA_DIR")
    for root in ([Path(env)] if env else []) + [REPO.parent / "shared" / "datasets"]:
        if all(data._member(root / "mnist", base) for _, base in data.FILES):
            return root
    return None


REAL_ROOT = _real_mnist_root()  # read before the autouse fixture clears the environment
needs_real = pytest.mark.skipif(
    REAL_ROOT is None,
    reason="real MNIST not found: set OPTLAB_DATA_DIR to a directory with mnist/ (the four "
    "IDX files), or put them in ../shared/datasets/mnist",
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No $OPTLAB_DATA_DIR, a private cache, no system copy, an empty decoded-array cache."""
    monkeypatch.delenv("OPTLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    for name, spec in list(data.SPECS.items()):
        monkeypatch.setitem(data.SPECS, name, dataclasses.replace(spec, system_dirs=()))
    data.clear_cache()
    yield
    data.clear_cache()


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    return msg


def tiny_arrays(seed: int = 0, n_train: int = N_TRAIN, n_test: int = N_TEST
                ) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_set(directory: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for key, base in data.FILES:
        out[key] = write_idx(directory / (base + (".gz" if gz else "")), arrays[key], gzip=gz)
    return out


def idx_md5(path: Path) -> str:
    raw = path.read_bytes()
    return hashlib.md5(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).hexdigest()


def patch_spec(monkeypatch, name: str, files: dict[str, Path] | None = None, **changes):
    """Make data set ``name`` expect the tiny counts and (when given) these files' MD5s."""
    changes.setdefault("n_train", N_TRAIN)
    changes.setdefault("n_test", N_TEST)
    if files is not None:
        changes["md5"] = tuple((base, idx_md5(files[key])) for key, base in data.FILES)
    spec = dataclasses.replace(data.SPECS[name], **changes)
    monkeypatch.setitem(data.SPECS, name, spec)
    return spec


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """A valid tiny MNIST in tmp/data/mnist (gzipped), with the spec patched to match it."""
    arrays = tiny_arrays()
    files = write_set(tmp_path / "data" / "mnist", arrays)
    patch_spec(monkeypatch, "mnist", files)
    return tmp_path / "data", arrays, files


def assert_matches(ds, arrays):
    for key, arr in arrays.items():
        t = getattr(ds, key)
        assert t.dtype == (torch.uint8 if key.endswith("images") else torch.int64)
        np.testing.assert_array_equal(t.numpy(), arr)


# --------------------------------------------------------------------------------------------
# IDX writing and reading
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_write_read_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(1)
    arr = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / ("x.idx" + (".gz" if gz else "")), arr, gzip=gz)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == arr.shape and back.flags.writeable
    np.testing.assert_array_equal(back, arr)


def test_write_idx_header_is_the_standard_one(tmp_path):
    raw = write_idx(tmp_path / "a", np.arange(6, dtype=np.uint8).reshape(2, 3)).read_bytes()
    assert raw == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 3, 4, 5])
    raw = write_idx(tmp_path / "b", np.array([1, 256], dtype=np.int32)).read_bytes()
    assert raw == bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 0])  # big-endian
    # gzip by suffix by default, and reproducible (no time stamp in the header)
    a = write_idx(tmp_path / "c.gz", np.zeros(5, np.uint8)).read_bytes()
    b = write_idx(tmp_path / "d.gz", np.zeros(5, np.uint8)).read_bytes()
    assert a[:2] == b"\x1f\x8b" and a == b


def test_write_idx_rejects_types_idx_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))


def test_parse_idx_checks_header_and_length():
    good = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])
    np.testing.assert_array_equal(parse_idx(good), [7, 8, 9])
    with pytest.raises(DataError, match="truncated: 2 data bytes where its header"):
        parse_idx(good[:-1])
    with pytest.raises(DataError, match="shorter than its 8-byte IDX header"):
        parse_idx(good[:6])
    with pytest.raises(DataError, match="shorter than an IDX header"):
        parse_idx(good[:3])
    with pytest.raises(DataError, match="1 bytes after the data"):
        parse_idx(good + b"\0")
    with pytest.raises(DataError, match="wrong magic number 0x00000801 .expected 0x00000803"):
        parse_idx(good, expect_magic=data.IMAGE_MAGIC)
    with pytest.raises(DataError, match="wrong magic number 0x12340801: not an IDX file"):
        parse_idx(b"\x12\x34" + good[2:])
    with pytest.raises(DataError, match="not an IDX file"):
        parse_idx(bytes([0, 0, 0x07, 1]) + good[4:])  # unknown element type


# --------------------------------------------------------------------------------------------
# The real MNIST
# --------------------------------------------------------------------------------------------


@needs_real
def test_real_mnist_loads_and_verifies():
    t0 = time.perf_counter()
    ds = load_dataset("mnist", data_dir=REAL_ROOT, cache=False)
    seconds = time.perf_counter() - t0
    assert ds.source == REAL_ROOT / "mnist" and ds.name == "mnist" and ds.num_classes == 10
    assert ds.train_images.shape == (60000, 28, 28) and ds.train_images.dtype == torch.uint8
    assert ds.test_images.shape == (10000, 28, 28) and ds.test_images.dtype == torch.uint8
    assert ds.train_labels.shape == (60000,) and ds.train_labels.dtype == torch.int64
    assert ds.test_labels.shape == (10000,) and ds.test_labels.dtype == torch.int64
    # the well-known first labels of each split, and the class counts of the training set
    assert ds.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(ds.train_labels).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert int(ds.train_images.max()) == 255 and int(ds.train_images.min()) == 0
    assert seconds < 10, f"loading MNIST took {seconds:.1f} s (expected about 1 s)"
    ok, lines = verify_report("mnist", data_dir=REAL_ROOT)
    assert ok, lines
    assert sum("OK" in line and "md5" in line for line in lines) == 4


@needs_real
def test_real_mnist_through_the_environment_variable(monkeypatch):
    monkeypatch.setenv("OPTLAB_DATA_DIR", str(REAL_ROOT))
    assert find_dataset_dir("mnist") == REAL_ROOT / "mnist"
    ok, lines = verify_report()
    assert ok, lines
    assert lines[0].startswith(f"mnist: {REAL_ROOT / 'mnist'} (found via $OPTLAB_DATA_DIR)")


@needs_real
def test_real_mnist_gz_and_raw_give_identical_arrays(tmp_path):
    raw_dir = tmp_path / "raw" / "mnist"
    raw_dir.mkdir(parents=True)
    for _, base in data.FILES:
        src = data._member(REAL_ROOT / "mnist", base)
        (raw_dir / base).write_bytes(gzip.decompress(src.read_bytes()))
    a = load_dataset(data_dir=REAL_ROOT, cache=False)
    b = load_dataset(data_dir=raw_dir.parent, cache=False)  # MD5 still verified
    assert b.files["train_images"] == raw_dir / "train-images-idx3-ubyte"
    for key, _ in data.FILES:
        assert torch.equal(getattr(a, key), getattr(b, key))


def test_fashion_mnist_debian_copy_if_installed(monkeypatch):
    system = Path("/usr/share/datasets/fashion-mnist")
    if not all(data._member(system, base) for _, base in data.FILES):
        pytest.skip("Debian's dataset-fashion-mnist is not installed (/usr/share/datasets/...)")
    monkeypatch.setitem(data.SPECS, "fashion-mnist", dataclasses.replace(
        data.SPECS["fashion-mnist"], system_dirs=(str(system),)))
    ds = load_dataset("fashion-mnist", cache=False)
    assert ds.source == system and ds.classes[9] == "Ankle boot"
    assert ds.train_images.shape == (60000, 28, 28)


# --------------------------------------------------------------------------------------------
# Loading tiny files
# --------------------------------------------------------------------------------------------


def test_tiny_load_gz_and_raw_identical(tmp_path, monkeypatch):
    arrays = tiny_arrays(3)
    gz_files = write_set(tmp_path / "gz" / "mnist", arrays, gz=True)
    write_set(tmp_path / "raw" / "mnist", arrays, gz=False)
    patch_spec(monkeypatch, "mnist", gz_files)  # the MD5s of decompressed bytes serve both
    a = load_dataset(data_dir=tmp_path / "gz", cache=False)
    b = load_dataset(data_dir=tmp_path / "raw", cache=False)
    assert_matches(a, arrays)
    assert_matches(b, arrays)
    assert a.files["test_labels"].name == "t10k-labels-idx1-ubyte.gz"
    assert b.files["test_labels"].name == "t10k-labels-idx1-ubyte"


def test_gzipped_file_is_preferred_and_mixed_forms_load(tiny):
    root, arrays, files = tiny
    raw = root / "mnist" / "t10k-labels-idx1-ubyte"
    raw.write_bytes(gzip.decompress(files["test_labels"].read_bytes()))
    ds = load_dataset(data_dir=root, cache=False)
    assert ds.files["test_labels"] == files["test_labels"]
    files["test_labels"].unlink()  # now three gzipped files and one raw one
    ds = load_dataset(data_dir=root, cache=False)
    assert ds.files["test_labels"] == raw
    assert_matches(ds, arrays)


def test_decoded_cache_returns_independent_tensors_and_sees_replaced_files(tiny, monkeypatch):
    root, arrays, files = tiny
    a = load_dataset(data_dir=root)
    b = load_dataset(data_dir=root)
    assert data._load_arrays_cached.cache_info().hits == 1
    a.train_images.zero_()
    a.train_labels.fill_(3)
    assert_matches(b, arrays)  # the cache's copy was not touched
    assert_matches(load_dataset(data_dir=root), arrays)
    # a replaced file (other content, other size) is read again, not served from the cache
    new = tiny_arrays(9, n_train=N_TRAIN + 1)
    write_set(root / "mnist", new)
    patch_spec(monkeypatch, "mnist", None, n_train=N_TRAIN + 1, md5=())
    assert_matches(load_dataset(data_dir=root), new)
    data.clear_cache()
    assert data._load_arrays_cached.cache_info().currsize == 0


def test_verify_false_skips_only_the_checksum(tiny, monkeypatch):
    root, arrays, _ = tiny
    other = tiny_arrays(5)
    write_set(root / "mnist", other)  # valid structure, other content: MD5s differ
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset(data_dir=root, cache=False)
    assert_matches(load_dataset(data_dir=root, verify=False, cache=False), other)


# --------------------------------------------------------------------------------------------
# Every failure: one line, what is wrong and the fix
# --------------------------------------------------------------------------------------------


def test_missing_everywhere(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("mnist")
    msg = one_line(err)
    assert msg.startswith("MNIST not found in ")
    assert str(tmp_path / "xdg-cache" / "optlab" / "mnist") in msg
    for fix in ("set OPTLAB_DATA_DIR", "pass --data-dir", "`python -m optlab data download`",
                "when online"):
        assert fix in msg


def test_missing_explicit_dir_does_not_fall_back(tiny, monkeypatch, tmp_path):
    root, _, _ = tiny
    monkeypatch.setenv("OPTLAB_DATA_DIR", str(root))  # a valid copy here ...
    with pytest.raises(DataError) as err:  # ... is not used when --data-dir says elsewhere
        load_dataset(data_dir=tmp_path / "nope", cache=False)
    msg = one_line(err)
    assert msg.startswith(f"MNIST not found in {tmp_path / 'nope' / 'mnist'}, {tmp_path / 'nope'};")
    assert load_dataset(cache=False).source == root / "mnist"


def test_fashion_missing_mentions_its_download_and_package():
    with pytest.raises(DataError) as err:
        find_dataset_dir("fashion-mnist")
    msg = one_line(err)
    assert msg.startswith("Fashion-MNIST not found in")
    assert "`python -m optlab data download --dataset fashion-mnist`" in msg
    assert "apt-get install dataset-fashion-mnist" in msg


def test_incomplete_directory_names_the_missing_file(tiny):
    root, _, files = tiny
    files["test_labels"].unlink()
    with pytest.raises(DataError) as err:
        load_dataset(data_dir=root)
    assert f"{root / 'mnist'} lacks t10k-labels-idx1-ubyte[.gz]" in one_line(err)


def test_truncated_raw_file(tmp_path, monkeypatch):
    files = write_set(tmp_path / "mnist", tiny_arrays(), gz=False)
    patch_spec(monkeypatch, "mnist", files)
    path = files["train_images"]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError) as err:
        load_dataset(data_dir=tmp_path, cache=False)
    msg = one_line(err)
    assert msg.startswith(f"{path} is truncated: 15,580 data bytes where its header "
                          "(20, 28, 28) needs 15,680;")
    assert f"delete {path} and fetch it again (`python -m optlab data download`" in msg


def test_truncated_gzip_file(tiny):
    root, _, files = tiny
    path = files["train_images"]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError) as err:
        load_dataset(data_dir=root, cache=False)
    msg = one_line(err)
    assert msg.startswith(f"{path} is not a valid gzip file (truncated or corrupt")
    assert f"delete {path} and fetch it again" in msg


def test_corrupt_gzip_file(tiny):
    root, _, files = tiny
    path = files["test_images"]
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # a flipped byte inside the deflate stream: bad data or CRC
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError) as err:
        load_dataset(data_dir=root, cache=False)
    assert one_line(err).startswith(f"{path} is not a valid gzip file")


def test_gz_name_without_gzip_content(tiny):
    root, _, files = tiny
    path = files["train_labels"]
    path.write_bytes(b"<html>Not Found</html>")  # what a broken mirror might have served
    with pytest.raises(DataError) as err:
        load_dataset(data_dir=root, cache=False)
    msg = one_line(err)
    assert "does not start with the gzip magic bytes 1f 8b" in msg and f"delete {path}" in msg


def test_wrong_magic_number(tiny):
    root, arrays, files = tiny
    # the labels file written as a 2-D array: magic 0x00000802 instead of 0x00000801
    write_idx(files["train_labels"], arrays["train_labels"].reshape(-1, 1))
    with pytest.raises(DataError) as err:
        load_dataset(data_dir=root, cache=False)
    msg = one_line(err)
    assert msg.startswith(f"{files['train_labels']} has the wrong magic number 0x00000802 "
                          "(expected 0x00000801, IDX uint8 labels);")
    assert "replace it with the original" in msg


def test_images_and_labels_swapped(tiny):
    root, _, files = tiny
    a, b = files["test_images"], files["test_labels"]
    tmp = a.with_name("swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    with pytest.raises(DataError, match="0x00000801 .expected 0x00000803, IDX uint8 images"):
        load_dataset(data_dir=root, cache=False)


def test_wrong_image_shape(tiny):
    root, _, files = tiny
    write_idx(files["train_images"], np.zeros((N_TRAIN, 27, 28), np.uint8))
    with pytest.raises(DataError) as err:
        load_dataset(data_dir=root, cache=False)
    msg = one_line(err)
    assert msg.startswith(f"{files['train_images']} has the wrong shape (20, 27, 28), expected "
                          "(20, 28, 28) for MNIST train images;")


def test_wrong_count(tiny):
    root, _, files = tiny
    write_idx(files["test_labels"], np.zeros(N_TEST - 1, np.uint8))
    with pytest.raises(DataError) as err:
        load_dataset(data_dir=root, cache=False)
    assert "has the wrong shape (7,), expected (8,) for MNIST test labels" in one_line(err)


def test_real_counts_are_required():
    spec = data.SPECS["mnist"]
    assert (spec.n_train, spec.n_test) == (60000, 10000)
    with pytest.raises(DataError, match=r"wrong shape \(100, 28, 28\), expected \(60000, 28, 28\)"):
        data._check_member(np.zeros((100, 28, 28), np.uint8), "train_images", spec, "f")


def test_labels_out_of_range(tiny):
    root, arrays, files = tiny
    bad = arrays["train_labels"].copy()
    bad[3] = 10
    write_idx(files["train_labels"], bad)
    with pytest.raises(DataError) as err:
        load_dataset(data_dir=root, cache=False, verify=False)
    assert "has labels up to 10, expected 0..9" in one_line(err)


def test_checksum_mismatch(tiny):
    root, arrays, files = tiny
    path = files["test_images"]
    expected = idx_md5(path)
    changed = arrays["test_images"].copy()
    changed[0, 0, 0] ^= 1  # a valid file, one pixel different
    write_idx(path, changed)
    actual = idx_md5(path)
    with pytest.raises(DataError) as err:
        load_dataset(data_dir=root, cache=False)
    msg = one_line(err)
    assert msg.startswith(f"{path}: checksum mismatch: MD5 of the decompressed bytes is {actual}, "
                          f"expected {expected};")
    assert "delete it and download it again (`python -m optlab data download`" in msg


def test_published_md5s_are_the_decompressed_ones():
    mnist = dict(data.SPECS["mnist"].md5)
    assert mnist["train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"
    assert mnist["t10k-labels-idx1-ubyte"] == "27ae3e4e09519cfbb04c329615203637"
    assert len(dict(data.SPECS["fashion-mnist"].md5)) == 4


def test_unknown_dataset_and_aliases(tiny):
    with pytest.raises(DataError) as err:
        load_dataset("cifar10")
    assert one_line(err) == "unknown dataset 'cifar10'; choose one of: mnist, fashion-mnist"
    assert DATASETS == ("mnist", "fashion-mnist")
    assert cache_dir("Fashion_MNIST").name == "fashion-mnist"


# --------------------------------------------------------------------------------------------
# Search order
# --------------------------------------------------------------------------------------------


def test_search_order(tmp_path, monkeypatch):
    arrays = tiny_arrays()
    places = {
        "explicit": tmp_path / "explicit" / "mnist",
        "env_sub": tmp_path / "env" / "mnist",
        "env_direct": tmp_path / "env",
        "system": tmp_path / "system",
        "cache": tmp_path / "xdg-cache" / "optlab" / "mnist",
    }
    for where in places.values():
        files = write_set(where, arrays)
    patch_spec(monkeypatch, "mnist", files, system_dirs=(str(places["system"]),))
    monkeypatch.setenv("OPTLAB_DATA_DIR", str(tmp_path / "env"))
    assert find_dataset_dir("mnist", tmp_path / "explicit") == places["explicit"]
    assert find_dataset_dir("mnist", places["explicit"]) == places["explicit"]  # files directly
    order = ["env_sub", "env_direct", "system", "cache"]
    for i, name in enumerate(order):
        assert find_dataset_dir("mnist") == places[name], name
        if i + 1 < len(order):  # remove this copy: the next place in the order wins
            for _, base in data.FILES:
                (places[name] / f"{base}.gz").unlink()
    assert cache_dir("mnist") == places["cache"]


def test_default_cache_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("mnist") == tmp_path / "home" / ".cache" / "optlab" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec says: ignore it
    assert cache_dir("mnist") == tmp_path / "home" / ".cache" / "optlab" / "mnist"


def test_direct_directory_with_the_other_datasets_files_is_skipped(tmp_path, monkeypatch):
    """MNIST and Fashion-MNIST share file names: $OPTLAB_DATA_DIR holding Fashion-MNIST's files
    directly must not be taken for MNIST (and the other way round)."""
    fashion = write_set(tmp_path / "env", tiny_arrays(1))
    mnist = write_set(tmp_path / "xdg-cache" / "optlab" / "mnist", tiny_arrays(2))
    patch_spec(monkeypatch, "fashion-mnist", fashion)
    patch_spec(monkeypatch, "mnist", mnist)
    monkeypatch.setenv("OPTLAB_DATA_DIR", str(tmp_path / "env"))
    assert find_dataset_dir("fashion-mnist") == tmp_path / "env"
    assert find_dataset_dir("mnist") == tmp_path / "xdg-cache" / "optlab" / "mnist"
    ds = load_dataset("fashion-mnist", cache=False)
    assert ds.name == "fashion-mnist" and ds.classes[0] == "T-shirt/top"


# --------------------------------------------------------------------------------------------
# Downloading (from file:// URLs and a fake opener: there is no network here)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A good mirror (file:// URL) of a tiny MNIST, and the spec patched to its MD5s."""
    arrays = tiny_arrays(4)
    files = write_set(tmp_path / "mirror-good", arrays)
    patch_spec(monkeypatch, "mnist", files)
    return (tmp_path / "mirror-good").as_uri() + "/", arrays


def cache_listing() -> list[str]:
    d = cache_dir("mnist")
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


GZ_NAMES = sorted(base + ".gz" for _, base in data.FILES)


def test_download_into_the_cache_then_load(mirror):
    url, arrays = mirror
    logged = []
    dest = download_dataset("mnist", mirrors=[url], log=logged.append)
    assert dest == cache_dir("mnist")
    assert cache_listing() == GZ_NAMES  # no temporary file left
    assert any(line.startswith("downloading file://") for line in logged)
    assert_matches(load_dataset(cache=False), arrays)
    # a second run keeps the valid files and fetches nothing
    calls = []
    download_dataset("mnist", mirrors=[url], opener=lambda u, t: calls.append(u))
    assert calls == []


def test_load_dataset_download_true(mirror, monkeypatch, tmp_path):
    url, arrays = mirror
    monkeypatch.setitem(data.SPECS, "mnist", dataclasses.replace(data.SPECS["mnist"],
                                                                 mirrors=(url,)))
    with pytest.raises(DataError, match="MNIST not found"):
        load_dataset(cache=False)
    ds = load_dataset(download=True, cache=False)
    assert ds.source == cache_dir("mnist")
    assert_matches(ds, arrays)
    # with an explicit data_dir the files go to data_dir/<dataset>
    ds = load_dataset(data_dir=tmp_path / "mine", download=True, cache=False)
    assert ds.source == tmp_path / "mine" / "mnist"
    assert sorted(p.name for p in (tmp_path / "mine" / "mnist").iterdir()) == GZ_NAMES


def test_download_falls_back_to_the_next_mirror(mirror, tmp_path):
    url, arrays = mirror
    dead = (tmp_path / "no-such-mirror").as_uri() + "/"
    logged = []
    download_dataset("mnist", mirrors=[dead, url], log=logged.append)
    assert sum("failed" in line for line in logged) == 4  # each file failed once on the first
    assert cache_listing() == GZ_NAMES
    assert_matches(load_dataset(cache=False), arrays)


def test_corrupted_download_is_rejected_and_nothing_is_left(mirror, tmp_path):
    url, _ = mirror
    bad_dir = tmp_path / "mirror-bad"
    write_set(bad_dir, tiny_arrays(99))  # valid IDX, wrong content: MD5 mismatch
    with pytest.raises(DataError) as err:
        download_dataset("mnist", mirrors=[bad_dir.as_uri() + "/"])
    msg = one_line(err)
    assert msg.startswith("could not download MNIST train-images-idx3-ubyte.gz (")
    assert "checksum mismatch: MD5 of the decompressed bytes is" in msg
    assert cache_listing() == []
    # a bad mirror first and a good one second: the good files end up in the cache
    download_dataset("mnist", mirrors=[bad_dir.as_uri() + "/", url])
    assert cache_listing() == GZ_NAMES
    load_dataset(cache=False)


def test_truncated_download_is_rejected(mirror, tmp_path):
    url, _ = mirror
    src = Path(url.removeprefix("file://"))
    bad_dir = tmp_path / "mirror-trunc"
    bad_dir.mkdir()
    for _, base in data.FILES:
        raw = (src / f"{base}.gz").read_bytes()
        (bad_dir / f"{base}.gz").write_bytes(raw[: len(raw) - 20])
    with pytest.raises(DataError) as err:
        download_dataset("mnist", mirrors=[bad_dir.as_uri() + "/"])
    assert "is not a valid gzip file" in one_line(err)
    assert cache_listing() == []


def test_connection_dropped_mid_file_leaves_nothing(mirror):
    url, _ = mirror

    class Dropping:
        def __init__(self):
            self.sent = False

        def read(self, n=-1):
            if self.sent:
                raise ConnectionResetError("connection reset by peer")
            self.sent = True
            return b"\x1f\x8b" + b"\0" * 100

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    seen = []

    def opener(u, timeout):
        seen.append(u)
        assert timeout == 60.0
        return Dropping()

    with pytest.raises(DataError, match="connection reset by peer"):
        download_dataset("mnist", mirrors=["https://a.example/", "https://b.example/"],
                         opener=opener)
    assert seen == ["https://a.example/train-images-idx3-ubyte.gz",
                    "https://b.example/train-images-idx3-ubyte.gz"]
    assert cache_listing() == []


def test_download_replaces_atomically_after_verifying(mirror, monkeypatch):
    url, _ = mirror
    target_dir = cache_dir("mnist")
    target_dir.mkdir(parents=True)
    damaged = target_dir / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(b"garbage")
    real_replace = os.replace
    replaced = []

    def checking_replace(src, dst):
        src, dst = Path(src), Path(dst)
        assert src.parent == dst.parent == target_dir  # same directory: rename is atomic
        assert src.name.startswith(f".{dst.name}.") and src.name.endswith(".part")
        assert idx_md5(src) == data.SPECS["mnist"].expected_md5(dst.name[:-3])  # verified
        # until the rename, the old (damaged) file or nothing is at the target
        assert not dst.exists() or dst.read_bytes() == b"garbage"
        replaced.append(dst.name)
        real_replace(src, dst)

    monkeypatch.setattr(data.os, "replace", checking_replace)
    download_dataset("mnist", mirrors=[url])
    assert sorted(replaced) == GZ_NAMES
    assert idx_md5(damaged) == data.SPECS["mnist"].expected_md5("t10k-labels-idx1-ubyte")
    assert cache_listing() == GZ_NAMES


def test_interrupted_download_leaves_no_part_file(mirror, monkeypatch):
    url, _ = mirror

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(data.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        download_dataset("mnist", mirrors=[url])
    assert cache_listing() == []


def test_default_opener_sends_a_user_agent(monkeypatch):
    seen = {}

    def fake_urlopen(request, timeout):
        seen["ua"] = request.get_header("User-agent")
        seen["timeout"] = timeout
        return "response"

    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    assert data._urlopen("https://x.example/a.gz", 5.0) == "response"
    assert seen == {"ua": "optlab (MNIST loader)", "timeout": 5.0}


def test_builtin_mirrors():
    assert data.SPECS["mnist"].mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert "https://storage.googleapis.com/cvdf-datasets/mnist/" in data.SPECS["mnist"].mirrors
    assert data.SPECS["fashion-mnist"].mirrors[0].startswith("http://fashion-mnist.s3-website")


# --------------------------------------------------------------------------------------------
# verify_report and the CLI entry point
# --------------------------------------------------------------------------------------------


def test_verify_report_good_damaged_and_missing(tiny):
    root, arrays, files = tiny
    ok, lines = verify_report("mnist", data_dir=root)
    assert ok
    assert lines[0] == f"mnist: {root / 'mnist'} (found via --data-dir)"
    assert lines[-1] == "mnist: OK"
    assert sum(" OK" in line for line in lines[1:5]) == 4
    assert "train-images-idx3-ubyte.gz" in lines[1] and "(20, 28, 28)" in lines[1]
    # fashion-mnist is optional when no name is given, required when it is
    ok, lines = verify_report(data_dir=root)
    assert ok and any(line.startswith("fashion-mnist: not installed (optional)") for line in lines)
    ok, lines = verify_report("fashion-mnist", data_dir=root)
    assert not ok and lines[0].startswith("fashion-mnist: MISSING: Fashion-MNIST not found")
    # one damaged file, one truncated one
    changed = arrays["test_images"].copy()
    changed[1] += 1
    write_idx(files["test_images"], changed)
    files["train_labels"].write_bytes(files["train_labels"].read_bytes()[:30])
    ok, lines = verify_report("mnist", data_dir=root)
    assert not ok and lines[-1] == "mnist: DAMAGED"
    assert "FAILED: train-labels-idx1-ubyte.gz is not a valid gzip file" in lines[2]
    assert "MISMATCH, expected" in lines[3] and "delete the file" in lines[3]


def test_main_data_verify(tiny, capsys, tmp_path):
    root, _, _ = tiny
    assert main_data(["verify", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"mnist: {root / 'mnist'} (found via --data-dir)" in out and "mnist: OK" in out
    assert main_data(["data", "verify", "--dataset", "mnist", "--data-dir",
                      str(tmp_path / "empty")]) == 2
    assert "MNIST not found in" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main_data(["verify", "--dataset", "cifar10"])


def test_main_data_download(mirror, capsys, tmp_path):
    url, arrays = mirror
    assert main_data(["download", "--data-dir", str(tmp_path / "d"), "--mirror", url]) == 0
    out = capsys.readouterr().out
    assert f"MNIST is in {tmp_path / 'd' / 'mnist'}" in out and "MD5 OK" in out
    assert_matches(load_dataset(data_dir=tmp_path / "d", cache=False), arrays)
    with pytest.raises(DataError, match="could not download MNIST"):
        main_data(["download", "--mirror", (tmp_path / "nowhere").as_uri()])
    assert not cache_dir("mnist").exists()  # the directory it made for nothing is gone


# --------------------------------------------------------------------------------------------
# synthetic_dataset
# --------------------------------------------------------------------------------------------


def test_synthetic_dataset_shapes_determinism_and_learnability():
    ds = synthetic_dataset(n_train=2048, n_test=512, seed=0)
    assert ds.train_images.shape == (2048, 28, 28) and ds.train_images.dtype == torch.uint8
    assert ds.test_images.shape == (512, 28, 28) and ds.test_labels.dtype == torch.int64
    assert ds.train_labels.shape == (2048,) and ds.test_labels.shape == (512,)
    assert ds.source is None and ds.num_classes == 10 and ds.name == "synthetic"
    again = synthetic_dataset(n_train=2048, n_test=512, seed=0)
    assert torch.equal(ds.train_images, again.train_images)
    assert torch.equal(ds.test_labels, again.test_labels)
    other = synthetic_dataset(n_train=2048, n_test=512, seed=1)
    assert not torch.equal(ds.train_labels, other.train_labels)
    counts = torch.bincount(ds.train_labels, minlength=10)
    assert counts.min() > 2048 / 10 / 3  # every class present, roughly balanced
    assert 40 < ds.train_images.double().std() < 60  # images use the grey range
    # learnable: a ridge regression on one-hot targets predicts held-out labels far above chance
    def features(images):
        x = images.reshape(len(images), -1).double().numpy() / 255 - 0.5
        return np.c_[x, np.ones(len(x))]

    x, xt = features(ds.train_images), features(ds.test_images)
    y = np.eye(10)[ds.train_labels.numpy()]
    w = np.linalg.solve(x.T @ x + np.eye(x.shape[1]), x.T @ y)
    accuracy = ((xt @ w).argmax(1) == ds.test_labels.numpy()).mean()
    assert accuracy > 0.5, accuracy
