"""The conditional families: one distribution per column, parameterised by a network.

Every autoregressive model in skar returns, for each row, one flat vector of parameters per
column, ``theta_i = f_i(x_<i)``. A family turns ``theta_i`` into ``log p(x_i | x_<i)`` and draws
``x_i ~ p(. | x_<i)``. The families are stateless and parameter-free, so a model only has to know
how many parameters each column needs (:attr:`ConditionalFamily.n_params`).

Random draws always come from a CPU :class:`torch.Generator` and are moved to the parameters'
device afterwards, so a seeded sample is the same on CPU and on CUDA.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Bernoulli",
    "Categorical",
    "ColumnConditionals",
    "ConditionalFamily",
    "DiscretizedLogisticMixture",
    "Mixture",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


#: Below this width (in component scales) a Gaussian cell's probability is the midpoint rule,
#: ``gap * phi(mid)``, whose relative error ``gap^2 |mid^2 - 1| / 24`` is then under 1e-11 |mid|^2.
_GAUSSIAN_THIN_CELL = 1e-5

#: The float32 Gaussian cell (:func:`_log_cell_prob_fast`) uses its Taylor series when
#: ``gap (1 + |mid|)`` is at most this: the first omitted term is then below 2e-7 relative, and
#: the CDF difference elsewhere loses at most ~1e-6 relative to cancellation (the cell holds at
#: least ~10% of the mass below its upper edge).
_FAST_THIN_CELL = 0.25

#: Below this upper edge (after mirroring) the float32 Gaussian cell uses the asymptotic series
#: of ``log Phi`` (Abramowitz & Stegun 26.2.12) instead of ``erfc``, which underflows near
#: ``x = -13``.
_FAST_FAR_TAIL = -11.0

#: ``erfc`` arguments are capped here: beyond it float32 ``erfc`` is subnormal (below 1.2e-38),
#: and subnormal arithmetic runs tens of times slower on x86. Where the cap binds the lower
#: edge is below -12.8 while the upper one is above -11, so it changes the difference by under
#: ``erfc(9.1) / erfc(7.78) < 1e-10`` of itself.
_ERFC_CAP = 9.1


def log_cell_prob(component: str, lo: Tensor, gap: Tensor) -> Tensor:
    r"""``log(F(lo + gap) - F(lo))`` for the standard ``component`` CDF ``F``.

    The probability of a cell ``[lo, lo + gap)`` (in the component's standardised units) is a
    difference of CDFs, which cancels catastrophically in the tails and for thin cells if
    written as such. Each branch below avoids that (Salimans et al. 2017 use the first one):

    - logistic: :math:`\sigma(b) - \sigma(a) = \sigma(b)\,\sigma(-a)\,(1 - e^{-(b - a)})`,
      exact everywhere;
    - Laplace: :math:`\tfrac12 e^{b}(1 - e^{-(b-a)})` for :math:`b \le 0`, its mirror image
      for :math:`a \ge 0`, and :math:`-\tfrac12(\mathrm{expm1}(a) + \mathrm{expm1}(-b))`
      for a cell around 0;
    - Gaussian, float64: the cell is mirrored into the lower half line, where
      :math:`\log\Phi` (``torch.special.log_ndtr``) is accurate; a cell in the lower tail is
      :math:`\log\Phi(b) + \log(1 - e^{\log\Phi(a) - \log\Phi(b)})`, a cell around 0
      is :math:`\tfrac12(\mathrm{erf}(b/\sqrt2) + \mathrm{erf}(-a/\sqrt2))` (two positive
      terms), and a cell thinner than ``1e-5`` uses the midpoint rule; exact to float64
      rounding.
    - Gaussian, float32 (and float16/bfloat16, computed in float32): the vectorised branches
      of :func:`_log_cell_prob_fast` (no ``log_ndtr``, which has no vectorised kernel and cost
      ~30 ns an element, float32 or float64): within ``2e-6 (1 + |log P|)`` of the exact
      value of the same float32 inputs (``tests/test_distributions.py`` checks it against
      mpmath, tails and thin cells included).

    ``gap`` is passed rather than recomputed from the edges, so ``b - a`` carries no rounding.
    Every branch is evaluated on safe inputs, so gradients stay finite.
    """
    lo, gap = torch.broadcast_tensors(lo, gap)
    a, b = lo, lo + gap
    if component != "gaussian":
        return _log_cell_prob_closed(component, a, b, gap)
    if lo.dtype != torch.float64:
        return _log_cell_prob_fast(component, lo + 0.5 * gap, gap)
    flip = (a + b) > 0
    a, b = torch.where(flip, -b, a), torch.where(flip, -a, b)  # now a + b <= 0
    thin = gap < _GAUSSIAN_THIN_CELL
    mid = 0.5 * (a + b)
    log_mid = torch.log(gap) - 0.5 * mid * mid - _LOG_SQRT_2PI
    tail = (b <= 0) & ~thin
    lb = torch.special.log_ndtr(b)
    d = torch.where(tail, torch.special.log_ndtr(a) - lb, torch.full_like(lb, -1.0))
    log_tail = lb + torch.log(-torch.expm1(d))
    around = 0.5 * (torch.erf(b * 0.5**0.5) + torch.erf(-a * 0.5**0.5))
    around = torch.log(torch.where(~tail & ~thin, around, torch.ones_like(around)))
    return torch.where(thin, log_mid, torch.where(tail, log_tail, around))


def _log_cell_prob_closed(component: str, a: Tensor, b: Tensor, gap: Tensor) -> Tensor:
    """The logistic and Laplace cells of :func:`log_cell_prob` (closed forms without
    cancellation, accurate in any floating dtype)."""
    if component == "logistic":
        return -F.softplus(-b) - F.softplus(a) + torch.log(-torch.expm1(-gap))
    log_thin = torch.log(-torch.expm1(-gap))
    below = math.log(0.5) + b + log_thin
    above = math.log(0.5) - a + log_thin
    around = -0.5 * (torch.expm1(a.clamp_max(0.0)) + torch.expm1(-b.clamp_min(0.0)))
    around = torch.log(torch.where((a < 0) & (b > 0), around, torch.ones_like(around)))
    return torch.where(b <= 0, below, torch.where(a >= 0, above, around))


def _log_cell_prob_fast(component: str, mid: Tensor, gap: Tensor) -> Tensor:
    r"""``log(F(mid + gap/2) - F(mid - gap/2))`` in float32, from the cell's centre ``mid``
    and width ``gap`` (standardised units), with vectorised kernels only.

    The logistic and Laplace cells are :func:`log_cell_prob`'s closed forms. A Gaussian cell
    is mirrored to :math:`m = -|\mathrm{mid}| \le 0`, edges :math:`a = m - g/2`,
    :math:`b = m + g/2`, and then

    - thin, :math:`g(1 + |m|) \le 0.25`: the Taylor series of the integral of
      :math:`\varphi` around the centre (the generating function of the Hermite
      polynomials :math:`He_n`),

      .. math::

          \log P = \log g + \log\varphi(m) + \log\Bigl(1 + \frac{g^2}{24}He_2(m)
                   + \frac{g^4}{1920}He_4(m)\Bigr),

      whose first omitted term, :math:`He_6(m)\,(g/2)^6 / 5040`, is below 2e-7;
    - far tail, :math:`b < -11`: :math:`\log\Phi(x) = -x^2/2 - \log(-x) - \log\sqrt{2\pi}
      + \log S(x)` with :math:`S(x) = 1 - x^{-2} + 3x^{-4} - \dots` (asymptotic), and
      :math:`\log P = \log\Phi(b) + \log(1 - e^{\delta})` with
      :math:`\delta = \log\Phi(a) - \log\Phi(b) = g\,m - \log(1 + g/|b|) + \log S(a)
      - \log S(b)`, a sum of non-positive terms and a tiny positive one (no cancellation);
      evaluated only when some cell of the call needs it (:func:`_gaussian_far_tail`);
    - otherwise: :math:`\log\tfrac12\bigl(\mathrm{erfc}(-b/\sqrt2) - \mathrm{erfc}(-a/\sqrt2)
      \bigr)`. Outside the thin region the cell holds at least ~10% of the mass below
      :math:`b`, so the difference loses at most ~1e-6 relative to cancellation.

    Within ``2e-6 (1 + |log P|)`` of the exact value everywhere (the inputs themselves, float32,
    carry about ``6e-8 (1 + mid^2)`` of rounding into ``log P``).
    """
    dtype = mid.dtype
    mid, gap = mid.float(), gap.float()
    if component != "gaussian":
        half = 0.5 * gap
        return _log_cell_prob_closed(component, mid - half, mid + half, gap).to(dtype)
    m = -mid.abs()
    half = 0.5 * gap
    a, b = m - half, m + half
    r = -(0.5**0.5)
    # The clamp keeps the log (and its gradient) finite where the series or the far tail is
    # used instead and the difference has cancelled to 0.
    main = (torch.erfc((b * r).clamp_max(_ERFC_CAP)) - torch.erfc((a * r).clamp_max(_ERFC_CAP)))
    main = torch.log(main.clamp_min(1e-37)) - math.log(2.0)
    m2, g2 = m * m, gap * gap
    # g^2 He_2 / 24 + g^4 He_4 / 1920, He_2 = m^2 - 1, He_4 = m^4 - 6 m^2 + 3
    corr = torch.addcmul((m2 - 1.0) / 24.0, g2, (m2 - 6.0) * m2 + 3.0, value=1.0 / 1920.0) * g2
    series = torch.log(gap) - 0.5 * m2 - _LOG_SQRT_2PI + torch.log1p(corr.clamp_min(-0.5))
    thin = gap * (1.0 - m) <= _FAST_THIN_CELL
    out = torch.where(thin, series, main)
    far = (b < _FAST_FAR_TAIL) & ~thin
    if bool(far.any()):
        # Evaluated everywhere and merged: gathering the far cells (masked_select, nonzero)
        # cost more than the branch itself. The clamp keeps the unused cells finite.
        tail = _gaussian_far_tail(b.clamp_max(_FAST_FAR_TAIL), gap, m.clamp_max(_FAST_FAR_TAIL))
        out = torch.where(far, tail, out)
    return out.to(dtype)


def _gaussian_far_tail(b: Tensor, gap: Tensor, m: Tensor) -> Tensor:
    r"""The far-tail branch of :func:`_log_cell_prob_fast` (upper edge ``b < -11``, centre
    ``m``, width ``gap``): :math:`\log\Phi(b) + \log(1 - e^{\delta})`.

    With :math:`q = b^{-2} < 1/121`, :math:`\log\Phi(x) = -x^2/2 - \log(-x) -
    \log\sqrt{2\pi} + \log S(x)` and :math:`\log S = \log(1 - q + 3q^2 - \dots) = -q +
    \tfrac52 q^2 - \tfrac{37}{3} q^3 + \dots` (truncation error under 1e-5), and
    :math:`\delta = \log\Phi(a) - \log\Phi(b) = g\,m - \log(1 + g/|b|) + \log S(a) - \log
    S(b)`, whose last difference is :math:`-g\,(\log S)'(m) \approx -2g/m^3` to first order
    (dropping it altogether would move :math:`\delta` by up to 2e-4 of itself). Here
    :math:`|\log P| > 63`, so the stated accuracy, ``2e-6 (1 + |log P|)``, is 1.3e-4 or more
    in absolute terms; these truncations stay an order below it."""
    b2 = b * b
    q = 1.0 / b2
    log_phi_b = -0.5 * b2 - torch.log(-b) - _LOG_SQRT_2PI + q * (2.5 * q - 1.0)
    delta = gap * (m - 2.0 / (m * m * m)) - torch.log1p(gap / -b)
    return log_phi_b + torch.log(-torch.expm1(delta))


def _logsumexp_runs(t: Tensor) -> Tensor:
    """``logsumexp`` over the second-to-last axis, where the components lie in the
    component-major layout of :meth:`Mixture._log_prob_t`: each component is a contiguous run
    on the last axis, so the max and the sum are elementwise over runs (vectorised) rather
    than reductions over a short last axis (15 times slower at 10 components). Infinite
    maxima are shifted by 0, as :func:`torch.logsumexp` does."""
    m = t.detach().amax(-2, keepdim=True)
    m = torch.nan_to_num(m, nan=0.0, posinf=0.0, neginf=0.0)
    # Terms more than 87 below the largest (under 1.7e-38 of it, invisible in a float32 or
    # float64 sum of fewer than 1e21 terms) count as zero: their exponentials would be
    # subnormal, and subnormal arithmetic runs tens of times slower on x86.
    d = F.threshold(t - m, -87.0, -math.inf)
    if torch.is_grad_enabled() and t.requires_grad:
        return (torch.log(torch.exp(d).sum(-2, keepdim=True)) + m).squeeze(-2)
    return d.exp_().sum(-2, keepdim=True).log_().add_(m).squeeze(-2)


def _uniform(shape: torch.Size, generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Draw U(0, 1) on the CPU generator, then move to ``like``'s device and dtype."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    return u.to(device=like.device, dtype=like.dtype)


def _inverse_cdf(log_weights: Tensor, u: Tensor) -> Tensor:
    """Index drawn from the categorical ``softmax(log_weights)`` with a uniform ``u``.

    ``log_weights`` has shape ``(..., K)`` and ``u`` shape ``(...)``; returns a long tensor of
    shape ``(...)``. Inverse-CDF sampling uses exactly one uniform per draw, which makes the
    random stream of every sampler easy to reason about.
    """
    cdf = torch.cumsum(torch.softmax(log_weights.double(), dim=-1), dim=-1)
    idx = torch.searchsorted(cdf, u.double().unsqueeze(-1)).squeeze(-1)
    return idx.clamp_max(log_weights.shape[-1] - 1)


class ConditionalFamily:
    """A parametric family for one column's conditional ``p(x_i | x_<i)``.

    Subclasses set :attr:`n_params` and implement :meth:`log_prob` and :meth:`sample`; both
    broadcast over any leading shape, with the parameters on the last axis.
    """

    #: ``"binary"``, ``"categorical"`` or ``"continuous"``: the column kind the family models.
    kind: str = ""

    def shared(self) -> ConditionalFamily:
        """The family that columns sharing it are evaluated with together (itself, unless the
        family has per-column constants, see :meth:`column_constants`)."""
        return self

    def column_constants(self) -> tuple[float, ...]:
        """Per-column numbers that :meth:`shared` leaves out; :class:`ColumnConditionals`
        passes them to ``log_prob(params, x, constants)`` as a tensor of shape ``(m, c)``.
        Empty for families without any."""
        return ()

    @property
    def n_params(self) -> int:
        """Number of unconstrained real parameters per column."""
        raise NotImplementedError

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """Log-probability (mass or density) of ``x``.

        Parameters
        ----------
        params : Tensor of shape (..., n_params)
            Unconstrained parameters, as a network outputs them.
        x : Tensor of shape (...)
            Values: 0/1 for Bernoulli, integer codes (stored as floats) for Categorical,
            reals for mixtures.

        Returns
        -------
        Tensor of shape (...)
        """
        raise NotImplementedError

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw one value per parameter vector.

        Parameters
        ----------
        params : Tensor of shape (..., n_params)
        generator : torch.Generator, optional
            A CPU generator; draws are made on the CPU and moved to ``params.device``.

        Returns
        -------
        Tensor of shape (...), same dtype as ``params``.
        """
        raise NotImplementedError

    def marginal_params(self, x: np.ndarray, weight: np.ndarray, seed: int = 0) -> np.ndarray:
        """Parameters of this family fitted to one column on its own (no conditioning).

        A network whose output layer starts at these parameters (with zero output weights)
        starts as the product of the fitted marginals, :math:`\\prod_d p(x_d)`, instead of a
        random density (see ``init_params`` of the NADE estimators).

        Parameters
        ----------
        x : ndarray of shape (n,)
            The column's encoded training values.
        weight : ndarray of shape (n,)
            Non-negative row weights.
        seed : int
            Seeds any randomised fit (EM's initialisation).

        Returns
        -------
        ndarray of shape (n_params,)
        """
        raise NotImplementedError


@dataclass(frozen=True)
class Bernoulli(ConditionalFamily):
    r"""Bernoulli conditional with a logit: :math:`p(x=1) = \sigma(\theta)`.

    :math:`\log p(x) = x\theta - \log(1 + e^{\theta})`, computed as
    ``-softplus(-theta)`` / ``-softplus(theta)`` for stability.
    """

    kind = "binary"

    @property
    def n_params(self) -> int:
        return 1

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        logit = params[..., 0]
        return -F.binary_cross_entropy_with_logits(logit, x.to(logit.dtype), reduction="none")

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        logit = params[..., 0]
        u = _uniform(logit.shape, generator, logit)
        return (u < torch.sigmoid(logit)).to(params.dtype)

    def marginal_params(self, x: np.ndarray, weight: np.ndarray, seed: int = 0) -> np.ndarray:
        """The logit of the weighted frequency of ones, smoothed by half a count each way."""
        p = (np.sum(weight * x) + 0.5) / (np.sum(weight) + 1.0)
        return np.array([math.log(p) - math.log1p(-p)])


@dataclass(frozen=True)
class Categorical(ConditionalFamily):
    r"""Categorical conditional over ``n_categories`` codes.

    :math:`p(x=k) = \mathrm{softmax}(\theta)_k`, for codes ``k = 0 .. n_categories - 1``.
    """

    n_categories: int

    kind = "categorical"

    @property
    def n_params(self) -> int:
        return self.n_categories

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        logp = torch.log_softmax(params, dim=-1)
        return torch.gather(logp, -1, x.long().unsqueeze(-1)).squeeze(-1)

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        u = _uniform(params.shape[:-1], generator, params)
        return _inverse_cdf(params, u).to(params.dtype)

    def marginal_params(self, x: np.ndarray, weight: np.ndarray, seed: int = 0) -> np.ndarray:
        """Log weighted frequencies, smoothed by half a count per category (Jeffreys)."""
        counts = np.bincount(x.astype(np.int64), weights=weight, minlength=self.n_categories)
        return np.log(counts[: self.n_categories] + 0.5)


@dataclass(frozen=True)
class Mixture(ConditionalFamily):
    r"""Mixture of ``n_components`` Gaussian, Laplace or logistic components, optionally on a
    grid (a quantized column) or with point masses (atoms).

    The parameters are laid out as ``[logits | means | raw scales]``, ``n_components`` each,
    followed (with atoms only) by ``len(atoms) + 1`` atom logits:

    .. math::

        f(x) = \sum_k \pi_k \, \frac{1}{s_k} f_0\!\left(\frac{x - \mu_k}{s_k}\right),\qquad
        \pi = \mathrm{softmax}(\text{logits}),\quad
        s_k = s_{\min} + \mathrm{softplus}(\text{raw}_k),

    with :math:`f_0` the standard normal, Laplace or logistic density. The floor ``min_scale``
    (in the model's standardised units, the analogue of
    :class:`~sklearn.mixture.GaussianMixture`'s ``reg_covar``) keeps a component from
    collapsing onto a repeated value, where the likelihood would grow without bound
    (Bishop 2006, sec. 9.2.1).

    **Quantized column** (``step > 0``): the values lie on the grid
    :math:`c_j = \text{offset} + j\,\text{step}`, and the family is the density of the
    *dequantized* variable, constant on each cell :math:`[c - \text{step}/2, c + \text{step}/2)`:

    .. math::

        p(x) = \frac{1}{\text{step}} \sum_k \pi_k \left[F_0\!\left(\frac{c + \text{step}/2
               - \mu_k}{s_k}\right) - F_0\!\left(\frac{c - \text{step}/2 - \mu_k}{s_k}\right)
               \right],\qquad c = \text{the grid point of the cell holding } x,

    the cell probability (computed exactly in log space, :func:`log_cell_prob`) divided by the
    cell width. It integrates to 1 over the real line, its cell probabilities sum to 1 over the
    grid, and it is bounded by ``1 / step``: a component that shrinks onto a repeated value
    gains nothing once it is narrower than the cell, so the floor no longer sets the score. On
    a quantized column the floor is ``step / 16`` whatever ``min_scale`` is: a component of
    that scale centred in its cell already holds all but 1e-15 (Gaussian), 3.4e-4 (Laplace) or
    6.7e-4 (logistic) of its mass there, so a narrower one gains (almost) nothing, and scores
    cannot depend on ``min_scale``. Samples are grid points (``within_cell=False``) or move
    uniformly within their cell (``within_cell=True``, an exact draw of the dequantized
    variable).

    **Atoms** (``atoms`` non-empty): point masses at the given values plus the continuous
    mixture, :math:`P(x = a_j) = w_j` and density :math:`w_{A} f(x)` elsewhere, with
    :math:`w = \mathrm{softmax}(\text{atom logits})`. The density is with respect to counting
    measure on the atoms plus Lebesgue measure elsewhere: a value on an atom scores the log
    *probability* :math:`\log w_j`, in every unit of the column (``atom_log_unit``, the log of
    the column's standardisation scale, is added so that the schema's constant
    log|Jacobian| cancels on atoms). A value counts as the atom when it is within ``1e-6``
    (relative, in standardised units) of it.

    Parameters
    ----------
    n_components : int
        Number of mixture components.
    component : {"gaussian", "laplace", "logistic"}, default="gaussian"
    min_scale : float, default=1e-3
        Floor on the component scales, in standardised units, of a continuous column (a
        quantized column's floor is ``step / 16``).
    step : float, default=0.0
        Cell width of a quantized column in standardised units (0: a continuous column).
    offset : float, default=0.0
        A grid point of a quantized column, in standardised units (only its value modulo
        ``step`` matters).
    within_cell : bool, default=False
        Quantized columns only: draw samples uniformly within their cell instead of on the
        grid.
    atoms : tuple of float, default=()
        Point masses, in standardised units (not with ``step > 0``).
    atom_log_unit : float, default=0.0
        Added to the log-probability of an atom (``log s`` of the column's scaling).
    """

    n_components: int
    component: str = "gaussian"
    min_scale: float = 1e-3
    step: float = 0.0
    offset: float = 0.0
    within_cell: bool = False
    atoms: tuple[float, ...] = ()
    atom_log_unit: float = 0.0

    kind = "continuous"

    def __post_init__(self) -> None:
        if self.component not in ("gaussian", "laplace", "logistic"):
            raise ValueError(
                f"component must be 'gaussian', 'laplace' or 'logistic'; got {self.component!r}"
            )
        if not (np.isfinite(self.min_scale) and self.min_scale > 0):
            raise ValueError(f"min_scale must be a positive number; got {self.min_scale!r}")
        if not (np.isfinite(self.step) and self.step >= 0):
            raise ValueError(f"step must be a non-negative number; got {self.step!r}")
        if self.step > 0 and self.atoms:
            raise ValueError("a quantized mixture (step > 0) takes no atoms: its cells hold them")

    @property
    def quantized(self) -> bool:
        """Whether the column lies on a grid (``step > 0``)."""
        return self.step > 0

    @property
    def n_params(self) -> int:
        return 3 * self.n_components + (len(self.atoms) + 1 if self.atoms else 0)

    # ---------------------------------------------------------------- grouping
    def shared(self) -> Mixture:
        """The family with its per-column constants (``step``, ``offset``) cleared.

        :class:`ColumnConditionals` evaluates every column with the same shared family in one
        call, passing the constants of each column (:meth:`column_constants`) as a tensor, so
        quantized columns with different steps still make one group.
        """
        if not self.quantized:
            return self
        return replace(self, step=1.0, offset=0.0)

    def column_constants(self) -> tuple[float, ...]:
        """``(step, offset)`` of a quantized column, else ``()``."""
        return (self.step, self.offset) if self.quantized else ()

    def _floor(self, step: Tensor | float) -> Tensor | float:
        if isinstance(step, Tensor):
            return step / 16.0
        return step / 16.0 if step > 0 else self.min_scale

    def _split(self, params: Tensor, floor: Tensor | float | None = None):
        c = self.n_components
        logits, loc, raw = params[..., :c], params[..., c : 2 * c], params[..., 2 * c : 3 * c]
        if floor is None:
            floor = self._floor(self.step)
        if isinstance(floor, Tensor):
            floor = floor.to(params.dtype).unsqueeze(-1)
        return logits, loc, floor + F.softplus(raw)

    def _grid(self, params: Tensor, constants: Tensor | None) -> tuple[Tensor, Tensor]:
        """``(step, offset)`` broadcastable to the leading shape, float64."""
        if constants is None:
            step = torch.tensor(self.step, dtype=torch.float64, device=params.device)
            return step, torch.tensor(self.offset, dtype=torch.float64, device=params.device)
        constants = constants.to(device=params.device, dtype=torch.float64)
        return constants[..., 0], constants[..., 1]

    @staticmethod
    def _snap(x: Tensor, step: Tensor, offset: Tensor) -> Tensor:
        """The grid point of the cell holding ``x`` (float64; the offset is kept small by the
        schema, so this is exact to float64 precision)."""
        return offset + step * torch.round((x.double() - offset) / step)

    def log_prob(self, params: Tensor, x: Tensor, constants: Tensor | None = None) -> Tensor:
        """Log density (a log-probability on an atom) of ``x``.

        ``constants`` of shape ``(m, 2)`` (``step, offset`` per column) replaces the family's
        own grid when :class:`ColumnConditionals` evaluates a group of quantized columns.
        The work is done in the component-major layout of :meth:`_log_prob_t`, after one
        transposing copy of the parameters.
        """
        lead = torch.broadcast_shapes(params.shape[:-1], x.shape)
        n = params.shape[-1]
        pt = params.expand(*lead, n).reshape(-1, n).T.contiguous()  # (n_params, N)
        step = offset = None
        if constants is not None:
            step, offset = self._grid(params, constants)
            step, offset = step.expand(lead).reshape(-1), offset.expand(lead).reshape(-1)
        return self._log_prob_t(pt, x.expand(lead).reshape(-1), step, offset).view(lead)

    def _log_prob_t(self, pt: Tensor, x: Tensor, step: Tensor | None = None,
                    offset: Tensor | None = None) -> Tensor:
        r""":meth:`log_prob` with the parameters on the second-to-last axis: ``pt`` of shape
        ``(..., n_params, N)``, ``x`` of shape ``(..., N)``, ``step`` and ``offset`` (float64)
        broadcastable to ``x`` or None for the family's own grid; returns the shape of ``x``.
        Fastest with ``pt`` and ``x`` contiguous.

        In this layout every component's logits, means and scales are contiguous runs, so the
        sums over components are elementwise over runs (vectorised) instead of reductions
        over a short last axis. A network that writes its output this way
        (:class:`skar.models.nade.NADE` when scoring) skips the transposing copy. Continuous
        columns:

        .. math::

            \log f(x) = \operatorname{logsumexp}_k\bigl(\ell_k + \log f_0(z_k) - \log s_k\bigr)
                        - \operatorname{logsumexp}_k \ell_k,\qquad z_k = (x - \mu_k)/s_k,

        one reduction fewer than forming the log-softmax first. A quantized column uses
        :func:`log_cell_prob`'s cell probabilities: float64's exact branches for float64
        parameters; in float32, the vectorised :func:`_log_cell_prob_fast`, with the cell's
        centre and width in component units formed from the float64 grid point.
        """
        c = self.n_components
        logits, loc, raw = pt[..., :c, :], pt[..., c : 2 * c, :], pt[..., 2 * c : 3 * c, :]
        if self.quantized:
            if step is None:
                step, offset = self._grid(pt, None)
            log_step = torch.log(step).to(pt.dtype)  # broadcastable to x
            step = step.unsqueeze(-2) if step.dim() else step  # (..., 1, N) against (..., c, N)
            offset = offset.unsqueeze(-2) if offset.dim() else offset
            scale = F.softplus(raw) + (step / 16.0).to(pt.dtype)
            centre = self._snap(x.unsqueeze(-2), step, offset)
            if pt.dtype == torch.float64:
                lo = (centre - 0.5 * step - loc) / scale
                log_cell = log_cell_prob(self.component, lo, step / scale)
            else:
                # The grid point rounded once to float32: half an ulp of the value, the same
                # order as the rounding the float32 network already left in the mean.
                mid = (centre.to(pt.dtype) - loc) / scale
                log_cell = _log_cell_prob_fast(self.component, mid, step.to(pt.dtype) / scale)
            out = _logsumexp_runs(logits + log_cell) - _logsumexp_runs(logits) - log_step
        else:
            dtype = torch.promote_types(pt.dtype, x.dtype)
            logits, loc, raw = logits.to(dtype), loc.to(dtype), raw.to(dtype)
            scale = F.softplus(raw) + self.min_scale
            z = (x.to(dtype).unsqueeze(-2) - loc) / scale
            # log f(z) up to the constant ``const``, added once per row after the sum
            if self.component == "gaussian":
                log_f, const = -0.5 * z * z, -_LOG_SQRT_2PI
            elif self.component == "laplace":
                log_f, const = -z.abs(), -math.log(2.0)
            else:  # logistic: log f(z) = -z - 2 log(1 + e^{-z}), symmetric in z
                log_f, const = -z.abs() - 2.0 * F.softplus(-z.abs()), 0.0
            out = (_logsumexp_runs(logits + log_f - scale.log()) - _logsumexp_runs(logits)
                   + const)
        if self.atoms:
            n_atoms = len(self.atoms)
            atom_logits = pt[..., 3 * c :, :].to(out.dtype)
            log_w = atom_logits - _logsumexp_runs(atom_logits).unsqueeze(-2)  # (..., A + 1, N)
            hit = self._atom_hits(x).movedim(-1, -2)  # (..., A, N)
            on_atom = (log_w[..., :n_atoms, :] * hit).sum(-2) + self.atom_log_unit
            out = torch.where(hit.any(-2), on_atom, log_w[..., n_atoms, :] + out)
        return out

    def _atom_hits(self, x: Tensor) -> Tensor:
        atoms = torch.tensor(self.atoms, dtype=torch.float64, device=x.device)
        tol = 1e-6 * atoms.abs().clamp_min(1.0)
        return (x.double().unsqueeze(-1) - atoms).abs() <= tol

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One draw per parameter vector.

        Uniforms are consumed in a fixed order: the atom (with atoms), the component, the
        component's noise, and (``within_cell``) the position within the cell.
        """
        shape = params.shape[:-1]
        if self.atoms:
            atom = _inverse_cdf(params[..., 3 * self.n_components :],
                                _uniform(shape, generator, params))
        logits, loc, scale = self._split(params)
        k = _inverse_cdf(logits, _uniform(shape, generator, params)).unsqueeze(-1)
        mu = torch.gather(loc, -1, k).squeeze(-1)
        s = torch.gather(scale, -1, k).squeeze(-1)
        if self.component == "gaussian":
            eps = torch.randn(shape, generator=generator, dtype=torch.float64)
            eps = eps.to(device=params.device, dtype=params.dtype)
        else:
            # Keep u inside (0, 1) so the inverse CDFs below stay finite.
            u = _uniform(shape, generator, params).clamp(1e-12, 1 - 1e-12)
            if self.component == "laplace":
                v = u - 0.5
                eps = -torch.sign(v) * torch.log1p(-2.0 * v.abs())
            else:
                eps = torch.log(u) - torch.log1p(-u)
        value = mu + s * eps
        if self.quantized:
            step, offset = self._grid(params, None)
            value = self._snap(value, step, offset)
            if self.within_cell:
                u = torch.rand(shape, generator=generator, dtype=torch.float64)
                value = value + step * (u.to(params.device) - 0.5)
            value = value.to(params.dtype)
        if self.atoms:
            atoms = torch.tensor((*self.atoms, 0.0), dtype=params.dtype, device=params.device)
            value = torch.where(atom < len(self.atoms), atoms[atom], value)
        return value

    def marginal_params(self, x: np.ndarray, weight: np.ndarray, seed: int = 0) -> np.ndarray:
        """The family fitted to one column alone: atom frequencies and a 1-D mixture by EM.

        **Atoms**: the atom logits are the log counts of each atom and of the other rows,
        smoothed by half a count each (Jeffreys); the mixture is fitted to the other rows.

        **Quantized column**: the mixture is fitted to the *dequantized* values, each moved
        uniformly within its cell (seeded), which is the variable the family models; EM then
        has no repeated value to collapse onto.

        **The mixture** (:class:`sklearn.mixture.GaussianMixture`): EM starts with a component
        on each of the most frequent repeated values (up to half the components; a value counts
        as an atom when it holds at least 1% of the rows) and the others spread over the
        quantiles of the remaining rows, so that a value repeated many times (a clipped or
        censored measurement) keeps a component of its own, which k-means would merge into its
        neighbours. The variance floor is the square of the scale floor: such a component ends
        as narrow as the family allows. The Gaussian fit serves every component kind, each
        component's scale set to match its standard deviation (``sigma / sqrt(2)`` for
        Laplace, ``sigma sqrt(3) / pi`` for logistic). Rows of zero weight are left out and the
        others count once each (EM here takes no weights). A column with fewer distinct values
        than components repeats components with their weight shared, which leaves the mixture
        unchanged. Any number of rows works: one distinct value (or one row) gives components
        of unit scale (the standardised unit) at that value, and no row at all (every row on
        an atom) a standard normal.
        """
        x = np.asarray(x, dtype=np.float64)[np.asarray(weight) > 0]
        head = np.empty(0)
        if self.atoms:
            hits = self._atom_hits(torch.as_tensor(x)).numpy()
            counts = np.append(hits.sum(0), (~hits.any(1)).sum())
            head = np.log(counts + 0.5)
            x = x[~hits.any(1)]
        floor = self._floor(self.step)
        if self.quantized and x.size:
            u = np.random.RandomState(seed).uniform(-0.5, 0.5, x.size)
            x = x + self.step * u
        log_w, mean, sigma = _fit_gaussian_mixture(x, self.n_components, floor, seed)
        factor = {"gaussian": 1.0, "laplace": 1.0 / math.sqrt(2.0),
                  "logistic": math.sqrt(3.0) / math.pi}[self.component]
        excess = np.maximum(factor * sigma - floor, 1e-8)
        raw = excess + np.log(-np.expm1(-excess))  # softplus^{-1}, stable for small excess
        return np.concatenate([log_w, mean, raw, head])


def _fit_gaussian_mixture(
    x: np.ndarray, n_components: int, floor: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log weights, means and standard deviations of ``n_components`` Gaussians fitted to ``x``
    by EM (see :meth:`Mixture.marginal_params`); safe for any number of rows."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    values, counts = np.unique(x, return_counts=True)
    if values.size <= 1:
        # Nothing to fit: one row, one repeated value, or none (every row on an atom).
        centre = float(values[0]) if values.size else 0.0
        k = n_components
        return np.full(k, -math.log(k)), np.full(k, centre), np.ones(k)
    k = max(1, min(n_components, values.size))
    by_count = np.argsort(-counts, kind="stable")
    is_atom = counts[by_count] >= max(2, 0.01 * x.size)
    atoms = values[by_count[is_atom][: k // 2]]
    rest = x[~np.isin(x, atoms)]
    n_rest = k - atoms.size
    if n_rest and rest.size == 0:  # every row sits on an atom: use more atoms
        atoms, n_rest = values[by_count[:k]], 0
        rest = x[~np.isin(x, atoms)]
    var_floor = floor**2
    means = [atoms]
    variances = [np.full(atoms.size, max(var_floor, (10 * floor) ** 2))]
    weights = [np.array([np.mean(x == a) for a in atoms])]
    if n_rest:
        means.append(np.quantile(rest, (np.arange(n_rest) + 0.5) / n_rest))
        variances.append(np.full(n_rest, max(np.var(rest) / n_rest, var_floor)))
        weights.append(np.full(n_rest, rest.size / x.size / n_rest))
    means_init, var_init = np.concatenate(means), np.concatenate(variances)
    weights_init = np.concatenate(weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(
            k,
            reg_covar=var_floor,
            random_state=seed,
            weights_init=weights_init / weights_init.sum(),
            means_init=means_init[:, None],
            precisions_init=(1.0 / var_init)[:, None, None],
        ).fit(x[:, None])
    idx = np.arange(n_components) % k  # components repeated cyclically
    share = np.bincount(idx, minlength=k)[idx]
    log_w = np.log(gm.weights_[idx]) - np.log(share)
    sigma = np.sqrt(gm.covariances_.reshape(-1))[idx]
    return log_w, gm.means_.reshape(-1)[idx], sigma


@dataclass(frozen=True)
class DiscretizedLogisticMixture(ConditionalFamily):
    r"""Discretized mixture of logistics over ``n_levels`` ordered levels (PixelCNN++).

    Level ``k`` of ``0 .. K-1`` sits at :math:`c_k = 2k/(K-1) - 1` in :math:`[-1, 1]`, with
    half bin width :math:`\delta = 1/(K-1)`. The parameters are laid out as
    ``[logits | means | raw scales]``, ``n_components`` each, and (Salimans et al. 2017, eq. 2)

    .. math::

        p(x = k) = \sum_j \pi_j \left[\sigma\!\left(\frac{c_k + \delta - \mu_j}{s_j}\right)
                   - \sigma\!\left(\frac{c_k - \delta - \mu_j}{s_j}\right)\right],

    with the edge cases :math:`\sigma(\cdot) \to 1` above level ``K-1`` and
    :math:`\sigma(\cdot) \to 0` below level 0: the first and last levels take the whole tails,
    so the masses telescope to exactly 1. :math:`\pi = \mathrm{softmax}(\text{logits})` and
    :math:`s_j = s_{\min} + \mathrm{softplus}(\text{raw}_j)`.

    The middle bins are computed without cancellation from the identity
    :math:`\sigma(a) - \sigma(b) = \sigma(a)\,\sigma(-b)\,(1 - e^{-(a-b)})`, so
    :math:`\log p` is exact in every bin (no fall-back to the density at the bin centre, which
    PixelCNN++ needs and which breaks the sum to 1).

    Sampling draws a component, then a logistic value :math:`\mu_j + s_j \log(u/(1-u))`,
    and rounds it to the nearest level (clamped to ``0 .. K-1``); the probability of landing in
    level ``k`` is exactly the bin mass above.

    Parameters
    ----------
    n_components : int
        Number of logistic components.
    n_levels : int
        Number of levels K (256 for 8-bit pixels); values are the codes ``0 .. K-1``.
    min_scale : float, default=1e-3
        Floor on the component scales, in the units of :math:`[-1, 1]`.

    References
    ----------
    T. Salimans, A. Karpathy, X. Chen and D. P. Kingma. PixelCNN++: Improving the PixelCNN with
    discretized logistic mixture likelihood and other modifications. ICLR 2017.
    """

    n_components: int
    n_levels: int
    min_scale: float = 1e-3

    kind = "categorical"

    def __post_init__(self) -> None:
        if self.n_levels < 2:
            raise ValueError(f"n_levels must be at least 2; got {self.n_levels}")

    @property
    def n_params(self) -> int:
        return 3 * self.n_components

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c = self.n_components
        logits, loc, raw = params[..., :c], params[..., c : 2 * c], params[..., 2 * c :]
        return logits, loc, self.min_scale + F.softplus(raw)

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        logits, loc, scale = self._split(params)  # (..., n_components) each
        k_max = self.n_levels - 1
        half = 1.0 / k_max
        code = x.to(params.dtype).unsqueeze(-1)  # (..., 1)
        centre = 2.0 * code / k_max - 1.0
        a = (centre + half - loc) / scale  # upper edge, standardised
        b = (centre - half - loc) / scale  # lower edge
        log_cdf_a = -F.softplus(-a)  # log sigma(a)
        log_sf_b = -F.softplus(b)  # log (1 - sigma(b)) = log sigma(-b)
        # log(sigma(a) - sigma(b)) = log sigma(a) + log sigma(-b) + log(1 - e^{-(a - b)}),
        # with a - b = 2 delta / s > 0 exactly (not recomputed from a and b).
        gap = 2.0 * half / scale
        log_mid = log_cdf_a + log_sf_b + torch.log(-torch.expm1(-gap))
        log_bin = torch.where(code <= 0, log_cdf_a, torch.where(code >= k_max, log_sf_b, log_mid))
        return torch.logsumexp(torch.log_softmax(logits, -1) + log_bin, dim=-1)

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        logits, loc, scale = self._split(params)
        shape = params.shape[:-1]
        j = _inverse_cdf(logits, _uniform(shape, generator, params)).unsqueeze(-1)
        mu = torch.gather(loc, -1, j).squeeze(-1)
        s = torch.gather(scale, -1, j).squeeze(-1)
        u = _uniform(shape, generator, params).clamp(1e-12, 1 - 1e-12)
        value = mu + s * (torch.log(u) - torch.log1p(-u))  # logistic draw in [-1, 1] units
        k_max = self.n_levels - 1
        return torch.round((value + 1.0) * 0.5 * k_max).clamp(0, k_max).to(params.dtype)


class ColumnConditionals(nn.Module):
    """The product of one family per column, evaluated for all columns at once.

    A network's output is the concatenation of every column's parameters, in column order
    (column ``d`` owns ``params[:, offsets[d]:offsets[d] + n_params_d]``). Columns that share a
    family are evaluated together with one gather, so the cost does not grow with a Python loop
    over columns (binarized MNIST has 784 Bernoulli columns and one group).

    Parameters
    ----------
    families : sequence of ConditionalFamily
        One family per column.
    """

    def __init__(self, families: Sequence[ConditionalFamily]) -> None:
        super().__init__()
        self.families = list(families)
        sizes = [f.n_params for f in self.families]
        self.offsets = [0]
        for s in sizes:
            self.offsets.append(self.offsets[-1] + s)
        groups: dict[ConditionalFamily, list[int]] = {}
        for d, fam in enumerate(self.families):
            groups.setdefault(fam.shared(), []).append(d)
        self._group_families = list(groups)
        self._group_has_constants = []
        # A group whose parameters are one contiguous run of the flat layout (every column of
        # one family, say) is read as a view, (start, stop, m, n_params), instead of gathered:
        # the gather cost as much as the mixture's log-density on 11 columns.
        self._group_runs: list[tuple[int, int, int, int] | None] = []
        # Whether a group's columns are all columns in order (its result is the whole output).
        self._group_is_all: list[bool] = []
        for g, cols in enumerate(groups.values()):
            pidx = torch.tensor([list(range(self.offsets[d], self.offsets[d + 1])) for d in cols])
            flat = pidx.reshape(-1)
            start = int(flat[0])
            contiguous = bool((flat == torch.arange(start, start + flat.numel())).all())
            self._group_runs.append(
                (start, start + flat.numel(), len(cols), pidx.shape[1]) if contiguous else None
            )
            self._group_is_all.append(cols == list(range(len(self.families))))
            self.register_buffer(f"_cols_{g}", torch.tensor(cols), persistent=False)
            self.register_buffer(f"_pidx_{g}", pidx, persistent=False)
            consts = [self.families[d].column_constants() for d in cols]
            self._group_has_constants.append(bool(consts[0]))
            if consts[0]:
                self.register_buffer(
                    f"_const_{g}", torch.tensor(consts, dtype=torch.float64), persistent=False
                )

    @property
    def n_features(self) -> int:
        """Number of columns D."""
        return len(self.families)

    @property
    def n_params(self) -> int:
        """Total number of parameters per row, the network's output width."""
        return self.offsets[-1]

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """Per-column conditional log-probabilities.

        Parameters
        ----------
        params : Tensor of shape (B, n_params)
            Row-major, or the transpose of a contiguous ``(n_params, B)`` tensor (the layout
            :class:`skar.models.nade.NADE` scores in), which mixture columns then read as
            component-major runs without a copy (:meth:`Mixture._log_prob_t`).
        x : Tensor of shape (B, D)
            Encoded values (see :mod:`skar.schema`).

        Returns
        -------
        Tensor of shape (B, D)
            ``log p(x_d | x_<d)`` for every column ``d``.
        """
        out = params.new_empty(x.shape)
        B = params.shape[0]
        column_major = params.dim() == 2 and B > 1 and params.T.is_contiguous()
        for g, fam in enumerate(self._group_families):
            cols = getattr(self, f"_cols_{g}")
            run = self._group_runs[g]
            is_all = self._group_is_all[g]
            consts = getattr(self, f"_const_{g}") if self._group_has_constants[g] else None
            if isinstance(fam, Mixture):
                # (m, n_params, B) component-major: a view of a column-major output, else one
                # transposing copy (cheaper than reducing over the short last axis).
                if column_major:
                    rows = (params.T[run[0] : run[1]] if run is not None
                            else params.T[getattr(self, f"_pidx_{g}").reshape(-1)])
                    pt = rows.view(len(cols), -1, B)  # (m, n_params, B), contiguous
                    # contiguous: a strided x would make every elementwise op with it
                    # scalar (and pass its layout on to their results)
                    xt = (x.T if is_all else x.T[cols]).to(params.dtype).contiguous()
                    step = offset = None
                    if consts is not None:
                        step, offset = fam._grid(params, consts[:, None])  # (m, 1)
                    logp = fam._log_prob_t(pt, xt, step, offset).T.to(out.dtype)
                else:
                    group_params = (params[:, run[0] : run[1]].reshape(B, len(cols), -1)
                                    if run is not None
                                    else params[:, getattr(self, f"_pidx_{g}")])
                    group_x = x if is_all else x[:, cols]
                    logp = fam.log_prob(group_params, group_x, consts).to(out.dtype)
            else:
                if run is not None:  # a view (B, m, n_params) of the contiguous run
                    group_params = params[:, run[0] : run[1]].reshape(-1, run[2], run[3])
                else:
                    group_params = params[:, getattr(self, f"_pidx_{g}")]
                group_x = x if is_all else x[:, cols]
                if consts is not None:  # a family with per-column constants
                    logp = fam.log_prob(group_params, group_x, consts).to(out.dtype)
                else:
                    logp = fam.log_prob(group_params, group_x)  # (B, m)
            if is_all:
                return logp.contiguous()
            out[:, cols] = logp
        return out

    def column_params(self, params: Tensor, d: int) -> Tensor:
        """The parameters of column ``d``, shape ``(B, n_params_d)``."""
        return params[:, self.offsets[d] : self.offsets[d + 1]]

    def sample_column(
        self, params: Tensor, d: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw column ``d`` given the full parameter matrix ``params`` of shape (B, n_params)."""
        return self.families[d].sample(self.column_params(params, d), generator)

    def marginal_params(
        self, Z: np.ndarray, weight: np.ndarray | None = None, seed: int = 0
    ) -> Tensor:
        """Every column's family fitted to that column alone, in the network's output layout.

        Parameters
        ----------
        Z : ndarray of shape (n, D)
            Encoded training rows.
        weight : ndarray of shape (n,), optional
            Row weights (default: ones).
        seed : int
            Seeds the mixtures' EM.

        Returns
        -------
        Tensor of shape (n_params,), float32
            ``theta_0`` with ``prod_d f_d(x_d; theta_0[d])`` the product of the marginals.
        """
        w = np.ones(Z.shape[0]) if weight is None else np.asarray(weight, dtype=np.float64)
        parts = [fam.marginal_params(Z[:, d], w, seed) for d, fam in enumerate(self.families)]
        return torch.as_tensor(np.concatenate(parts), dtype=torch.float32)
