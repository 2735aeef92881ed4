"""MNIST and Fashion-MNIST from their four IDX files, checked, as uint8 / int64 tensors.

::

    ds = load_dataset("mnist")            # Dataset(train 60000x28x28, test 10000x28x28)
    ds.train_images.dtype, ds.train_labels.dtype   # torch.uint8, torch.int64

**Where the files are looked for**, first match wins (a directory counts when it holds all four
files, each either gzipped ``NAME.gz`` or raw ``NAME``):

1. ``data_dir`` (``--data-dir``): ``data_dir/<dataset>``, then ``data_dir`` itself. When given,
   it is the only place searched, so that a typo is an error, not a silent fallback elsewhere;
2. ``$OPTLAB_DATA_DIR/<dataset>``, then ``$OPTLAB_DATA_DIR`` itself;
3. the system copy: ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``
   package; Debian ships no MNIST package);
4. the per-user cache ``$XDG_CACHE_HOME/optlab/<dataset>`` (default ``~/.cache/optlab/...``),
   where :func:`download_dataset` (``python -m optlab data download``) puts its files.

MNIST and Fashion-MNIST use the same file names, so a directory holding the files *directly*
(steps 1 and 2) is skipped when its training labels are another data set's.

**Checks.** Every file is decompressed (``.gz`` or not, told by its first bytes) and parsed as
IDX: magic number (``0x00000803`` images, ``0x00000801`` labels, element type ``0x08`` = uint8),
dimensions (60000 or 10000 items of 28x28), payload length against the header, labels in 0..9.
With ``verify=True`` (the default) the MD5 of the *decompressed* bytes is compared with the
published one, which does not depend on how a copy was compressed. Every failure raises
:class:`DataError` with one line that says what is wrong and how to fix it.

Downloads (``download=True``) go through ``urllib`` to the cache, one mirror after another; a
file is written to a temporary name in the target directory, checked, and only then renamed
(``os.replace``) into place, so no half-written or unverified file is ever left behind.
"""

from __future__ import annotations

import functools
import gzip as _gzip
import hashlib
import math
import os
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import ordinary_file_mode

if TYPE_CHECKING:  # torch is imported lazily: `python -m optlab data verify` does not need it
    import torch

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "DatasetSpec",
    "SPECS",
    "cache_dir",
    "clear_cache",
    "download_dataset",
    "find_dataset_dir",
    "load_dataset",
    "parse_idx",
    "read_idx",
    "synthetic_dataset",
    "verify_report",
    "write_idx",
]


class DataError(Exception):
    """A data set is missing or damaged. The message is one line: what is wrong, and the fix."""


# --------------------------------------------------------------------------------------------
# What the data sets are
# --------------------------------------------------------------------------------------------

#: (field of :class:`Dataset`, file name without ``.gz``), in the order the files are read.
FILES: tuple[tuple[str, str], ...] = (
    ("train_images", "train-images-idx3-ubyte"),
    ("train_labels", "train-labels-idx1-ubyte"),
    ("test_images", "t10k-images-idx3-ubyte"),
    ("test_labels", "t10k-labels-idx1-ubyte"),
)

IMAGE_MAGIC = 0x00000803  # uint8, 3 dimensions
LABEL_MAGIC = 0x00000801  # uint8, 1 dimension
ROWS = COLS = 28


@dataclass(frozen=True)
class DatasetSpec:
    """What one data set's four files must be (hashable: it keys the decoded-array cache)."""

    name: str
    title: str
    #: (file name without .gz, MD5 of its decompressed bytes); empty: check structure only.
    md5: tuple[tuple[str, str], ...]
    mirrors: tuple[str, ...]
    system_dirs: tuple[str, ...] = ()
    classes: tuple[str, ...] = tuple(str(d) for d in range(10))
    n_train: int = 60000
    n_test: int = 10000

    def expected_md5(self, base: str) -> str | None:
        return dict(self.md5).get(base)

    def count(self, key: str) -> int:
        return self.n_train if key.startswith("train") else self.n_test


