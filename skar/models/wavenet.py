"""WaveNet: causal dilated convolutions for sequences (van den Oord, Dieleman, Zen, Simonyan,
Vinyals, Graves, Kalchbrenner, Senior & Kavukcuoglu, 2016), with the fast queued generation of
Paine et al. (2016).

Each row of ``X`` is one sequence ``x_0, ..., x_{T-1}`` and the density is the chain rule in
time order, with one conditional network shared by every step:

.. math::  \\log p(x) = \\sum_{t=0}^{T-1} \\log p(x_t \\mid x_{t-R}, \\dots, x_{t-1}).

**Inputs.** Step ``t`` reads the value before it, ``u_t = (x_{t-1}, 1)`` (``u_0 = (0, 0)``: the
second channel says whether a past value exists, so the first steps, which see zero padding, can
differ from steps after a genuine zero), projected to ``C_r`` residual channels, ``h^0 = W_in u``;
a quantised signal's previous code is looked up in an embedding instead (with one extra code,
"no past value", for ``t = 0``).

**Gated residual layers.** Layer ``l`` has dilation ``d_l = 2^{l mod L}`` (dilations 1, 2, 4,
..., ``2^{L-1}``, repeated in ``n_blocks`` blocks) and a causal convolution of width ``k`` that
reads ``h^l`` at ``t, t - d_l, ..., t - (k-1) d_l`` (zeros before the start):

.. math::

    z^l_t &= \\sum_{j=0}^{k-1} W^l_j \\, h^l_{t - (k-1-j) d_l} + b^l, \\qquad
    a^l_t = \\tanh(z^{l,f}_t) \\odot \\sigma(z^{l,g}_t), \\\\
    h^{l+1}_t &= h^l_t + V^l a^l_t, \\qquad s_t = \\sum_l S^l a^l_t,

and the parameters of ``p(x_t | x_<t)`` are ``W_2 \\, \\mathrm{relu}(W_1 \\, \\mathrm{relu}(s_t))``.
The one-step shift of the inputs plus causal convolutions make step ``t`` depend on
``x_{t-R}, ..., x_{t-1}`` exactly, with receptive field

.. math::  R = 1 + (k - 1) \\, n_{\\text{blocks}} \\, (2^{L} - 1).

All steps share the weights (translation equivariance), so one pass over the sequence gives
every conditional; the network emits the concatenation of the ``T`` steps' parameters.

**Fast generation (Paine et al. 2016).** At generation step ``t`` the only new activations are
those at time ``t``. Layer ``l`` keeps a queue (a circular buffer) of its last
``(k-1) d_l + 1`` inputs; a step pushes ``h^l_t``, reads the ``k`` taps, and computes one
column of every layer: ``O(n_layers)`` work per step instead of a pass over the sequence.

**Quantisation.** ``quantization="mu_law"`` maps ``[lo, hi]`` to ``y in [-1, 1]`` and companders
``f(y) = sign(y) ln(1 + mu |y|) / ln(1 + mu)`` with ``mu = n_levels - 1`` (255 for the paper's
256 levels), then cuts ``f`` into ``n_levels`` equal bins; ``"linear"`` cuts ``[lo, hi]`` into
equal bins. A Categorical over the bin codes gives ``P(k_t | k_<t)``, and the density of ``x`` in
the user's units spreads each bin's probability uniformly over its width ``w_k``:

.. math::  \\log p(x) = \\sum_t \\left[\\log P(k_t \\mid k_{<t}) - \\log w_{k_t}\\right],

a proper density on ``[lo, hi]^T``, comparable with any other density of the same columns;
samples draw the bin and a uniform position inside it with the same single uniform (inverse
CDF of the piecewise-constant density). ``quantization="integer"`` takes ``X`` as codes
``0 .. n_levels-1`` already (8-bit audio, symbols) and ``score_samples`` is a log-probability.

References
----------
A. van den Oord, S. Dieleman, H. Zen, K. Simonyan, O. Vinyals, A. Graves, N. Kalchbrenner,
A. Senior & K. Kavukcuoglu. WaveNet: A Generative Model for Raw Audio. arXiv:1609.03499, 2016
(9th ISCA Speech Synthesis Workshop).

T. L. Paine, P. Khorrami, S. Chang, Y. Zhang, P. Ramachandran, M. A. Hasegawa-Johnson &
T. S. Huang. Fast Wavenet Generation Algorithm. arXiv:1611.09482, 2016.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from torch import Tensor, nn

from ..base import (
    MIXTURE_CONSTRAINTS,
    TRAINING_CONSTRAINTS,
    AutoregressiveNetwork,
    BaseAutoregressiveDensity,
    DensityModule,
    shared_params,
)
from ..distributions import Bernoulli, Categorical, ColumnConditionals, ConditionalFamily, Mixture
from ..nn import shift_right
from ..schema import ColumnSpec, TabularSchema

__all__ = [
    "BinnedCategorical",
    "SequenceSchema",
    "WaveNet",
    "WaveNetDensity",
    "mu_law_compress",
    "mu_law_expand",
    "sample_queued",
]


# ---------------------------------------------------------------------------- quantisation
def mu_law_compress(y: np.ndarray, mu: float) -> np.ndarray:
    """The mu-law compander ``f(y) = sign(y) ln(1 + mu |y|) / ln(1 + mu)`` on ``[-1, 1]``."""
    return np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)


def mu_law_expand(f: np.ndarray, mu: float) -> np.ndarray:
    """The inverse of :func:`mu_law_compress`: ``y = sign(f) ((1 + mu)^|f| - 1) / mu``."""
    return np.sign(f) * np.expm1(np.abs(f) * np.log1p(mu)) / mu


def _bin_edges(mode: str, n_levels: int, lo: float, hi: float) -> np.ndarray:
    """The ``n_levels + 1`` increasing bin edges on ``[lo, hi]``, in the user's units."""
    grid = np.linspace(-1.0, 1.0, n_levels + 1)
    y = grid if mode == "linear" else mu_law_expand(grid, n_levels - 1)
    edges = lo + (y + 1.0) * (hi - lo) / 2.0
    edges[0], edges[-1] = lo, hi  # exact ends, whatever the rounding
    return edges


