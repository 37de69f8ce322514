"""Network blocks shared by the model families (in the spirit of zuko's ``nn.py``).

A model's network keeps the contract of :class:`skar.base.AutoregressiveNetwork`: the
parameters of position ``i`` depend only on the positions before ``i`` in ``ordering(member)``.
These blocks are the pieces every family used to write again:

- :class:`MaskedLinear` and :class:`MaskedConv2d`: layers that own their 0/1 masks, so that
  ``y = x (W \\odot M)^T + b`` is computed in one place (one mask per ensemble member for
  :class:`MaskedLinear`);
- :class:`OrderingEnsemble`: the orderings of an ensemble, their inverse permutations
  (positions) and the member drawn for each minibatch;
- :class:`OrderedNetwork`: an :class:`~skar.base.AutoregressiveNetwork` whose members are the
  orderings of its ``ensemble``;
- :class:`ColumnHeads`: per-column output heads ``theta_d = V_d h_d + b_d`` in the flat layout
  of :class:`~skar.distributions.ColumnConditionals`;
- :func:`shift_right`: the shifted input of a sequence model (position ``i`` reads position
  ``i - 1``, position 0 a start value).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import AutoregressiveNetwork

__all__ = [
    "ColumnHeads",
    "MaskedConv2d",
    "MaskedLinear",
    "OrderedNetwork",
    "OrderingEnsemble",
    "shift_right",
]


class MaskedLinear(nn.Linear):
    """A linear layer with one 0/1 connectivity mask per ensemble member.

    .. math::  y = x\\,(W \\odot M_k)^\\top + b

    Parameters
    ----------
    in_features, out_features : int
    masks : array-like of shape (n_members, out_features, in_features)
        ``masks[k]`` is member ``k``'s mask; kept as the float buffer ``mask``.
    bias : bool, default=True
    """

    def __init__(self, in_features: int, out_features: int, masks: np.ndarray | Tensor,
                 bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        mask = torch.as_tensor(np.asarray(masks)).float()
        if mask.shape[1:] != (out_features, in_features):
            raise ValueError(
                f"masks of shape {tuple(mask.shape)} do not fit a {in_features} -> "
                f"{out_features} layer; expected (n_members, {out_features}, {in_features})"
            )
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor, member: int = 0) -> Tensor:
        """``(B, in_features)`` -> ``(B, out_features)`` through member ``member``'s mask."""
        return F.linear(x, self.weight * self.mask[member], self.bias)