SPECS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        # The MD5s published with the canonical release (see shared/datasets/mnist/README.md),
        # of the uncompressed files.
        md5=(
            ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
            ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
            ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
            ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
        ),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        # Zalando publishes the MD5s of the .gz files only (8d4fb7e6..., 25c81989..., bef4ecab...,
        # bb300cfd...), and Debian's dataset-fashion-mnist recompressed them, so the .gz MD5s
        # differ by copy. These are the MD5s of the decompressed bytes, computed from the files
        # of Debian's package (0.0~git20200523.55506a9-1); they agree with the uncompressed
        # ("raw") MD5s that other public loaders list for the upstream files.
        md5=(
            ("train-images-idx3-ubyte", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
            ("train-labels-idx1-ubyte", "9018921c3c673c538a1fc5bad174d6f9"),
            ("t10k-images-idx3-ubyte", "8181f5470baa50b63fa0f6fddb340f0a"),
            ("t10k-labels-idx1-ubyte", "15d484375f8d13e6eb1aabb0c3f46965"),
        ),
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
}

#: The data sets :func:`load_dataset` knows.
DATASETS: tuple[str, ...] = tuple(SPECS)

_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"}


def _spec(name: str) -> DatasetSpec:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in SPECS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return SPECS[key]


def _download_hint(spec: DatasetSpec) -> str:
    flag = "" if spec.name == "mnist" else f" --dataset {spec.name}"
    return f"`python -m optlab data download{flag}`"


# --------------------------------------------------------------------------------------------
# IDX reading and writing
# --------------------------------------------------------------------------------------------

# IDX element-type byte -> big-endian NumPy dtype.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES: dict[np.dtype, int] = {dt.newbyteorder("="): c for c, dt in _IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"


def write_idx(path: str | os.PathLike, array: Any, gzip: bool | None = None,
              compresslevel: int = 6) -> Path:
    """Write ``array`` as an IDX file at ``path`` (gzipped when ``gzip``, or by default when the
    name ends in ``.gz``). Types: uint8, int8, int16, int32, float32, float64. Returns the path.
    """
    path = Path(path)
    arr = np.asarray(array)
    code = _IDX_CODES.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}; use one of "
                         f"{', '.join(str(d) for d in _IDX_CODES)}")
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {arr.ndim}")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(arr, dtype=_IDX_DTYPES[code]).tobytes()
    if gzip is None:
        gzip = path.name.endswith(".gz")
    if gzip:
        payload = _gzip.compress(payload, compresslevel=compresslevel, mtime=0)
    path.write_bytes(payload)
    return path


_REFETCH = "`python -m optlab data download`"


def _fix(path: Path | str, how: str | None = _REFETCH) -> str:
    if how is None:  # a file the user chose (read_idx): no advice to delete it
        return "is it an IDX file (e.g. train-images-idx3-ubyte[.gz])?"
    return f"delete {path} and fetch it again ({how}, or copy it anew)"


def _read_bytes(path: Path, label: str | None = None, how: str | None = _REFETCH) -> bytes:
    """The file's bytes, decompressed when they are gzip (told by the magic bytes)."""
    label = label or str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {label}: {e.strerror or e}; check the file and its "
                        "permissions") from e
    if raw[:2] == _GZIP_MAGIC:
        try:
            return _gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{label} is not a valid gzip file (truncated or corrupt: {e}); "
                            f"{_fix(path, how)}") from e
    if path.name.endswith(".gz"):
        raise DataError(f"{label} is not a valid gzip file (it does not start with the gzip "
                        f"magic bytes 1f 8b); {_fix(path, how)}")
    return raw


