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
  of :class:`~skar.distributions.ColumnConditionals` (optionally tied: columns with one key
  share one head);
- :class:`ValueEmbedding`: the embedding ``E_d(x_d)`` of a column's encoded value (a table row
  for a binary or categorical code, ``x w_d + b_d`` for a standardised number; optionally tied),
  the input of a sequence model over the columns;
- :func:`shift_right`: the shifted input of a sequence model (position ``i`` reads position
  ``i - 1``, position 0 a start value);
- :func:`tie_keys_of`: the ``tie_keys`` that tie the columns of one kind and one category
  list, for sequences read through a table's columns;
- :func:`sample_stepwise`: the loop of an exact incremental sampler (a key/value cache, a
  carried recurrent state), drawing what :func:`skar.base.sample_plain` draws;
- :class:`ConditionalTabularMixin` and :class:`ContextTokens`: ``fit(X, y)`` learning
  ``p(x | y)``, ``y`` encoded by its own schema into context units, and those units as one
  token per ``y`` column for a model that attends to them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.utils import check_random_state
from sklearn.utils.validation import _num_samples, check_is_fitted
from torch import Tensor, nn

from .base import AutoregressiveNetwork, DensityModule, member_rows
from .schema import TabularSchema

__all__ = [
    "ColumnHeads",
    "ConditionalTabularMixin",
    "ContextTokens",
    "MaskedConv2d",
    "MaskedLinear",
    "OrderedNetwork",
    "OrderingEnsemble",
    "ValueEmbedding",
    "sample_stepwise",
    "shift_right",
    "tie_keys_of",
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

    ``V`` is stored padded as ``(n_heads, K_max, H)`` so all columns are evaluated at once, and
    ``flat_index`` picks each column's ``n_params_d`` real outputs, in the flat column-major
    layout of :class:`~skar.distributions.ColumnConditionals`.

    **Tied heads.** With ``tie_keys``, columns with equal keys and equal output sizes share one
    head, ``V_d = V_{d'}`` and ``b_d = b_{d'}`` (a sequence whose positions hold one kind of
    symbol then has one conditional applied at every position, as char-RNN). Without, every
    column has its own head (``n_heads = D``).

    Parameters
    ----------
    output_sizes : list of int
        Conditional parameters per column (``family.n_params``).
    n_hidden : int
        Width ``H`` of the hidden vectors.
    init : bool, default=True
        Draw ``V`` from ``N(0, 1/H)`` (and zero ``b``). ``False`` leaves ``V`` uninitialised
        and draws nothing from the torch RNG, for a network that initialises its weights
        itself (:meth:`normal_`, :meth:`uniform_`).
    exact : bool, default=True
        Sum the products in float64 (not a batched matmul): the reduction order then cannot
        change the float32 result, so one column evaluated alone by an incremental sampler
        (:meth:`column`) rounds exactly as in the parallel pass. ``False``: one ``einsum``
        (one matmul when every column shares one head).
    tie_keys : list of hashable or None, default=None
        One key per column; columns with equal keys and equal output sizes share a head
        (columns with one key but different output sizes get one head per size). None: every
        column has its own head.

    Attributes
    ----------
    weight : Parameter of shape (n_heads, K_max, H)
    bias : Parameter of shape (n_heads, K_max)
    head_index : LongTensor of shape (D,)
        Buffer; ``head_index[d]`` is the head of column ``d`` (``arange(D)`` untied).
    n_heads : int
    """

    def __init__(self, output_sizes: list[int], n_hidden: int, init: bool = True,
                 exact: bool = True, tie_keys: Sequence[Hashable] | None = None) -> None:
        super().__init__()
        D, k_max = len(output_sizes), max(output_sizes)
        self.output_sizes = [int(s) for s in output_sizes]
        self.exact = exact
        if tie_keys is None:
            head_of = list(range(D))
        else:
            if len(tie_keys) != D:
                raise ValueError(f"tie_keys has {len(tie_keys)} entries for {D} columns")
            heads: dict[tuple, int] = {}
            head_of = [heads.setdefault((s, key), len(heads))
                       for s, key in zip(self.output_sizes, tie_keys)]
        self.n_heads = max(head_of) + 1
        self.head_sizes = [0] * self.n_heads
        for d, head in enumerate(head_of):
            self.head_sizes[head] = self.output_sizes[d]
        self._head_of = head_of
        # Distinct keys only: the untied code path (and its rounding) is then the one used.
        self._tied = self.n_heads < D
        if init:
            self.weight = nn.Parameter(
                torch.randn(self.n_heads, k_max, n_hidden) / math.sqrt(n_hidden))
        else:
            self.weight = nn.Parameter(torch.zeros(self.n_heads, k_max, n_hidden))
        self.bias = nn.Parameter(torch.zeros(self.n_heads, k_max))
        flat = [d * k_max + k for d, size in enumerate(output_sizes) for k in range(size)]
        self.register_buffer("flat_index", torch.as_tensor(flat, dtype=torch.long),
                             persistent=False)
        self.register_buffer("head_index", torch.as_tensor(head_of, dtype=torch.long),
                             persistent=False)

    @torch.no_grad()
    def _draw_by_size(self, draw: Callable[[Tensor], Tensor]) -> None:
        """Zero everything, then fill the real weights with ``draw(empty tensor)``, heads grouped
        by their number of parameters (smallest first), in head order within a group."""
        self.weight.zero_()
        self.bias.zero_()
        sizes = np.asarray(self.head_sizes)
        for s in sorted(set(self.head_sizes)):
            rows = torch.as_tensor(np.flatnonzero(sizes == s))
            w = torch.empty(len(rows), s, self.weight.shape[-1], dtype=self.weight.dtype)
            self.weight[rows, :s] = draw(w).to(self.weight.device)

    def normal_(self, std: float) -> None:
        """Draw the real (unpadded) weights from ``N(0, std^2)``, heads grouped by their number
        of parameters (smallest first), and zero the padding and the biases."""
        self._draw_by_size(lambda w: nn.init.normal_(w, std=std))

    def uniform_(self, bound: float) -> None:
        """Draw the real (unpadded) weights from ``U(-bound, bound)``, in the order of
        :meth:`normal_`, and zero the padding and the biases."""
        self._draw_by_size(lambda w: nn.init.uniform_(w, -bound, bound))

    def forward(self, h: Tensor, columns: Tensor) -> Tensor:
        """``(k, B, H)`` hidden vectors of the columns ``columns`` ``(k,)`` -> their
        ``(k, B, K_max)`` parameters (padded; :meth:`flat` picks the real ones)."""
        if self._tied:
            if self.n_heads == 1 and not self.exact:
                return h @ self.weight[0].T + self.bias[0]
            columns = self.head_index[columns]
        if not self.exact:
            return torch.einsum("kbh,kah->kba", h, self.weight[columns]) + \
                self.bias[columns].unsqueeze(1)
        out = (h.unsqueeze(2) * self.weight[columns].unsqueeze(1)).sum(-1, dtype=torch.float64)
        return out.to(h.dtype) + self.bias[columns].unsqueeze(1)

    def flat(self, theta: Tensor) -> Tensor:
        """``(B, D, K_max)`` padded parameters in column order -> ``(B, n_params)``."""
        return theta.reshape(theta.shape[0], -1)[:, self.flat_index]

    def all_columns(self, h: Tensor) -> Tensor:
        """``(B, D, H)`` hidden vectors in column order -> ``(B, n_params)`` parameters, flat."""
        columns = torch.arange(h.shape[1], device=h.device)
        return self.flat(self(h.transpose(0, 1), columns).transpose(0, 1))

    def column(self, h: Tensor, d: int) -> Tensor:
        """``(B, H)`` hidden vector -> column ``d``'s ``(B, n_params_d)`` parameters."""
        k, head = self.output_sizes[d], self._head_of[d]
        if not self.exact:
            return h @ self.weight[head, :k].T + self.bias[head, :k]
        out = (h.unsqueeze(1) * self.weight[head]).sum(-1, dtype=torch.float64)
        out = out.to(h.dtype) + self.bias[head]  # (B, K_max)
        return out[:, :k]

    @torch.no_grad()
    def init_marginals(self, theta0: Tensor, independent: Tensor) -> None:
        """Set the biases to ``theta0`` and zero the weights of the parameters flagged
        ``independent`` (both in the flat layout; see
        :meth:`skar.base.AutoregressiveNetwork.init_marginals`).

        Raises
        ------
        ValueError
            When columns share a head: a shared bias holds no column's own marginal.
        """
        if self._tied:
            shared = [d for d in range(len(self._head_of))
                      if self._head_of.count(self._head_of[d]) > 1]
            raise ValueError(
                f"columns {shared[0]} and {shared[1]} share one output head (tie_keys), so "
                "it cannot start at each column's own marginal; use untied heads"
            )
        rows = self.flat_index[independent.to(self.flat_index.device)]
        self.weight.view(-1, self.weight.shape[-1])[rows] = 0.0
        self.bias.view(-1)[self.flat_index] = theta0.to(self.bias)


class ValueEmbedding(nn.Module):
    """Embeddings of the columns' encoded values: ``E_d(x_d)`` is row ``x_d`` of column
    ``d``'s block of one lookup table for a binary or categorical code, and

    .. math::  E_d(x_d) = x_d\\, w_d + b_d

    for a (standardised) continuous value. The input of a model that reads the columns as a
    sequence (the Transformer's and the RNN's tokens).

    **Tied embeddings.** With ``tie_keys``, columns with equal keys share their block of the
    table (or their ``(w, b)``), so one symbol has one embedding at every position of a
    sequence.

    Parameters
    ----------
    kinds : list of str
        ``"binary"``, ``"categorical"`` or ``"continuous"`` per column
        (:attr:`skar.schema.TabularSchema.kinds`).
    input_sizes : list of int
        Categories per categorical column (:attr:`skar.schema.TabularSchema.input_sizes`);
        binary columns have 2 rows whatever it says, continuous columns none.
    width : int
        Width ``C`` of the embeddings.
    tie_keys : list of hashable or None, default=None
        One key per column; columns with equal keys share their embedding (they must have the
        same kind and, if discrete, the same number of values). None: every column has its own.
    init : bool, default=True
        Draw the table, then ``w``, from ``N(0, 1)`` (``b`` starts at zero). ``False`` leaves
        them at zero and draws nothing from the torch RNG, for a network that initialises its
        weights itself.

    Attributes
    ----------
    table : Parameter of shape (n_rows, C)
        Every discrete key's block of rows (at least one row).
    weight, bias : Parameter of shape (n_continuous_keys, C)
        ``w`` and ``b`` of every continuous key.
    """

    def __init__(self, kinds: Sequence[str], input_sizes: Sequence[int], width: int,
                 tie_keys: Sequence[Hashable] | None = None, init: bool = True) -> None:
        super().__init__()
        D = len(kinds)
        keys = list(range(D)) if tie_keys is None else list(tie_keys)
        if len(keys) != D or len(input_sizes) != D:
            raise ValueError(f"{D} kinds, {len(input_sizes)} input sizes and {len(keys)} tie "
                             "keys: give one of each per column")
        sizes = [0 if k == "continuous" else 2 if k == "binary" else int(s)
                 for k, s in zip(kinds, input_sizes)]
        # Every distinct key of a discrete column owns a block of the table; every distinct
        # key of a continuous column a row of (weight, bias).
        first: dict[Hashable, int] = {}
        block: dict[Hashable, int] = {}
        row: dict[Hashable, int] = {}
        n_rows = 0
        slot = np.zeros(D, dtype=np.int64)
        for d, (kind, key) in enumerate(zip(kinds, keys)):
            f = first.setdefault(key, d)
            if (kinds[f], sizes[f]) != (kind, sizes[d]):
                raise ValueError(
                    f"columns {f} and {d} share the tie key {key!r} but column {f} is "
                    f"{kinds[f]} with {sizes[f]} values and column {d} {kind} with {sizes[d]}; "
                    "tied columns need the same kind and number of values"
                )
            if kind == "continuous":
                slot[d] = row.setdefault(key, len(row))
            else:
                if key not in block:
                    block[key] = n_rows
                    n_rows += sizes[d]
                slot[d] = block[key]
        disc = [d for d, k in enumerate(kinds) if k != "continuous"]
        cont = [d for d, k in enumerate(kinds) if k == "continuous"]
        self.n_features, self.width = D, int(width)
        new = torch.randn if init else torch.zeros
        self.table = nn.Parameter(new(max(n_rows, 1), self.width))
        self.weight = nn.Parameter(new(len(row), self.width))
        self.bias = nn.Parameter(torch.zeros(len(row), self.width))
        for name, idx in (("_disc_cols", disc), ("_disc_offsets", slot[disc]),
                          ("_cont_cols", cont), ("_cont_rows", slot[cont])):
            self.register_buffer(name, torch.as_tensor(idx, dtype=torch.long), persistent=False)
        self._slot = slot.tolist()
        self._continuous = [k == "continuous" for k in kinds]

    def embed_values(self, x: Tensor) -> Tensor:
        """``(B, D)`` encoded rows -> ``(B, D, C)`` embeddings ``E_d(x_d)``, column order."""
        e = self.table.new_zeros(x.shape[0], self.n_features, self.width)  # (B, D, C)
        if self._disc_cols.numel():
            idx = self._disc_offsets + x[:, self._disc_cols].long()  # (B, n_disc)
            e[:, self._disc_cols] = F.embedding(idx, self.table)  # (B, n_disc, C)
        if self._cont_cols.numel():
            v = x[:, self._cont_cols].unsqueeze(-1).to(self.table.dtype)  # (B, n_cont, 1)
            e[:, self._cont_cols] = (v * self.weight[self._cont_rows]
                                     + self.bias[self._cont_rows])  # (B, n_cont, C)
        return e

    forward = embed_values

    def embed_column(self, values: Tensor, d: int) -> Tensor:
        """``(B,)`` encoded values of column ``d`` -> ``(B, C)`` embeddings ``E_d``."""
        s = self._slot[d]
        if self._continuous[d]:
            v = values.unsqueeze(-1).to(self.weight.dtype)  # (B, 1)
            return v * self.weight[s] + self.bias[s]  # (B, C)
        return F.embedding(s + values.long(), self.table)  # (B, C)


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


def tie_keys_of(schema: TabularSchema) -> list[Hashable]:
    """One tie key per column: ``("categorical", categories)``, ``("binary",)``,
    ``("quantized", step)`` or ``("continuous",)``, so that columns of one type with equal
    category lists (or grid steps) share their weights in :class:`ValueEmbedding` and
    :class:`ColumnHeads`.

    For a sequence stored one position per column (a window of text whose every position is a
    categorical over one alphabet), this makes one embedding and one head serve every position,
    as in char-RNN; a table's columns, which mean different things, should stay untied.
    """
    keys: list[Hashable] = []
    for c in schema.columns:
        if c.kind == "categorical":
            keys.append(("categorical", tuple(np.asarray(c.categories).tolist())))
        elif c.step is not None:
            keys.append(("quantized", float(c.step)))
        else:
            keys.append((c.kind,))
    return keys


@torch.no_grad()
def sample_stepwise(
    module: DensityModule,
    n_samples: int,
    generator: torch.Generator,
    init_state: Callable[..., Any],
    step: Callable[[Tensor, int, int, Any], tuple[Tensor, Any]],
    context: Tensor | None = None,
) -> Tensor:
    """Exact ancestral sampling through a network's incremental step: the loop of every fast
    sampler that carries something from one position to the next.

    Draws what :func:`skar.base.sample_plain` draws with the same generator: members are drawn
    and visited the same way (:func:`skar.base.member_rows`), and every column is drawn by
    :meth:`~skar.distributions.ColumnConditionals.sample_column` in generation order, so both
    loops consume the same random numbers in the same order. Only the arithmetic of the
    parameters differs (``step`` instead of a full pass), by float rounding.

    Parameters
    ----------
    module : DensityModule
        Its ``network`` gives ``n_members`` and ``ordering(member)``.
    n_samples : int
    generator : torch.Generator
        CPU generator; every draw comes from it.
    init_state : callable
        ``init_state(n_rows, device, dtype)``: what a member's rows carry before step 0 (an
        empty key/value cache; None for a recurrent state that starts at zero). With a
        ``context``, ``init_state(n_rows, device, dtype, context_rows)`` with the rows'
        ``(n_rows, U)`` context (a recurrent state that starts from ``y``).
    step : callable
        ``step(x, i, member, state) -> (params, state)``: the ``(n_rows, n_params_d)``
        parameters of column ``d = ordering(member)[i]`` from the rows drawn so far ``x``
        (``(n_rows, D)``, the columns of steps ``< i`` filled) and the state after step
        ``i - 1``, and the state after step ``i``.
    context : Tensor of shape (n_samples, U), optional
        The context units of a conditional network, one row per sample.

    Returns
    -------
    Tensor of shape (n_samples, D)
        Encoded rows.
    """
    net, cond = module.network, module.conditionals
    ref = next(module.parameters())
    device, dtype = ref.device, ref.dtype
    D = cond.n_features
    # Encoded rows are float32 whatever the module's dtype, as in sample_plain, so both loops
    # round every drawn value the same way before it is read back.
    x = torch.zeros(n_samples, D, device=device)
    for m, rows in member_rows(net.n_members, n_samples, generator, device):
        n = rows.numel()
        xm = torch.zeros(n, D, device=device)
        params = torch.zeros(n, cond.n_params, device=device, dtype=dtype)
        state = (init_state(n, device, dtype) if context is None
                 else init_state(n, device, dtype, context[rows]))
        for i, d in enumerate(net.ordering(m).tolist()):
            params[:, cond.offsets[d] : cond.offsets[d + 1]], state = step(xm, i, m, state)
            xm[:, d] = cond.sample_column(params, d, generator)
        x[rows] = xm
    return x


# ---------------------------------------------------------------------------- conditioning
class ContextTokens(nn.Module):
    """One token per column of the conditioning input ``y`` (an encoder's memory).

    The context of a conditional tabular model is ``y`` encoded column by column
    (:class:`ConditionalTabularMixin`): a categorical column as its one-hot units, a binary one
    as 0/1, a numeric one standardised. Column ``t``'s token is

    .. math::  m_t = \\sum_{u \\in t} c_u\\, W_u + b_t,

    a table row for a one-hot column and ``c w_t + b_t`` for a number, the analogue of
    :class:`ValueEmbedding` for ``y``. A model attends to the tokens (the Transformer's
    cross-attention) or sums them.

    Parameters
    ----------
    context_sizes : list of int
        Units of every ``y`` column (K for a categorical column, else 1).
    width : int
        Width ``C`` of the tokens.
    """

    def __init__(self, context_sizes: Sequence[int], width: int) -> None:
        super().__init__()
        self.n_tokens = len(context_sizes)
        column_of_unit = np.repeat(np.arange(len(context_sizes)), context_sizes)
        self.register_buffer("column_of_unit", torch.as_tensor(column_of_unit),
                             persistent=False)
        self.weight = nn.Parameter(torch.empty(int(sum(context_sizes)), width))
        self.bias = nn.Parameter(torch.zeros(len(context_sizes), width))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, context: Tensor) -> Tensor:
        """``(B, U)`` context units -> ``(B, T, C)`` tokens, one per ``y`` column."""
        parts = context.unsqueeze(-1).to(self.weight.dtype) * self.weight  # (B, U, C)
        tokens = self.bias.expand(context.shape[0], -1, -1).clone()  # (B, T, C)
        return tokens.index_add_(1, self.column_of_unit, parts)