@dataclass(frozen=True)
class BinnedCategorical(Categorical):
    r"""A Categorical over bin codes whose draws also place the value inside the bin.

    ``log_prob`` is the Categorical's :math:`\log P(k)` (``x`` may be ``k`` or ``k + frac``:
    only ``floor(x)`` counts). ``sample`` inverts the CDF of the piecewise-uniform density on
    ``[0, K)`` with one uniform ``u``: the bin ``k`` with
    :math:`F_{k-1} \le u < F_k`, and the position ``k + (u - F_{k-1}) / P(k)`` inside it. The
    bin is exactly :meth:`Categorical.sample`'s draw for the same ``u``.
    """

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        u = torch.rand(params.shape[:-1], generator=generator, dtype=torch.float64)
        u = u.to(params.device)
        probs = torch.softmax(params.double(), dim=-1)  # (..., K)
        cdf = torch.cumsum(probs, dim=-1)
        k = torch.searchsorted(cdf, u.unsqueeze(-1)).clamp_max(self.n_categories - 1)  # (..., 1)
        below = torch.gather(cdf, -1, k) - torch.gather(probs, -1, k)
        frac = ((u.unsqueeze(-1) - below) / torch.gather(probs, -1, k).clamp_min(1e-300))
        # float32 codes: keep k + frac strictly below k + 1 so floor() gives k back.
        frac = frac.clamp(0.0, 1.0 - 2.0**-12)
        return (k + frac).squeeze(-1).to(params.dtype)