class MaskedConv2d(nn.Conv2d):
    """A 2-D convolution whose kernel is multiplied by a fixed 0/1 mask (PixelCNN's masks A
    and B): ``y = conv2d(x, W \\odot M) + b``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or tuple of int
    mask : Tensor of shape (out_channels, in_channels, kH, kW)
        Kept as the buffer ``mask`` (broadcastable shapes are allowed).
    **kwargs
        Passed to :class:`torch.nn.Conv2d`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 mask: Tensor, **kwargs) -> None:
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        """The masked convolution of ``x``."""
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class OrderingEnsemble(nn.Module):
    """The orderings of an ensemble and the member trained on each minibatch.

    Parameters
    ----------
    orderings : ndarray of shape (n_members, D)
        Every member's generation order (:func:`skar.base.make_orderings`).
    rng : numpy.random.Generator or None
        Seeds the per-minibatch member draws (one integer is drawn from it here, so build the
        ensemble where that draw belongs in the model's stream of draws). ``None`` for a
        network that never draws a member (one with its own
        :meth:`~skar.base.AutoregressiveNetwork.training_log_prob`).

    Attributes
    ----------
    orderings : LongTensor of shape (n_members, D)
        Buffer; ``orderings[k]`` is member ``k``'s generation order.
    positions : LongTensor of shape (n_members, D)
        Buffer; ``positions[k, d]`` is the position of column ``d`` in ``orderings[k]``.
    host_orderings : list of list of int
        A host copy, for per-step indexing without a device sync.
    """

    def __init__(self, orderings: np.ndarray, rng: np.random.Generator | None) -> None:
        super().__init__()
        orderings = np.asarray(orderings, dtype=np.int64)
        self.n_members = len(orderings)
        self.register_buffer("orderings", torch.as_tensor(orderings))
        self.register_buffer("positions", torch.as_tensor(np.argsort(orderings, axis=1)))
        self.host_orderings = orderings.tolist()
        # A numpy Generator pickles with the module (a torch.Generator does not).
        self._member_rng = None if rng is None else np.random.default_rng(rng.integers(2**63 - 1))

    def draw(self) -> int:
        """One member, uniformly (always 0 for a single member)."""
        if self.n_members == 1:
            return 0
        if self._member_rng is None:
            raise RuntimeError("this ensemble was built without an rng, so it draws no member")
        return int(self._member_rng.integers(self.n_members))

    def ordering(self, member: int = 0) -> Tensor:
        """The generation order of ``member``."""
        return self.orderings[member]


class OrderedNetwork(AutoregressiveNetwork):
    """An :class:`~skar.base.AutoregressiveNetwork` whose members are the orderings of its
    :class:`OrderingEnsemble`, ``self.ensemble`` (set it in ``__init__``).

    Gives ``n_members``, ``draw_member``, ``ordering`` and the ``orderings``/``positions``
    buffers from the ensemble, so a model writes only its forward pass.
    """

    ensemble: OrderingEnsemble

    @property
    def n_members(self) -> int:  # type: ignore[override]
        return self.ensemble.n_members

    @property
    def orderings(self) -> Tensor:
        """``(n_members, D)`` generation orders (the ensemble's buffer)."""
        return self.ensemble.orderings

    @property
    def positions(self) -> Tensor:
        """``(n_members, D)`` inverse permutations (the ensemble's buffer)."""
        return self.ensemble.positions

    def draw_member(self) -> int:
        """One member per minibatch, uniformly."""
        return self.ensemble.draw()

    def ordering(self, member: int = 0) -> Tensor:
        """The generation order of ``member``."""
        return self.ensemble.ordering(member)


class ColumnHeads(nn.Module):
    """Per-column output heads: column ``d``'s parameters are ``V_d h_d + b_d`` from its own
    hidden vector ``h_d``.

    ``V`` is stored padded as ``(D, K_max, H)`` so all columns are evaluated at once, and
    ``flat_index`` picks each column's ``n_params_d`` real outputs, in the flat column-major
    layout of :class:`~skar.distributions.ColumnConditionals`.

    Parameters
    ----------
    output_sizes : list of int
        Conditional parameters per column (``family.n_params``).
    n_hidden : int
        Width ``H`` of the hidden vectors.
    init : bool, default=True
        Draw ``V`` from ``N(0, 1/H)`` (and zero ``b``). ``False`` leaves ``V`` uninitialised
        and draws nothing from the torch RNG, for a network that initialises its weights
        itself (:meth:`normal_`).
    exact : bool, default=True
        Sum the products in float64 (not a batched matmul): the reduction order then cannot
        change the float32 result, so one column evaluated alone by an incremental sampler
        (:meth:`column`) rounds exactly as in the parallel pass. ``False``: one ``einsum``.
    """

    def __init__(self, output_sizes: list[int], n_hidden: int, init: bool = True,
                 exact: bool = True) -> None:
        super().__init__()
        D, k_max = len(output_sizes), max(output_sizes)
        self.output_sizes = [int(s) for s in output_sizes]
        self.exact = exact
        if init:
            self.weight = nn.Parameter(torch.randn(D, k_max, n_hidden) / math.sqrt(n_hidden))
        else:
            self.weight = nn.Parameter(torch.zeros(D, k_max, n_hidden))
        self.bias = nn.Parameter(torch.zeros(D, k_max))
        flat = [d * k_max + k for d, size in enumerate(output_sizes) for k in range(size)]
        self.register_buffer("flat_index", torch.as_tensor(flat, dtype=torch.long),
                             persistent=False)

    @torch.no_grad()
    def normal_(self, std: float) -> None:
        """Draw the real (unpadded) weights from ``N(0, std^2)``, columns grouped by their
        number of parameters (smallest first), and zero the padding and the biases."""
        self.weight.zero_()
        self.bias.zero_()
        sizes = np.asarray(self.output_sizes)
        for s in sorted(set(self.output_sizes)):
            cols = torch.as_tensor(np.flatnonzero(sizes == s))
            w = torch.empty(len(cols), s, self.weight.shape[-1], dtype=self.weight.dtype)
            self.weight[cols, :s] = nn.init.normal_(w, std=std).to(self.weight.device)

    def forward(self, h: Tensor, columns: Tensor) -> Tensor:
        """``(k, B, H)`` hidden vectors of the columns ``columns`` ``(k,)`` -> their
        ``(k, B, K_max)`` parameters (padded; :meth:`flat` picks the real ones)."""
        if not self.exact:
            return torch.einsum("kbh,kah->kba", h, self.weight[columns]) + \
                self.bias[columns].unsqueeze(1)
        out = (h.unsqueeze(2) * self.weight[columns].unsqueeze(1)).sum(-1, dtype=torch.float64)
        return out.to(h.dtype) + self.bias[columns].unsqueeze(1)

    def flat(self, theta: Tensor) -> Tensor:
        """``(B, D, K_max)`` padded parameters in column order -> ``(B, n_params)``."""
        return theta.reshape(theta.shape[0], -1)[:, self.flat_index]

    def column(self, h: Tensor, d: int) -> Tensor:
        """``(B, H)`` hidden vector -> column ``d``'s ``(B, n_params_d)`` parameters."""
        k = self.output_sizes[d]
        if not self.exact:
            return h @ self.weight[d, :k].T + self.bias[d, :k]
        out = (h.unsqueeze(1) * self.weight[d]).sum(-1, dtype=torch.float64)
        out = out.to(h.dtype) + self.bias[d]  # (B, K_max)
        return out[:, :k]

    @torch.no_grad()
    def init_marginals(self, theta0: Tensor, independent: Tensor) -> None:
        """Set the biases to ``theta0`` and zero the weights of the parameters flagged
        ``independent`` (both in the flat layout; see
        :meth:`skar.base.AutoregressiveNetwork.init_marginals`)."""
        rows = self.flat_index[independent.to(self.flat_index.device)]
        self.weight.view(-1, self.weight.shape[-1])[rows] = 0.0
        self.bias.view(-1)[self.flat_index] = theta0.to(self.bias)


def shift_right(x: Tensor, start: Tensor | float | int, dim: int = 1) -> Tensor:
    """Shift ``x`` by one along ``dim``: position ``i`` holds ``x[i - 1]``, position 0 ``start``.

    The input of an autoregressive sequence model, so that position ``i`` sees only the
    positions before it. ``start`` broadcasts to one slice of ``x`` (a learned start
    embedding of shape ``(C,)`` for ``(B, T, C)``, or a scalar).
    """
    shape = list(x.shape)
    shape[dim] = 1
    first = torch.as_tensor(start, dtype=x.dtype, device=x.device).expand(shape)
    return torch.cat([first, x.narrow(dim, 0, x.shape[dim] - 1)], dim=dim)