def parse_idx(data: bytes, label: str = "<bytes>", expect_magic: int | None = None,
              how: str | None = _REFETCH) -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file into an array in native byte order.

    Checks the magic number (against ``expect_magic`` when given), that the header is complete,
    and that the payload length equals the product of the dimensions times the element size.
    ``label`` names the data in messages, ``how`` says how to fetch it again. The result shares
    ``data``'s memory when the type is one byte wide (read-only for ``bytes``).
    """
    if len(data) < 4:
        raise DataError(f"{label} is truncated: {len(data)} bytes, shorter than an IDX header; "
                        f"{_fix(label, how)}")
    magic = int.from_bytes(data[:4], "big")
    if expect_magic is not None and magic != expect_magic:
        kind = {IMAGE_MAGIC: ", IDX uint8 images", LABEL_MAGIC: ", IDX uint8 labels"}
        raise DataError(f"{label} has the wrong magic number 0x{magic:08x} (expected "
                        f"0x{expect_magic:08x}{kind.get(expect_magic, '')}); it is not the right "
                        "file: replace it with the original")
    code, ndim = data[2], data[3]
    if data[0] or data[1] or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{label} has the wrong magic number 0x{magic:08x}: not an IDX file; "
                        + ("replace it with the original" if how is not None else
                           "read_idx reads IDX files only (e.g. train-images-idx3-ubyte[.gz])"))
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{label} is truncated: {len(data)} bytes, shorter than its "
                        f"{header_len}-byte IDX header; {_fix(label, how)}")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    got = len(data) - header_len
    if got < expected:
        raise DataError(f"{label} is truncated: {got:,} data bytes where its header "
                        f"{shape} needs {expected:,}; {_fix(label, how)}")
    if got > expected:
        raise DataError(f"{label} has {got - expected:,} bytes after the data its header "
                        f"{shape} describes; it is damaged: {_fix(label, how)}")
    arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return arr if dtype.itemsize == 1 else arr.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file, gzipped or raw (told by its first bytes), as a writable array."""
    path = Path(path)
    return np.array(parse_idx(_read_bytes(path, how=None), str(path), how=None))


# --------------------------------------------------------------------------------------------
# Finding the files
# --------------------------------------------------------------------------------------------


def cache_dir(name: str = "mnist") -> Path:
    """``$XDG_CACHE_HOME/optlab/<dataset>``, or ``~/.cache/optlab/<dataset>``."""
    spec = _spec(name)
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "optlab" / spec.name


def _member(directory: Path, base: str) -> Path | None:
    """``base.gz`` or ``base`` in ``directory``, the gzipped one first."""
    for cand in (directory / f"{base}.gz", directory / base):
        if cand.is_file():
            return cand
    return None


def _why_not_a_file(directory: Path, base: str) -> str:
    """Why neither ``base.gz`` nor ``base`` in ``directory`` is a file: what is there instead."""
    for cand in (directory / f"{base}.gz", directory / base):
        if cand.is_symlink() and not cand.exists():
            return f"{cand} is a dangling symbolic link (to {os.readlink(cand)})"
        if cand.is_dir():
            return f"{cand} is a directory, not a file"
        if cand.exists():
            return f"{cand} is not a regular file"
    return f"{directory} lacks {base}[.gz]"


def _is_searchable_dir(directory: Path) -> bool | str:
    """True for a directory whose entries can be looked at, False when there is none, and the
    reason (a string) when it exists but cannot be searched."""
    try:
        if not directory.is_dir():
            return False
        os.stat(directory / FILES[0][1])  # needs search (x) permission on directory
    except FileNotFoundError:
        return True
    except PermissionError:
        return f"{directory} cannot be searched (permission denied)"
    except OSError as e:
        return f"{directory} cannot be searched ({e.strerror or e})"
    return True


def check_data_dir(data_dir: str | os.PathLike | None) -> None:
    """:class:`DataError` for an empty ``--data-dir`` (``Path("")`` would quietly mean the
    current directory here and the user cache elsewhere)."""
    if data_dir is not None and not os.fspath(data_dir).strip():
        raise DataError("--data-dir is empty; give a directory, or leave --data-dir out to use "
                        "$OPTLAB_DATA_DIR and the usual places")