class SequenceSchema(TabularSchema):
    """The schema of fixed-length sequences: every time step shares one kind and one scaling.

    Built with :meth:`from_sequences`. Binary steps are 0/1, continuous steps are standardised
    with the mean and standard deviation of *all* training values (one affine map for every
    step, so the conditional network stays translation equivariant), and quantised steps are
    bin codes ``0 .. n_levels - 1``.

    Parameters
    ----------
    columns : list of ColumnSpec
        One per time step.
    is_frame : bool
    array_dtype : numpy dtype or None
    quantization : {None, "integer", "linear", "mu_law"}
    edges : ndarray of shape (n_levels + 1,) or None
        Bin edges in user units for "linear" and "mu_law".
    """

    def __init__(
        self,
        columns: list[ColumnSpec],
        is_frame: bool,
        array_dtype: Any = None,
        quantization: str | None = None,
        edges: np.ndarray | None = None,
    ) -> None:
        super().__init__(columns, is_frame, array_dtype)
        self.quantization = quantization
        self.edges = edges

    @property
    def kind(self) -> str:
        """The one kind of every step."""
        return self.columns[0].kind

    @staticmethod
    def _as_float(X: Any) -> np.ndarray:
        """``X`` as a float64 matrix; names the row, step and value that is not a number."""
        A = np.asarray(X.to_numpy(dtype=object) if isinstance(X, pd.DataFrame) else X)
        try:
            return A.astype(np.float64)
        except (TypeError, ValueError):
            for (i, t), v in np.ndenumerate(A):
                try:
                    float(v)
                except (TypeError, ValueError) as exc:
                    raise TypeError(
                        f"X holds {v!r} at row {i}, time step {t}, but WaveNetDensity needs "
                        f"numbers, one numeric sequence per row ({exc})"
                    ) from None
            raise

    @staticmethod
    def _check(A: np.ndarray, bad: np.ndarray, expected: str) -> None:
        if bad.any():
            i, t = (int(v) for v in np.argwhere(bad)[0])
            v = A[i, t].item()
            raise ValueError(
                f"X holds {v!r} at row {i}, time step {t} (column {t}), but {expected}"
            )

    @classmethod
    def from_sequences(
        cls,
        X: Any,
        *,
        quantization: str | None = None,
        n_levels: int = 256,
        value_range: Any = None,
    ) -> SequenceSchema:
        """Learn the schema of the training sequences ``X`` of shape (n_samples, T)."""
        is_frame = isinstance(X, pd.DataFrame)
        names = list(X.columns) if is_frame else list(range(X.shape[1]))
        dtypes = list(X.dtypes) if is_frame else [np.asarray(X).dtype] * len(names)
        A = cls._as_float(X)
        cls._check(A, ~np.isfinite(A), "WaveNetDensity needs finite values (no NaN or inf)")
        edges = None
        if quantization is None:
            if np.isin(A, (0.0, 1.0)).all():
                cats = np.array([0, 1], dtype=dtypes[0] if dtypes[0].kind in "biuf" else float)
                columns = [ColumnSpec(n, "binary", cats, dtype=dt) for n, dt in zip(names, dtypes)]
            else:
                # One mean and scale for every step: a per-step standardisation would make the
                # same value mean different inputs at different times.
                std = float(A.std())
                mean, scale = float(A.mean()), std if np.isfinite(std) and std > 0 else 1.0
                columns = [ColumnSpec(n, "continuous", None, mean, scale, dt)
                           for n, dt in zip(names, dtypes)]
        else:
            cats = np.arange(n_levels)
            columns = [ColumnSpec(n, "categorical", cats, dtype=dt)
                       for n, dt in zip(names, dtypes)]
            if quantization in ("linear", "mu_law"):
                lo, hi = (A.min(), A.max()) if value_range is None else value_range
                lo, hi = float(lo), float(hi)
                if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                    raise ValueError(
                        f"value_range must be two finite numbers lo < hi; got {(lo, hi)!r}"
                        + (" (all training values are equal; pass value_range)"
                           if value_range is None else "")
                    )
                edges = _bin_edges(quantization, n_levels, lo, hi)
        schema = cls(columns, is_frame, None if is_frame else np.asarray(X).dtype,
                     quantization, edges)
        schema._codes(A)  # training values must fit the quantisation too
        return schema

    def _codes(self, A: np.ndarray) -> np.ndarray:
        """Checked encoding of a float matrix (values already finite)."""
        if self.quantization is None:
            if self.kind == "binary":
                self._check(A, (A != 0.0) & (A != 1.0),
                            "the model is binary (only 0 and 1 were seen in fit)")
                return A
            c = self.columns[0]
            return (A - c.mean) / c.scale
        if self.quantization == "integer":
            K = self.columns[0].n_categories
            self._check(A, (A != np.round(A)) | (A < 0) | (A > K - 1),
                        f"quantization='integer' expects integer codes 0 .. {K - 1}")
            return A
        lo, hi = float(self.edges[0]), float(self.edges[-1])
        self._check(A, (A < lo) | (A > hi),
                    f"quantization={self.quantization!r} covers value_range [{lo!r}, {hi!r}] "
                    "only; refit with a wider value_range")
        K = len(self.edges) - 1
        # Bin k is [e_k, e_{k+1}); the top edge hi belongs to the last bin.
        return np.searchsorted(self.edges[1:-1], A, side="right").clip(0, K - 1)

    def encode(self, X: Any) -> np.ndarray:
        """Sequences -> float32 matrix of 0/1, standardised values or bin codes.

        Raises
        ------
        ValueError
            On NaN or inf, a non-binary value for a binary model, a non-integer or
            out-of-range code, or a value outside ``value_range``; the message names the row,
            the time step, the value and what was expected.
        """
        A = self._as_float(X)
        self._check(A, ~np.isfinite(A), "WaveNetDensity needs finite values (no NaN or inf)")
        return self._codes(A).astype(np.float32)

    def decode(self, Z: np.ndarray) -> Any:
        """Encoded (or sampled) matrix -> sequences in the user's units.

        A sampled ``k + frac`` becomes ``e_k + frac * w_k`` (a point drawn uniformly inside bin
        ``k``) for "linear" and "mu_law"; codes stay codes for "integer".
        """
        if self.quantization is None:
            return super().decode(Z)
        Z = np.asarray(Z, dtype=np.float64)
        K = self.columns[0].n_categories
        k = np.floor(Z).astype(np.int64).clip(0, K - 1)
        if self.quantization == "integer":
            dt = self.array_dtype
            X = k.astype(dt) if dt is not None and dt.kind in "biuf" else k
        else:
            widths = np.diff(self.edges)
            X = self.edges[k] + (Z - k) * widths[k]
        if self.is_frame:
            return pd.DataFrame(X, columns=[c.name for c in self.columns])
        return X

    def log_width(self, Z: np.ndarray) -> np.ndarray:
        """``-log w_{k}`` per step for "linear" and "mu_law" codes ``Z``, else zeros; (n, T)."""
        if self.edges is None:
            return np.zeros(Z.shape)
        return -np.log(np.diff(self.edges))[np.asarray(Z, dtype=np.int64)]