def _as_context(y: Any) -> pd.DataFrame:
    """``y`` as a DataFrame: a DataFrame stays one, a Series becomes a one-column frame, an
    array-like of shape ``(n,)`` one column and of shape ``(n, k)`` ``k`` columns (named
    ``0 .. k-1``). As a frame, string and object columns are categorical whatever their
    values ("1", "2" are labels, not numbers)."""
    if isinstance(y, pd.DataFrame):
        return y
    if isinstance(y, pd.Series):
        return y.to_frame()
    y = np.asarray(y)
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.ndim != 2:
        raise ValueError(
            f"y must be 1-D (one column) or 2-D (one row per sample); got shape {y.shape}"
        )
    return pd.DataFrame(y)


def _context_units(schema: TabularSchema, Z: np.ndarray) -> np.ndarray:
    """Encoded ``y`` (codes, 0/1, standardised numbers) -> ``(n, U)`` float32 context units,
    a categorical column expanded to its one-hot units."""
    blocks = []
    for j, spec in enumerate(schema.columns):
        if spec.kind == "categorical":
            blocks.append(np.eye(spec.n_categories, dtype=np.float32)[Z[:, j].astype(np.int64)])
        else:
            blocks.append(Z[:, j : j + 1])
    return np.concatenate(blocks, axis=1).astype(np.float32)


