r"""What L-BFGS remembers of the curvature: the last ``m`` pairs :math:`(s_i, y_i)`, and the
two-loop recursion that turns them into a direction.

Both are pure arithmetic on 1-D vectors (``@``, ``*``, ``+``, ``-``), so the same code serves
:func:`optlab.minimize`'s L-BFGS (NumPy vectors) and
:class:`optlab.second_order.LBFGSOptimizer` (flat torch tensors, kept on their device).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def two_loop(
    grad: Any,
    s_list: Sequence[Any],
    y_list: Sequence[Any],
    gamma: Any = 1.0,
    rho_list: Sequence[Any] | None = None,
) -> Any:
    r"""L-BFGS two-loop recursion (Nocedal & Wright, Alg. 7.4): the descent direction
    :math:`p = -H_k\, g` without forming :math:`H_k`.

    :math:`H_k` is the matrix obtained by applying the BFGS update

    .. math::  H \leftarrow (I - \rho\, s y^\top)\, H\, (I - \rho\, y s^\top) + \rho\, s s^\top

    for the stored pairs :math:`(s_i, y_i)`, oldest first, to :math:`H_k^0 = \gamma I`:

    .. code-block:: text

        q = -g
        for i = newest … oldest:   a_i = rho_i s_i·q ;   q = q - a_i y_i
        r = gamma q
        for i = oldest … newest:   b   = rho_i y_i·r ;   r = r + (a_i - b) s_i
        return r                   # = -H_k g

    ``grad``, ``s_list[i]`` and ``y_list[i]`` are 1-D NumPy arrays or 1-D torch tensors (the
    function uses only ``@``, ``*``, ``+`` and ``-``, so it works on both and keeps torch
    scalars on the device). ``rho_list`` may pass precomputed :math:`\rho_i = 1/y_i^\top s_i`.
    With no pairs it returns :math:`-\gamma g`. The operation order is that of
    ``torch.optim.LBFGS``, so the two agree to the last bit.
    """
    if len(s_list) != len(y_list):
        raise ValueError(f"two_loop: {len(s_list)} s vectors but {len(y_list)} y vectors")
    if rho_list is None:
        rho_list = [1.0 / (y @ s) for s, y in zip(s_list, y_list, strict=True)]
    q = -grad
    alphas = [None] * len(s_list)
    for i in range(len(s_list) - 1, -1, -1):  # newest to oldest
        alphas[i] = (s_list[i] @ q) * rho_list[i]
        q = q - alphas[i] * y_list[i]
    r = q * gamma  # H_k^0 = γ I
    for i in range(len(s_list)):  # oldest to newest
        beta = (y_list[i] @ r) * rho_list[i]
        r = r + (alphas[i] - beta) * s_list[i]
    return r


def remember_pair(
    s_list: list[Any], y_list: list[Any], rho_list: list[Any], s: Any, y: Any, ys: Any, m: int
) -> None:
    r"""Store the pair :math:`(s, y)` with :math:`\rho = 1 / y^\top s` (``ys`` is
    :math:`y^\top s`), newest last, forgetting the oldest beyond ``m`` pairs.

    The caller decides whether the pair is worth keeping (a positive :math:`y^\top s`).
    """
    s_list.append(s)
    y_list.append(y)
    rho_list.append(1.0 / ys)
    if len(s_list) > m:
        del s_list[0], y_list[0], rho_list[0]


__all__ = ["remember_pair", "two_loop"]
