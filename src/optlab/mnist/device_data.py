"""A dataset scaled once to float and moved to the device (:class:`PreparedData`), and the
generator of a run's batch order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class PreparedData:
    """Float images ``(N, 784)`` in [0, 1] and int64 labels, on the device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    evals: dict[str, tuple[torch.Tensor, torch.Tensor]]  # "train", ["val"], "test"
    name: str = "mnist"

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])


def _to_float(images: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    x = images.reshape(images.shape[0], -1)
    if x.dtype == torch.uint8:
        return (x.to(device=device, dtype=dtype) / 255.0).contiguous()
    return x.to(device=device, dtype=dtype).contiguous()


def prepare_data(
    dataset: Any, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
    val_size: int = 0,
) -> PreparedData:
    """Scale a dataset (``train_images``/``train_labels``/``test_images``/``test_labels``, uint8
    images) to [0, 1] once and move it to ``device``. ``val_size > 0`` carves the **last**
    ``val_size`` training images off as a validation split (never the test set)."""
    device = torch.device(device)
    x = _to_float(dataset.train_images, device, dtype)
    y = dataset.train_labels.to(device=device, dtype=torch.int64)
    xt = _to_float(dataset.test_images, device, dtype)
    yt = dataset.test_labels.to(device=device, dtype=torch.int64)
    name = getattr(dataset, "name", "mnist")
    if val_size:
        if not 0 < val_size < x.shape[0]:
            raise ValueError(f"val_size must be in (0, {x.shape[0]}); got {val_size}")
        n = x.shape[0] - val_size
        evals = {"train": (x[:n], y[:n]), "val": (x[n:], y[n:]), "test": (xt, yt)}
        return PreparedData(x[:n], y[:n], evals, name)
    return PreparedData(x, y, {"train": (x, y), "test": (xt, yt)}, name)


def data_generator(seed: int) -> torch.Generator:
    """The generator of a run's batch order: seeded from the run seed, independent of the
    generator of its initial weights (:func:`optlab.mlp.init_flat` uses ``seed`` itself)."""
    return torch.Generator().manual_seed(1_000_003 + int(seed))