class ConditionalTabularMixin:
    """``fit(X, y)`` learns the conditional density ``p(x | y)`` (a mixin of the tabular
    estimators; put it before :class:`~skar.base.BaseAutoregressiveDensity` in the bases).

    ``y`` may be one or several columns, numeric, binary or categorical: a Series, a DataFrame,
    or an array of shape ``(n,)`` or ``(n, k)``. It gets its own
    :class:`~skar.schema.TabularSchema`, ``context_schema_`` (numbers standardised, never
    quantized; categories one-hot), and reaches the network as one row of context units per
    sample through :meth:`~skar.base.BaseAutoregressiveDensity._encode_context`. Each network
    decides how the context enters (MADE: every hidden unit; the Transformer:
    cross-attention; NADE: a conditioning bias). The network's context layers exist only when
    ``y`` is given: ``fit(X)`` builds, draws and scores exactly as an unconditional model.

    Scoring and sampling follow the fit:

    - fitted with ``y``: ``score_samples(X, y)`` is ``log p(x | y)`` and ``sample(n, y=...)``
      draws from it. Without ``y``, a model whose training ``y`` took at most
      :attr:`max_marginal_contexts` distinct rows ``y_j`` (frequencies ``pi_j``) scores the
      marginal ``log p(x) = log sum_j pi_j p(x | y_j)`` and samples ``y_j ~ pi`` first (as
      :class:`~skar.PixelCNNDensity` does with its classes); with more distinct rows (a
      continuous ``y``) the marginal would cost a pass per training row, so a ValueError says
      that ``y`` is needed. ``score_samples_per_feature`` always needs ``y``.
    - fitted without ``y``: passing ``y`` to a scoring or sampling method raises a ValueError
      (the model is ``p(x)`` and cannot condition; ignoring ``y`` silently would return
      ``log p(x)`` where ``log p(x | y)`` was asked for).
    """

    #: Most distinct training rows of ``y`` for which scoring without ``y`` returns the
    #: marginal over them (one network pass per row).
    max_marginal_contexts: int = 100

    _CONTEXT_ATTRIBUTES = ("context_schema_", "context_values_", "context_prior_")

    def _fitted_with_y(self) -> bool:
        return getattr(self, "context_schema_", None) is not None

    def _context_sizes(self) -> list[int] | None:
        """Units of every ``y`` column (``_build_network``'s argument), None without ``y``."""
        if not self._fitted_with_y():
            return None
        return self.context_schema_.input_sizes

    def _encode_context(self, y: Any, *, reset: bool) -> np.ndarray | None:
        """``y`` -> ``(n, U)`` float32 context units (categorical one-hot, numbers
        standardised), learning ``context_schema_`` in fit."""
        if reset:
            for name in self._CONTEXT_ATTRIBUTES:
                self.__dict__.pop(name, None)
            if y is None:
                return None
            Y = _as_context(y)
            self._check_context_complete(Y)
            try:
                schema = TabularSchema.from_data(Y, quantization=None, point_masses=None)
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"in y: {exc}") from None
            units = _context_units(schema, schema.encode(Y))
            self.context_schema_ = schema
            _, first, counts = np.unique(units, axis=0, return_index=True, return_counts=True)
            if len(first) <= self.max_marginal_contexts:
                rows = np.sort(first)
                order = np.argsort(first)
                self.context_values_ = Y.iloc[rows].reset_index(drop=True)
                self.context_prior_ = counts[order] / counts.sum()
            return units
        if not self._fitted_with_y():
            if y is not None:
                raise ValueError(
                    f"{type(self).__name__} was fitted without y, so it models p(x) and cannot "
                    "condition on y; fit it with fit(X, y) to learn p(x | y), or call this "
                    "method without y"
                )
            return None
        if y is None:
            raise ValueError(self._y_needed_message())
        Y = _as_context(y)
        schema = self.context_schema_
        if Y.shape[1] != schema.n_features:
            raise ValueError(
                f"y has {Y.shape[1]} column(s), but {type(self).__name__} was fitted with "
                f"{schema.n_features} y column(s)"
            )
        if isinstance(y, pd.DataFrame):
            names = [c.name for c in schema.columns]
            if list(Y.columns) != names:
                raise ValueError(
                    f"y has the columns {list(Y.columns)}, but was fitted with {names}"
                )
        self._check_context_complete(Y)
        try:
            Z = schema.encode(Y)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"in y: {exc}") from None
        return _context_units(schema, Z)

    def _y_needed_message(self) -> str:
        return (
            f"{type(self).__name__} was fitted with y (it models p(x | y)): pass y, one row "
            "per sample. Without y only a model whose training y took at most "
            f"max_marginal_contexts={self.max_marginal_contexts} distinct values scores or "
            "samples the marginal p(x) (this one's took more)"
        )

    @staticmethod
    def _check_context_complete(Y: Any) -> None:
        for j in range(Y.shape[1]):
            col = Y.iloc[:, j] if isinstance(Y, pd.DataFrame) else Y[:, j]
            missing = np.asarray(pd.isna(col), dtype=bool)
            if missing.any():
                row = int(np.flatnonzero(missing)[0])
                name = Y.columns[j] if isinstance(Y, pd.DataFrame) else j
                value = np.asarray(col, dtype=object)[row]
                raise ValueError(
                    f"y column {name!r} holds a missing value ({value!r}) at "
                    f"row {row}; the conditioning y must be complete (impute or drop those "
                    "rows)"
                )

    def _context_support(self) -> tuple[Any, np.ndarray]:
        """The distinct training rows of ``y`` and their frequencies, or the ValueError."""
        if getattr(self, "context_values_", None) is None:
            raise ValueError(self._y_needed_message())
        return self.context_values_, self.context_prior_

    def score_samples(self, X: Any, y: Any = None) -> np.ndarray:
        """Log density of every row, natural log, in the units of ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like, Series or DataFrame of shape (n_samples,) or (n_samples, n_y), \
default=None
            For a model fitted with ``y``: the conditioning values, one row per row of ``X``.

        Returns
        -------
        log_density : ndarray of shape (n_samples,), float64
            ``log p(x | y)`` for a model fitted with ``y``; ``log p(x)`` for one fitted
            without. A model fitted with ``y`` and scored without it returns the marginal
            ``log sum_j pi_j p(x | y_j)`` over the distinct training rows ``y_j`` when there
            are at most :attr:`max_marginal_contexts` of them, and raises a ValueError
            otherwise.
        """
        if y is not None or not self._fitted_with_y():
            return super().score_samples(X, y)
        values, prior = self._context_support()
        n = _num_samples(X)
        total = None
        for j, pi in enumerate(prior):
            yj = _repeat_row(values, j, n)
            s = super().score_samples(X, yj) + np.log(pi)
            total = s if total is None else np.logaddexp(total, s)
        return total

    def sample(self, n_samples: int = 1, random_state: Any = None, y: Any = None) -> Any:
        """Draw rows from the fitted density.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seeds the draw; ``None`` uses the estimator's ``random_state``.
        y : scalar, dict, array-like, Series or DataFrame, default=None
            For a model fitted with ``y``: one row of ``y`` per sample, or a single row (a
            scalar, a dict from ``y`` column to value, a one-row frame) for every sample.
            ``None`` first draws ``y`` from its training rows (when the marginal is
            available, see :meth:`score_samples`).

        Returns
        -------
        X : ndarray or DataFrame of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        if not self._fitted_with_y() or not isinstance(n_samples, Integral) or n_samples < 1:
            return super().sample(n_samples, random_state=random_state, y=y)
        if y is None:
            values, prior = self._context_support()
            rs = check_random_state(self.random_state if random_state is None else random_state)
            rows = rs.choice(len(prior), n_samples, p=prior)
            y = values.iloc[rows].reset_index(drop=True)
            return super().sample(n_samples, random_state=rs, y=y)
        if isinstance(y, dict):
            y = pd.DataFrame({k: [v] for k, v in y.items()})
        if np.ndim(y) == 0:
            y = [y]
        width = self.context_schema_.n_features
        if not isinstance(y, (pd.DataFrame, pd.Series)) and np.ndim(y) == 1 and width > 1:
            y = np.asarray(y).reshape(1, -1)  # one row of several y columns
        Y = _as_context(y)
        if not isinstance(y, pd.DataFrame) and Y.shape[1] == width:
            Y.columns = [c.name for c in self.context_schema_.columns]  # positional y
        if Y.shape[0] == 1 and n_samples > 1:
            Y = _repeat_row(Y, 0, n_samples)
        return super().sample(n_samples, random_state=random_state, y=Y)


def _repeat_row(values: pd.DataFrame, j: int, n: int) -> pd.DataFrame:
    return values.iloc[[j] * n].reset_index(drop=True)