def _candidates(spec: DatasetSpec, data_dir: str | os.PathLike | None
                ) -> list[tuple[Path, str, bool]]:
    """(directory, how it was found, holds the files directly) in search order."""
    check_data_dir(data_dir)
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        return [(d / spec.name, "--data-dir", False), (d, "--data-dir", True)]
    out: list[tuple[Path, str, bool]] = []
    env = os.environ.get("OPTLAB_DATA_DIR", "")
    if env:
        d = Path(env).expanduser()
        out += [(d / spec.name, "$OPTLAB_DATA_DIR", False), (d, "$OPTLAB_DATA_DIR", True)]
    out += [(Path(s), "system package", False) for s in spec.system_dirs]
    out.append((cache_dir(spec.name), "user cache", False))
    return out


def _belongs_elsewhere(directory: Path, spec: DatasetSpec) -> bool:
    """True when the training labels here are, by MD5, another data set's (60 kB to read)."""
    path = _member(directory, "train-labels-idx1-ubyte")
    try:
        digest = hashlib.md5(_read_bytes(path)).hexdigest()  # type: ignore[arg-type]
    except DataError:
        return False  # damaged: let the loader say so
    return any(other.name != spec.name and other.expected_md5("train-labels-idx1-ubyte") == digest
               for other in SPECS.values())


def _locate(spec: DatasetSpec, data_dir: str | os.PathLike | None = None
            ) -> tuple[Path, str, dict[str, Path]]:
    """(directory, how found, {field: file}) of the first complete copy, or DataError."""
    searched: list[str] = []
    partial: list[str] = []
    for directory, how, direct in _candidates(spec, data_dir):
        searched.append(str(directory))
        usable = _is_searchable_dir(directory)
        if usable is not True:
            if usable:
                partial.append(str(usable))
            continue
        files = {key: _member(directory, base) for key, base in FILES}
        missing = [base for key, base in FILES if files[key] is None]
        if missing and len(missing) < len(FILES):
            partial.extend(_why_not_a_file(directory, m) for m in missing)
        if missing or (direct and _belongs_elsewhere(directory, spec)):
            continue
        return directory, how, files  # type: ignore[return-value]
    where = ", ".join(dict.fromkeys(searched))
    extra = f" ({'; '.join(partial)})" if partial else ""
    system = ("; or `apt-get install dataset-fashion-mnist`"
              if spec.name == "fashion-mnist" else "")
    raise DataError(f"{spec.title} not found in {where}{extra}; set OPTLAB_DATA_DIR, pass "
                    f"--data-dir, or run {_download_hint(spec)} when online{system}")