# ---------------------------------------------------------------------------- the network
class GatedResidualLayer(nn.Module):
    """One WaveNet layer: dilated causal convolution, tanh * sigmoid gate, residual and skip.

    Parameters
    ----------
    residual_channels, dilation_channels, skip_channels : int
    kernel_size : int
    dilation : int
    """

    def __init__(self, residual_channels: int, dilation_channels: int, skip_channels: int,
                 kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.kernel_size = kernel_size
        self.pad = (kernel_size - 1) * dilation  # left padding only: causal
        self.conv = nn.Conv1d(residual_channels, 2 * dilation_channels, kernel_size,
                              dilation=dilation)
        self.res = nn.Conv1d(dilation_channels, residual_channels, 1)
        self.skip = nn.Conv1d(dilation_channels, skip_channels, 1)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, C_r, T)`` -> next residual stream ``(B, C_r, T)`` and skip ``(B, C_s, T)``."""
        z = self.conv(F.pad(h, (self.pad, 0)))  # (B, 2 C_d, T)
        f, g = z.chunk(2, dim=1)
        a = torch.tanh(f) * torch.sigmoid(g)  # (B, C_d, T)
        return h + self.res(a), self.skip(a)

    def step(self, taps: Tensor) -> tuple[Tensor, Tensor]:
        """One time step from its ``k`` taps ``(B, C_r, k)`` (oldest first).

        Returns the layer's output at that step ``(B, C_r)`` and its skip ``(B, C_s)``; the
        newest tap ``taps[..., -1]`` is the layer's input at that step.
        """
        z = F.conv1d(taps, self.conv.weight, self.conv.bias).squeeze(-1)  # (B, 2 C_d)
        f, g = z.chunk(2, dim=1)
        a = torch.tanh(f) * torch.sigmoid(g)  # (B, C_d)
        h = taps[..., -1] + F.linear(a, self.res.weight[..., 0], self.res.bias)
        return h, F.linear(a, self.skip.weight[..., 0], self.skip.bias)


class WaveNet(AutoregressiveNetwork):
    """The WaveNet stack (a torch module) over sequences of ``n_steps`` steps.

    Parameters
    ----------
    n_steps : int
        Sequence length ``T`` (the number of columns).
    kind : {"binary", "categorical", "continuous"}
        Kind of every step.
    n_params : int
        Conditional parameters per step (the shared family's ``n_params``).
    n_levels : int
        Number of codes of a categorical step (ignored otherwise).
    n_layers_per_block, n_blocks, kernel_size : int
        Dilations ``1, 2, ..., 2^{n_layers_per_block - 1}``, repeated ``n_blocks`` times, of
        causal convolutions of width ``kernel_size``.
    residual_channels, dilation_channels, skip_channels : int
        Widths of the residual stream, of the gated activations and of the skip sum.

    Attributes
    ----------
    receptive_field : int
        ``R = 1 + (k - 1) n_blocks (2^L - 1)``: step ``t`` depends on ``x_{t-R} .. x_{t-1}``.
    """

    def __init__(
        self,
        n_steps: int,
        kind: str,
        n_params: int,
        n_levels: int = 256,
        n_layers_per_block: int = 6,
        n_blocks: int = 1,
        kernel_size: int = 2,
        residual_channels: int = 32,
        dilation_channels: int = 32,
        skip_channels: int = 32,
    ) -> None:
        super().__init__()
        self.n_steps = int(n_steps)
        self.kind = kind
        self.n_params = int(n_params)
        self.n_levels = int(n_levels)
        if kind == "categorical":
            self.input = nn.Embedding(n_levels + 1, residual_channels)  # code n_levels: start
        else:
            self.input = nn.Linear(2, residual_channels)  # (x_{t-1}, "x_{t-1} exists")
        dilations = [2**i for _ in range(n_blocks) for i in range(n_layers_per_block)]
        self.layers = nn.ModuleList(
            GatedResidualLayer(residual_channels, dilation_channels, skip_channels,
                               kernel_size, d)
            for d in dilations
        )
        self.head1 = nn.Conv1d(skip_channels, skip_channels, 1)
        self.head2 = nn.Conv1d(skip_channels, n_params, 1)
        self.receptive_field = 1 + (kernel_size - 1) * sum(dilations)
        self.register_buffer("_order", torch.arange(self.n_steps), persistent=False)

    def ordering(self, member: int = 0) -> Tensor:
        """Time order ``0 .. T-1``."""
        return self._order

    def embed(self, x: Tensor) -> Tensor:
        """``(B, T)`` encoded sequences -> ``h^0`` of shape ``(B, C_r, T)``, shifted by one."""
        if self.kind == "categorical":
            codes = x.long()  # floor of a sampled k + frac
            prev = shift_right(codes, self.n_levels)  # (B, T): code of x_{t-1}
            return self.input(prev).transpose(1, 2)
        prev = shift_right(x, 0.0)  # (B, T): x_{t-1}, 0 at t = 0
        exists = torch.ones_like(x)
        exists[:, 0] = 0.0
        return self.input(torch.stack([prev, exists], dim=-1)).transpose(1, 2)

    def embed_step(self, prev: Tensor | None, batch_size: int, like: Tensor) -> Tensor:
        """``h^0_t`` of shape ``(B, C_r)`` from ``x_{t-1}`` of shape ``(B,)`` (None at t=0)."""
        if self.kind == "categorical":
            code = (torch.full((batch_size,), self.n_levels, device=like.device)
                    if prev is None else prev.long())
            return self.input(code)
        u = like.new_zeros(batch_size, 2)
        if prev is not None:
            u[:, 0], u[:, 1] = prev, 1.0
        return self.input(u)

    def head(self, skip: Tensor) -> Tensor:
        """Skip sum ``(B, C_s, T)`` -> parameters ``(B, P, T)``."""
        return self.head2(F.relu(self.head1(F.relu(skip))))

    def head_step(self, skip: Tensor) -> Tensor:
        """Skip sum ``(B, C_s)`` -> parameters ``(B, P)`` of one step."""
        h = F.relu(F.linear(F.relu(skip), self.head1.weight[..., 0], self.head1.bias))
        return F.linear(h, self.head2.weight[..., 0], self.head2.bias)

    def forward(self, x: Tensor, member: int = 0) -> Tensor:
        """``(B, T)`` encoded sequences -> ``(B, T * P)`` parameters, step ``t`` in
        ``[t P, (t + 1) P)``, depending on ``x_{t-R} .. x_{t-1}`` only."""
        h = self.embed(x)  # (B, C_r, T)
        skip = 0.0
        for layer in self.layers:
            h, s = layer(h)
            skip = skip + s  # (B, C_s, T)
        params = self.head(skip)  # (B, P, T)
        return params.transpose(1, 2).reshape(x.shape[0], -1)  # (B, T * P)


@torch.no_grad()
def sample_queued(module: DensityModule, n_samples: int, generator: torch.Generator) -> Tensor:
    """Exact ancestral sampling with per-layer activation queues (Paine et al. 2016).

    Layer ``l`` keeps a circular buffer of its last ``(k-1) d_l + 1`` inputs, zero-initialised
    (the zeros are the convolution's causal padding). Step ``t`` pushes ``h^l_t`` into slot
    ``t mod ((k-1) d_l + 1)``, reads the ``k`` taps ``t - (k-1-j) d_l`` and computes only time
    ``t`` of every layer: ``O(n_layers)`` per step. Each step's value is drawn by
    :meth:`ColumnConditionals.sample_column` in time order, so the random stream is the one
    :func:`skar.base.sample_plain` consumes and the draws agree up to float rounding of the
    parameters.

    Parameters
    ----------
    module : DensityModule
        Whose ``network`` is a :class:`WaveNet`.
    n_samples : int
    generator : torch.Generator
        CPU generator; every draw comes from it.

    Returns
    -------
    Tensor of shape (n_samples, T)
        Encoded sequences.
    """
    net, cond = module.network, module.conditionals
    ref = next(module.parameters())
    B, T, P = n_samples, net.n_steps, net.n_params
    queues = [
        ref.new_zeros(B, layer.conv.in_channels, layer.pad + 1) for layer in net.layers
    ]  # (B, C_r, (k-1) d + 1) each
    taps = [
        torch.arange(layer.kernel_size, device=ref.device) * layer.dilation - layer.pad
        for layer in net.layers
    ]  # offsets -(k-1)d, ..., -d, 0 (oldest first)
    x = ref.new_zeros(B, T)
    params = ref.new_zeros(B, T * P)
    prev = None
    for t in range(T):
        h = net.embed_step(prev, B, ref)  # (B, C_r)
        skip = 0.0
        for layer, q, off in zip(net.layers, queues, taps):
            L = q.shape[-1]
            q[:, :, t % L] = h
            h, s = layer.step(q[:, :, (t + off) % L])  # taps (B, C_r, k)
            skip = skip + s
        params[:, t * P : (t + 1) * P] = net.head_step(skip)
        x[:, t] = cond.sample_column(params, t, generator)
        prev = x[:, t]
    return x


# ---------------------------------------------------------------------------- the estimator
class WaveNetDensity(BaseAutoregressiveDensity):
    """Density estimation for fixed-length sequences with a WaveNet (causal dilated convolutions).

    Each row of ``X`` is one sequence ``x_0 .. x_{T-1}`` (a window of a series, an audio clip,
    or a short tabular row read left to right); ``log p(x) = sum_t log p(x_t | x_{t-R..t-1})``
    with one gated convolutional network shared by every step (van den Oord et al. 2016).
    The conditional of every step is a Bernoulli (when every training value is 0 or 1), a
    mixture of ``n_components`` Gaussians or logistics (real values), or a Categorical over
    ``n_levels`` quantisation bins (``quantization``). One pass scores a batch; ``sample``
    uses per-layer queues, ``O(n_layers)`` per step (Paine et al. 2016).

    Parameters
    ----------
    n_layers_per_block : int, default=6
        Layers per block, with dilations ``1, 2, ..., 2^(n_layers_per_block - 1)``.
    n_blocks : int, default=1
        Times the dilation cycle is repeated.
    kernel_size : int, default=2
        Width of every causal convolution.
    residual_channels : int, default=32
        Width of the residual stream (and of the input embedding).
    dilation_channels : int, default=32
        Width of the gated activations ``tanh(.) * sigmoid(.)``.
    skip_channels : int, default=32
        Width of the skip connections and of the output head.
    quantization : {None, "integer", "linear", "mu_law"}, default=None
        None: real values get a mixture (binary 0/1 data a Bernoulli). "linear" or "mu_law":
        values in ``value_range`` are cut into ``n_levels`` bins (equal in ``x``, or equal
        after mu-law companding with ``mu = n_levels - 1``, the WaveNet paper's 8-bit
        audio), a Categorical models the bin codes, and ``score_samples`` is the density
        ``log P(codes) - sum_t log w_{k_t}`` in the units of ``X`` (each bin's probability
        spread uniformly over its width); samples are drawn uniformly within their bin.
        "integer": ``X`` holds codes ``0 .. n_levels - 1`` and ``score_samples`` is their
        log-probability.
    n_levels : int, default=256
        Number of quantisation levels (codes) when ``quantization`` is set.
    value_range : tuple of float or None, default=None
        ``(lo, hi)`` covered by "linear" and "mu_law"; None takes the training minimum and
        maximum. Values outside it are an error at fit and at scoring.
    n_components : int, default=5
        Mixture components of each step's conditional for real values.
    component : {"gaussian", "laplace", "logistic"}, default="gaussian"
        Mixture component family for real values.
    {shared_parameters}

    Attributes
    ----------
    receptive_field_ : int
        ``R = 1 + (kernel_size - 1) n_blocks (2^n_layers_per_block - 1)``: the conditional of
        step ``t`` reads exactly ``x_{t-R}, ..., x_{t-1}``.
    n_features_in_ : int
        Sequence length ``T`` seen in fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when X was a DataFrame with string column names.
    schema_ : SequenceSchema
        Kind, scaling or quantisation bins shared by every step.
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the torch module.
    history_ : pandas.DataFrame
        Per-epoch ``train_nll`` and ``valid_nll`` (nats per sequence, in the units of X, as
        :meth:`score_samples`) and duration.
    n_iter_ : int
        Number of epochs run.

    See Also
    --------
    skar.datasets.make_windows : Cut a long series into one window per row.
    skar.MADEDensity : Masked autoencoder for tabular rows.
    sklearn.neighbors.KernelDensity : Kernel density estimation.

    References
    ----------
    A. van den Oord et al. WaveNet: A Generative Model for Raw Audio. arXiv:1609.03499, 2016.

    T. L. Paine et al. Fast Wavenet Generation Algorithm. arXiv:1611.09482, 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from skar import WaveNetDensity
    >>> rng = np.random.RandomState(0)
    >>> X = np.cumsum(rng.normal(size=(200, 16)), axis=1)  # random walks, one per row
    >>> est = WaveNetDensity(n_layers_per_block=3, residual_channels=8, dilation_channels=8,
    ...                      skip_channels=8, max_iter=3, random_state=0).fit(X)
    >>> est.receptive_field_
    8
    >>> est.score_samples(X[:3]).shape
    (3,)
    >>> est.sample(2, random_state=0).shape
    (2, 16)
    """

    # Its quantization (bins of a sequence) is not the tabular estimators' (grid steps).
    _own_parameters = ("quantization",)

    _parameter_constraints: dict = {
        **TRAINING_CONSTRAINTS,
        "n_layers_per_block": [Interval(Integral, 1, None, closed="left")],
        "n_blocks": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 2, None, closed="left")],
        "residual_channels": [Interval(Integral, 1, None, closed="left")],
        "dilation_channels": [Interval(Integral, 1, None, closed="left")],
        "skip_channels": [Interval(Integral, 1, None, closed="left")],
        "quantization": [StrOptions({"integer", "linear", "mu_law"}), None],
        "n_levels": [Interval(Integral, 2, None, closed="left")],
        "value_range": ["array-like", None],
        **MIXTURE_CONSTRAINTS,
    }

    def __init__(
        self,
        n_layers_per_block: int = 6,
        n_blocks: int = 1,
        kernel_size: int = 2,
        *,
        residual_channels: int = 32,
        dilation_channels: int = 32,
        skip_channels: int = 32,
        quantization: str | None = None,
        n_levels: int = 256,
        value_range: Any = None,
        n_components: int = 5,
        component: str = "gaussian",
        min_scale: float = 1e-3,
        batch_size: Any = "auto",
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        alpha: float = 0.0,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        random_state: Any = None,
        verbose: int = 0,
        device: str = "auto",
    ) -> None:
        self.n_layers_per_block = n_layers_per_block
        self.n_blocks = n_blocks
        self.kernel_size = kernel_size
        self.residual_channels = residual_channels
        self.dilation_channels = dilation_channels
        self.skip_channels = skip_channels
        self.quantization = quantization
        self.n_levels = n_levels
        self.value_range = value_range
        self.n_components = n_components
        self.component = component
        super().__init__(**shared_params(locals()))

    # ------------------------------------------------------------------ hooks
    def _check_X(self, X: Any, *, reset: bool) -> Any:
        T = getattr(self, "n_features_in_", None)
        width = X.shape[1] if getattr(X, "ndim", 0) == 2 else None
        if not reset and T is not None and width is not None and width != T:
            # scikit-learn's wording first (its checks match it), then what it means here.
            raise ValueError(
                f"X has {width} features, but {type(self).__name__} is expecting {T} "
                f"features as input: every row must be one sequence of length {T}, the "
                "length seen in fit (cut longer series with skar.datasets.make_windows)"
            )
        return super()._check_X(X, reset=reset)

    def _make_schema(self, X: Any) -> SequenceSchema:
        value_range = self.value_range
        if value_range is not None:
            value_range = tuple(np.asarray(value_range, dtype=np.float64).reshape(-1))
            if len(value_range) != 2:
                raise ValueError(
                    f"value_range must be a pair (lo, hi); got {self.value_range!r}"
                )
        return SequenceSchema.from_sequences(
            X, quantization=self.quantization, n_levels=self.n_levels, value_range=value_range
        )

    def _families(self, schema: SequenceSchema) -> list[ConditionalFamily]:
        # One family object for every step, so ColumnConditionals evaluates them in one gather.
        fam: ConditionalFamily
        if schema.kind == "binary":
            fam = Bernoulli()
        elif schema.kind == "categorical":
            fam = BinnedCategorical(self.n_levels)
        else:
            fam = Mixture(self.n_components, self.component, min_scale=self.min_scale)
        return [fam] * schema.n_features

    def _build_network(
        self, schema: SequenceSchema, conditionals: ColumnConditionals, seed: int
    ) -> WaveNet:
        return WaveNet(
            n_steps=schema.n_features,
            kind=schema.kind,
            n_params=conditionals.families[0].n_params,
            n_levels=self.n_levels,
            n_layers_per_block=self.n_layers_per_block,
            n_blocks=self.n_blocks,
            kernel_size=self.kernel_size,
            residual_channels=self.residual_channels,
            dilation_channels=self.dilation_channels,
            skip_channels=self.skip_channels,
        )

    def _log_jacobian_rows(self, schema: SequenceSchema, Z: np.ndarray) -> np.ndarray | None:
        """``-log w_{k_t}`` of every step's bin for "linear" and "mu_law" codes: the scores are
        densities in the units of ``X`` (each bin's probability spread over its width)."""
        if self.quantization in ("linear", "mu_law"):
            return schema.log_width(Z)
        return None

    def _fitted_attributes(self, schema: SequenceSchema, network: nn.Module) -> dict[str, Any]:
        return {"receptive_field_": network.receptive_field}

    def _sample_encoded(self, n_samples: int, generator: torch.Generator,
                        context: Tensor | None = None) -> Tensor:
        return sample_queued(self.net_.module_, n_samples, generator)