def find_dataset_dir(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> Path:
    """The directory holding the data set's four files (see the module docstring for the
    search order); :class:`DataError` if there is none."""
    return _locate(_spec(name), data_dir)[0]


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """Train and test splits as CPU tensors: images uint8 ``(N, 28, 28)``, labels int64 ``(N,)``.

    ``source`` is the directory the files came from (``None`` for :func:`synthetic_dataset`),
    ``files`` maps each field (``train_images`` ...) to its file.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    classes: tuple[str, ...] = tuple(str(d) for d in range(10))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={tuple(self.train_images.shape)}, "
                f"test={tuple(self.test_images.shape)}, source={self.source})")


def _check_member(arr: np.ndarray, key: str, spec: DatasetSpec, label: str) -> None:
    n = spec.count(key)
    want = (n, ROWS, COLS) if key.endswith("images") else (n,)
    if arr.shape != want:
        what = key.replace("_", " ")
        raise DataError(f"{label} has the wrong shape {arr.shape}, expected {want} for "
                        f"{spec.title} {what}; it is not the right file: replace it with the "
                        "original")
    if key.endswith("labels") and arr.size and int(arr.max()) >= len(spec.classes):
        raise DataError(f"{label} has labels up to {int(arr.max())}, expected 0.."
                        f"{len(spec.classes) - 1}; it is not the right file: replace it with "
                        "the original")


def _check_md5(data: bytes, spec: DatasetSpec, base: str, path: Path) -> str:
    digest = hashlib.md5(data).hexdigest()
    expected = spec.expected_md5(base)
    if expected is not None and digest != expected:
        raise DataError(f"{path}: checksum mismatch: MD5 of the decompressed bytes is {digest}, "
                        f"expected {expected}; the file is corrupt or not the original "
                        f"{spec.title}: delete it and download it again "
                        f"({_download_hint(spec)} or your copy)")
    return digest


def _load_member(path: Path, key: str, base: str, spec: DatasetSpec, verify: bool) -> np.ndarray:
    how = _download_hint(spec)
    data = _read_bytes(path, how=how)
    magic = IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC
    arr = parse_idx(data, str(path), expect_magic=magic, how=how)
    _check_member(arr, key, spec, str(path))
    if verify:
        _check_md5(data, spec, base, path)
    return arr


def _load_arrays(files: tuple[tuple[str, str], ...], spec: DatasetSpec,
                 verify: bool) -> dict[str, np.ndarray]:
    """Decode the four files; images stay uint8, labels become int64 (fresh, writable arrays)."""
    bases = dict(FILES)
    out = {}
    for key, path in files:
        arr = _load_member(Path(path), key, bases[key], spec, verify)
        out[key] = arr.astype(np.int64) if key.endswith("labels") else arr.copy()
    return out


@functools.lru_cache(maxsize=2)
def _load_arrays_cached(files: tuple[tuple[str, str], ...], stamps: tuple[tuple[int, int], ...],
                        spec: DatasetSpec, verify: bool) -> dict[str, np.ndarray]:
    del stamps  # part of the key only: a replaced file (new size or mtime) is read again
    arrays = _load_arrays(files, spec, verify)
    for a in arrays.values():
        a.flags.writeable = False
    return arrays


def clear_cache() -> None:
    """Forget the decoded arrays kept by :func:`load_dataset`."""
    _load_arrays_cached.cache_clear()


def load_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None,
                 download: bool = False, verify: bool = True, *, cache: bool = True) -> Dataset:
    """Load a data set (``"mnist"`` or ``"fashion-mnist"``) as a :class:`Dataset`.

    ``data_dir``: where the files are (it, or its ``<dataset>`` subdirectory); otherwise the
    search order of the module docstring. ``download``: when the files are found nowhere, fetch
    them (into ``data_dir/<dataset>`` when given, else the user cache). ``verify``: compare the
    MD5 of the decompressed bytes with the published ones (the structure is always checked).
    ``cache``: keep the decoded arrays in this process (keyed on the files' resolved paths, sizes
    and times), so that loading again costs only a copy; every call returns its own tensors.
    """
    import torch

    spec = _spec(name)
    try:
        directory, _, files = _locate(spec, data_dir)
    except DataError:
        if not download:
            raise
        dest = Path(data_dir).expanduser() / spec.name if data_dir is not None else None
        download_dataset(spec.name, dest=dest)
        directory, _, files = _locate(spec, dest.parent if dest is not None else None)
    resolved = tuple((key, str(files[key].resolve())) for key, _ in FILES)
    if cache:
        stamps = tuple((st.st_size, st.st_mtime_ns)
                       for st in (os.stat(p) for _, p in resolved))
        arrays = {k: a.copy() for k, a in _load_arrays_cached(resolved, stamps, spec,
                                                              verify).items()}
    else:
        arrays = _load_arrays(resolved, spec, verify)
    tensors = {k: torch.from_numpy(a) for k, a in arrays.items()}
    return Dataset(name=spec.name, source=directory, files=dict(files),
                   classes=spec.classes, **tensors)


def synthetic_dataset(n_train: int = 2048, n_test: int = 512, seed: int = 0,
                      num_classes: int = 10, latent_dim: int = 16) -> Dataset:
    """Random uint8 images of MNIST's shape whose labels a small model learns quickly.

    Each image is drawn from ``latent_dim`` Gaussian factors ``z`` through a fixed random linear
    map to the 784 pixels (``clip(round(128 + 50 * z @ D))``), and its label is the argmax of a
    fixed random linear map of ``z``: the labels are (up to rounding and the rare clipping) a
    linear function of the pixels, and the classes are roughly balanced. Everything is drawn from
    ``seed``, with the same maps for train and test. For the engine's fast end-to-end tests:
    a ridge regression on 2048 images already gets about 75% of the test labels (10% is chance).
    """
    import torch

    rng = np.random.default_rng(seed)
    to_pixels = rng.standard_normal((latent_dim, ROWS * COLS)) / np.sqrt(latent_dim)
    to_logits = rng.standard_normal((latent_dim, num_classes))
    to_logits /= np.linalg.norm(to_logits, axis=0)  # equal norms: no class dominates

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = rng.standard_normal((n, latent_dim))
        pixels = np.clip(np.rint(128.0 + 50.0 * (z @ to_pixels)), 0, 255).astype(np.uint8)
        labels = (z @ to_logits).argmax(axis=1).astype(np.int64)
        return torch.from_numpy(pixels.reshape(n, ROWS, COLS)), torch.from_numpy(labels)

    train_images, train_labels = split(n_train)
    test_images, test_labels = split(n_test)
    return Dataset(name="synthetic", train_images=train_images, train_labels=train_labels,
                   test_images=test_images, test_labels=test_labels,
                   classes=tuple(str(c) for c in range(num_classes)))


# --------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------

Opener = Callable[[str, float], Any]  # (url, timeout) -> a readable, closable response


def _urlopen(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "optlab (MNIST loader)"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http, https, file)


class _MirrorTooSlow(OSError):
    """A mirror that sends nothing, or too little, in time: it is not tried for the next files."""


@dataclass(frozen=True)
class Limits:
    """How long a download may take: ``timeout`` seconds of silence on the connection,
    ``deadline`` seconds per file overall, and at least ``min_rate`` bytes per second on
    average once ``grace`` seconds have passed."""

    timeout: float = 60.0
    deadline: float = 600.0
    min_rate: float = 4096.0
    grace: float = 20.0


def _copy_response(response: Any, out: Any, limits: Limits, started: float,
                   progress: Callable[[int, int | None], None]) -> int:
    """Copy ``response`` into ``out`` within ``limits``; returns the bytes copied."""
    length = getattr(response, "length", None)
    total = int(length) if isinstance(length, int) else None
    read = getattr(response, "read1", None) or response.read  # read1: whatever has arrived
    got = 0
    while True:
        chunk = read(1 << 16)
        if not chunk:
            return got
        out.write(chunk)
        got += len(chunk)
        progress(got, total)
        elapsed = time.monotonic() - started
        if elapsed > limits.deadline:
            raise _MirrorTooSlow(f"too slow: {got:,} bytes in {elapsed:.1f} s, past the "
                                 f"{limits.deadline:g} s allowed per file")
        if elapsed > limits.grace and got < limits.min_rate * elapsed:
            raise _MirrorTooSlow(f"too slow: {got:,} bytes in {elapsed:.1f} s, below the "
                                 f"minimum of {limits.min_rate:,.0f} bytes/s")


def _fetch_verified(url: str, target: Path, key: str, base: str, spec: DatasetSpec,
                    opener: Opener, limits: Limits,
                    progress: Callable[[int, int | None], None]) -> None:
    """Download ``url`` to a temporary file beside ``target``, check it, then rename it (with
    the mode of an ordinary new file, not ``mkstemp``'s 0600)."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    started = time.monotonic()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with opener(url, min(limits.timeout, limits.deadline)) as response:
                    _copy_response(response, out, limits, started, progress)
            except TimeoutError as e:
                raise _MirrorTooSlow(f"no data for {min(limits.timeout, limits.deadline):g} s "
                                     f"({e or 'timed out'})") from e
            except urllib.error.URLError as e:
                if isinstance(e.reason, TimeoutError):
                    raise _MirrorTooSlow(f"no answer in {min(limits.timeout, limits.deadline):g}"
                                         " s") from e
                raise
            out.flush()
            os.fsync(out.fileno())
        try:
            data = _read_bytes(tmp, label=url)
            magic = IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC
            _check_member(parse_idx(data, url, expect_magic=magic), key, spec, url)
        except DataError as e:  # keep what is wrong; the "delete and fetch again" advice is moot
            raise DataError(str(e).split("; ")[0]) from e
        digest = hashlib.md5(data).hexdigest()
        expected = spec.expected_md5(base)
        if expected is not None and digest != expected:
            raise DataError(f"{url}: checksum mismatch: MD5 of the decompressed bytes is "
                            f"{digest}, expected {expected}")
        os.chmod(tmp, ordinary_file_mode())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def download_dataset(name: str = "mnist", dest: str | os.PathLike | None = None, *,
                     mirrors: Sequence[str] | None = None, opener: Opener | None = None,
                     timeout: float = 60.0, log: Callable[[str], None] | None = None,
                     deadline: float = 600.0, min_rate: float = 4096.0, grace: float = 20.0,
                     progress: bool = False) -> Path:
    """Fetch the four ``.gz`` files into ``dest`` (default: the user cache) and return it.

    Files already there and valid are kept. Each file is tried on each mirror in turn (URL =
    mirror + file name + ``.gz``); it is written under a temporary name in ``dest``, decompressed
    and checked (structure and MD5), and renamed into place only if it passes; it gets the mode
    of an ordinary new file (``0o666`` less the umask). ``opener(url, timeout)`` replaces
    ``urllib.request.urlopen`` (tests). :class:`DataError` when a file cannot be had from any
    mirror.

    No download hangs: ``timeout`` seconds of silence, ``deadline`` seconds per file, or less
    than ``min_rate`` bytes/s on average after ``grace`` seconds give up on that mirror, which
    is then skipped for the remaining files. ``progress``: a byte counter (tqdm) on stderr;
    ``log`` gets a line every 10 s otherwise.
    """
    spec = _spec(name)
    dest = Path(dest).expanduser() if dest is not None else cache_dir(spec.name)
    mirrors = tuple(mirrors) if mirrors is not None else spec.mirrors
    opener = opener or _urlopen
    say = log or (lambda _msg: None)
    limits = Limits(timeout=timeout, deadline=deadline, min_rate=min_rate, grace=grace)
    created = not dest.exists()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {dest}: {e.strerror or e}; choose another directory "
                        "with --data-dir or OPTLAB_DATA_DIR") from e
    try:
        _download_into(dest, spec, mirrors, opener, limits, say, progress)
    except BaseException:
        if created and not any(dest.iterdir()):
            dest.rmdir()  # leave no empty directory behind
        raise
    return dest


def _progress_reporter(name: str, bar: bool, say: Callable[[str], None]
                       ) -> tuple[Callable[[int, int | None], None], Callable[[], None]]:
    """(update(bytes so far, total or None), close()) for one file."""
    state: dict[str, Any] = {"bar": None, "last": time.monotonic()}

    def update(got: int, total: int | None) -> None:
        if bar:
            if state["bar"] is None:
                from tqdm.auto import tqdm

                state["bar"] = tqdm(total=total, desc=name, unit="B", unit_scale=True,
                                    unit_divisor=1024, leave=False, file=sys.stderr)
            state["bar"].update(got - state["bar"].n)
        elif time.monotonic() - state["last"] >= 10.0:
            state["last"] = time.monotonic()
            say(f"  {got:,} bytes" + (f" of {total:,}" if total else "") + " so far")

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return update, close


def _download_into(dest: Path, spec: DatasetSpec, mirrors: tuple[str, ...], opener: Opener,
                   limits: Limits, say: Callable[[str], None], progress: bool) -> None:
    too_slow: dict[str, str] = {}  # mirror -> why it is skipped
    for key, base in FILES:
        present = _member(dest, base)
        if present is not None:
            try:
                _load_member(present, key, base, spec, verify=True)
                say(f"{present}: already present and valid")
                continue
            except DataError as e:
                say(f"{present}: {e}; downloading it again")
        target = dest / f"{base}.gz"
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + f"/{base}.gz"
            if mirror in too_slow:
                errors.append(f"{url}: skipped (mirror {mirror} was {too_slow[mirror]})")
                continue
            say(f"downloading {url}")
            update, close = _progress_reporter(f"{base}.gz", progress, say)
            try:
                _fetch_verified(url, target, key, base, spec, opener, limits, update)
            except _MirrorTooSlow as e:
                too_slow[mirror] = "too slow or silent"
                errors.append(f"mirror {mirror} gave up: {e}")
                say(f"  failed: {errors[-1]}; not trying this mirror again")
                continue
            except (OSError, ValueError, DataError) as e:  # URLError is an OSError
                errors.append(f"{url}: {getattr(e, 'reason', None) or e}")
                say(f"  failed: {errors[-1]}")
                continue
            finally:
                close()
            say(f"  saved {target} ({target.stat().st_size:,} bytes, MD5 OK)")
            break
        else:
            tried = "; ".join(errors) or "no mirror given"
            raise DataError(f"could not download {spec.title} {base}.gz ({tried}); check the "
                            f"connection, or copy the four files into {dest} by hand")


# --------------------------------------------------------------------------------------------
# `python -m optlab data verify | download`
# --------------------------------------------------------------------------------------------


def verify_report(name: str | None = None, data_dir: str | os.PathLike | None = None
                  ) -> tuple[bool, list[str]]:
    """Check every file of one data set (or all, ``name=None``): where it was found, each file's
    size and MD5 status. ``ok`` is False when a requested data set is missing or any file found
    is damaged; with ``name=None`` only MNIST is required (Fashion-MNIST is optional)."""
    specs = [_spec(name)] if name is not None else list(SPECS.values())
    required = {specs[0].name} if name is not None else {"mnist"}
    ok = True
    lines: list[str] = []
    for spec in specs:
        try:
            directory, how, files = _locate(spec, data_dir)
        except DataError as e:
            if spec.name in required:
                ok = False
                lines.append(f"{spec.name}: MISSING: {e}")
            else:
                lines.append(f"{spec.name}: not installed (optional): {e}")
            continue
        lines.append(f"{spec.name}: {directory} (found via {how})")
        good, damaged, unreadable = True, False, False
        for key, base in FILES:
            path = files[key]
            size = path.stat().st_size
            expected = spec.expected_md5(base)
            if not os.access(path, os.R_OK):
                good, unreadable = False, True
                lines.append(f"  {path.name:<27} {size:>11,} B  UNREADABLE (permission denied: "
                             f"mode {stat.filemode(path.stat().st_mode)}); ask its owner to "
                             f"`chmod a+r {path}`")
                continue
            try:
                how = _download_hint(spec)
                data = _read_bytes(path, label=path.name, how=how)
                magic = IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC
                arr = parse_idx(data, path.name, expect_magic=magic, how=how)
                _check_member(arr, key, spec, path.name)
                digest = hashlib.md5(data).hexdigest()
                if expected is None:
                    status = f"md5 {digest} (no published MD5: structure checked only)"
                elif digest == expected:
                    status = f"md5 {digest} OK"
                else:
                    good, damaged = False, True
                    status = (f"md5 {digest} MISMATCH, expected {expected}: delete the file and "
                              f"download it again ({_download_hint(spec)})")
                detail = f"{size:>11,} B -> {len(data):>11,} B  {str(arr.shape):<15} {status}"
            except DataError as e:
                good, damaged = False, True
                detail = f"{size:>11,} B  FAILED: {e}"
            lines.append(f"  {path.name:<27} {detail}")
        ok = ok and good
        verdict = "OK" if good else ("UNREADABLE" if unreadable and not damaged else "DAMAGED")
        lines.append(f"{spec.name}: {verdict}")
    return ok, lines


def _mirror_url(text: str) -> str:
    """A ``--mirror`` as a URL: URLs as they are, an existing local directory as ``file://``."""
    if not text.strip():
        raise DataError("--mirror is empty; give a URL (https://..., file:///dir/) or a local "
                        "directory, or leave --mirror out to use the built-in mirrors")
    if "://" in text:
        return text
    path = Path(text).expanduser()
    if path.is_dir():
        return path.resolve().as_uri() + "/"
    raise DataError(f"--mirror {text}: not a URL (http://, https://, file://) and not an "
                    f"existing directory; for local files give file://{path.resolve()}/")
