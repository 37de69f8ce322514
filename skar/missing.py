"""Missing values: marginal scores, conditional draws and imputation.

A tabular skar estimator is the chain rule over an ordering ``o`` of the columns (or a uniform
mixture of such chains, one per member of an ensemble of orderings or masks),

.. math::  p(x) = \\frac{1}{K} \\sum_{k=1}^{K} \\prod_{i=1}^{D} p_k(x_{o^k_i} \\mid x_{o^k_{<i}}).

With the cells ``x_m`` of a row missing and ``x_o`` observed, this module gives the marginal
:math:`p(x_o) = \\frac{1}{K} \\sum_k p_k(x_o)` (what ``score_samples`` returns for such a row),
draws from the conditional :math:`p(x_m \\mid x_o)`, and imputes from those draws. Everything
goes through the network contract of :class:`skar.base.AutoregressiveNetwork` (``forward(x,
member)``, ``ordering(member)``, ``n_members``) and the column families, so one implementation
serves MADE, NADE/RNADE (tied and order-agnostic), MASDE, the RNN and the ARTransformer.

For every member ``k`` and row, the cheapest exact method is used, else an estimate:

``"ordering"`` (exact)
    Every missing column comes after every observed one in ``o^k``: then
    :math:`p_k(x_o) = \\prod_{d \\in o} p_k(x_d \\mid x_{<d})`, the observed prefix's
    conditionals, in one pass (the missing inputs hold any valid code; no observed conditional
    reads them).
``"enumeration"`` (exact)
    All missing cells are discrete and have at most ``max_completions`` joint values:
    :math:`p_k(x_o) = \\sum_{x_m} p_k(x_o, x_m)`.
``"importance"`` (estimate)
    Otherwise the missing cells are drawn from the member's own conditionals in its order, the
    observed cells clamped (ancestral sampling, the proposal
    :math:`q_k(x_m) = \\prod_{d \\in m} p_k(x_d \\mid x_{<d})`), and

    .. math::  \\hat p_k(x_o) = \\frac{1}{S} \\sum_{s=1}^{S} w_s, \\qquad
               w_s = \\frac{p_k(x_o, x_m^{(s)})}{q_k(x_m^{(s)})}
                   = \\prod_{d \\in o} p_k(x_d \\mid x^{(s)}_{<d}),

    unbiased for :math:`p_k(x_o)` (not for its log: :math:`E \\log \\hat p \\le \\log p`, by
    Jensen, a bias of about :math:`\\mathrm{Var}(\\hat p) / 2p^2`).

A row's method is the least exact of its members'. The standard error reported for an estimate
is the delta-method error of the log, :math:`\\mathrm{se}(\\hat p) / \\hat p`, with
:math:`\\mathrm{Var}(\\hat p) = K^{-2} \\sum_k \\widehat{\\mathrm{Var}}(w^{(k)}) / S`.

Conditional draws (:func:`sample_conditional`) are exact when every member is exact by
ordering (a member drawn from its posterior :math:`\\propto p_k(x_o)`, then ancestral
sampling of the missing cells) or by enumeration (a draw from the enumerated conditional);
otherwise they are sampling-importance-resampling from the proposals above (approximate:
consistent as ``n_proposals`` grows; the effective sample size
:math:`(\\sum w)^2 / \\sum w^2` of every row's pool is reported).
"""

from __future__ import annotations

import inspect
import itertools
import math
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import Tensor

__all__ = [
    "MAX_COMPLETIONS",
    "N_DRAWS",
    "SCORE_SEED",
    "SkarImputer",
    "impute",
    "marginal_score_samples",
    "sample_conditional",
]

#: Enumerate the missing cells of a row when all are discrete and have at most this many joint
#: values (per row, per member).
MAX_COMPLETIONS = 1024
#: Importance draws per member and row that ``score_samples`` uses when a row's marginal is
#: neither exact by ordering nor by enumeration.
N_DRAWS = 256
#: The seed of those draws, so that ``score_samples`` is deterministic.
SCORE_SEED = 0
#: Rows times draws (or completions) per network pass.
_CHUNK = 1 << 15

METHODS = ("complete", "ordering", "enumeration", "importance")
_ORDERING, _ENUMERATION, _IMPORTANCE = 1, 2, 3


# ---------------------------------------------------------------------------- checks
def _check_supported(estimator: Any) -> None:
    """Refuse estimators whose columns cannot be marginalised (images, sequences, non-skar)."""
    check_is_fitted(estimator)
    schema = getattr(estimator, "schema_", None)
    encode = getattr(schema, "encode", None)
    if encode is None or "return_missing" not in inspect.signature(encode).parameters:
        what = "it has no column schema" if schema is None else (
            f"its {type(schema).__name__} has no encoding of missing cells")
        raise TypeError(
            f"{type(estimator).__name__} does not support missing values: {what}. Missing "
            "values are marginalised by the tabular estimators (MADEDensity, NADEDensity, "
            "RNADEDensity, MASDEDensity, RNNDensity, ARTransformerDensity); impute or drop "
            "them first for image and sequence models."
        )


def _check_positive(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Integral, np.integer)) \
            or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _prepare(estimator: Any, X: Any, y: Any) -> tuple:
    """Checked X, encoded rows, unknown and missing masks (all (n, D) bool) and the context."""
    _check_supported(estimator)
    X = estimator._check_X(X, reset=False)
    Z, unknown, missing = estimator._encode_masked(X, return_missing=True)
    n, D = Z.shape
    unknown = np.zeros((n, D), bool) if unknown is None else unknown
    missing = np.zeros((n, D), bool) if missing is None else missing
    context = estimator._context_rows(y, n, reset=False)
    return X, Z, unknown, missing, context


def _generator(estimator: Any, random_state: Any) -> torch.Generator:
    rs = estimator.random_state if random_state is None else random_state
    seed = int(check_random_state(rs).randint(np.iinfo(np.int32).max))
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- the model
class _Model:
    """What the algorithms read from a fitted estimator: the module, its members' positions,
    the columns' sizes, and the device."""

    def __init__(self, estimator: Any) -> None:
        self.module = estimator.net_.module_
        self.module.eval()
        self.device = estimator.net_.device
        net = self.module.network
        self.K = int(net.n_members)
        self.orders = np.stack([np.asarray(net.ordering(m).tolist()) for m in range(self.K)])
        self.positions = np.argsort(self.orders, axis=1)
        self.families = self.module.conditionals.families
        self.D = len(self.families)
        # Joint values of a missing cell: its categories, or infinitely many.
        self.sizes = np.array([2.0 if f.kind == "binary" else float(getattr(f, "n_categories", 0))
                               if f.kind == "categorical" else np.inf for f in self.families])

    def tensor(self, a: np.ndarray) -> Tensor:
        return torch.as_tensor(a, device=self.device)

    def log_probs(self, x: Tensor, m: int, c: Tensor | None) -> Tensor:
        """``log p_m(x_d | x_<d)`` of every column, (B, D) float64."""
        return self.module.log_prob_per_feature(x, m, c).double()

    def fill(self, x: Tensor, miss: Tensor, m: int, c: Tensor | None,
             generator: torch.Generator) -> Tensor:
        """Draw the missing cells of ``x`` in place, in member ``m``'s order, observed cells
        clamped: ``x_d ~ p_m(. | x_<d)`` for every missing ``d`` (one pass per position)."""
        cond = self.module.conditionals
        for d in self.orders[m].tolist():
            rows = torch.nonzero(miss[:, d]).squeeze(1)
            if rows.numel() == 0:
                continue
            params = self.module.params(x[rows], m, None if c is None else c[rows])
            x[rows, d] = cond.sample_column(params, d, generator).to(x.dtype)
        return x

    def plan(self, missing: np.ndarray, max_completions: int) -> tuple[np.ndarray, np.ndarray]:
        """``exact`` (n, K): member ``k`` is exact by ordering for the row; ``enumerable`` (n,):
        the row's missing cells are discrete with at most ``max_completions`` joint values."""
        n = missing.shape[0]
        exact = np.empty((n, self.K), bool)
        for m in range(self.K):
            pos = np.broadcast_to(self.positions[m], missing.shape)
            last_obs = np.where(~missing, pos, -1).max(1)
            first_mis = np.where(missing, pos, self.D).min(1)
            exact[:, m] = last_obs < first_mis
        with np.errstate(invalid="ignore"):
            log_count = np.where(missing, np.log(self.sizes), 0.0).sum(1)
        enumerable = log_count <= math.log(max_completions) + 1e-9
        return exact, enumerable


def _chunks(n: int, per_row: int):
    step = max(1, _CHUNK // max(1, per_row))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _repeat(a: Tensor | None, times: int) -> Tensor | None:
    return None if a is None else a.repeat_interleave(times, dim=0)


def _cum_in_order(L: Tensor, order: np.ndarray) -> Tensor:
    """Cumulative sums along the member's order: ``[..., i]`` sums positions ``0 .. i``."""
    return torch.cumsum(L[..., torch.as_tensor(order, device=L.device)], dim=-1)


# ---------------------------------------------------------------------------- prefixes
# Every method returns P of shape (n, D): P[r, i] = log p_m(the observed cells at positions
# <= i of member m's order), so P[:, -1] is log p_m(x_o) and differences of P are the
# observed cells' conditionals given the observed cells before them.
def _prefix_ordering(model: _Model, Z, miss, m, c) -> np.ndarray:
    out = np.empty(Z.shape, np.float64)
    for s in _chunks(Z.shape[0], 1):
        L = model.log_probs(model.tensor(Z[s]), m, None if c is None else model.tensor(c[s]))
        L = L.masked_fill(model.tensor(miss[s]), 0.0)
        out[s] = _cum_in_order(L, model.orders[m]).cpu().numpy()
    return out


def _prefix_importance(model: _Model, Z, miss, m, c, n_draws, generator):
    """Prefixes estimated from ``n_draws`` proposals per row, and the final log-weights."""
    n, D = Z.shape
    P = np.empty((n, D), np.float64)
    logw = np.empty((n, n_draws), np.float64)
    for s in _chunks(n, n_draws):
        x = _repeat(model.tensor(Z[s]), n_draws)  # (R*S, D), draws of a row contiguous
        mk = _repeat(model.tensor(miss[s]), n_draws)
        cs = _repeat(None if c is None else model.tensor(c[s]), n_draws)
        model.fill(x, mk, m, cs, generator)
        L = model.log_probs(x, m, cs).masked_fill(mk, 0.0)
        cum = _cum_in_order(L, model.orders[m]).view(-1, n_draws, D)  # (R, S, D)
        P[s] = (torch.logsumexp(cum, dim=1) - math.log(n_draws)).cpu().numpy()
        logw[s] = cum[:, :, -1].cpu().numpy()
    return P, logw


def _completions(model: _Model, cols: np.ndarray) -> np.ndarray:
    sizes = [int(model.sizes[d]) for d in cols]
    return np.array(list(itertools.product(*[range(k) for k in sizes])), dtype=np.float32)


def _enumerate(model: _Model, Z, miss, c, rows, fn):
    """Call ``fn(rows_chunk, x (R, C, D) tensor, c_expanded, cols, grid)`` for every group of
    ``rows`` sharing one missing pattern, ``x`` holding every completion of each row."""
    patterns, inverse = np.unique(miss[rows], axis=0, return_inverse=True)
    for p, pattern in enumerate(patterns):
        group = rows[inverse.reshape(-1) == p]
        cols = np.flatnonzero(pattern)
        grid = _completions(model, cols)  # (C, |cols|)
        C = grid.shape[0]
        g = model.tensor(grid)
        for s in _chunks(group.size, C):
            r = group[s]
            x = _repeat(model.tensor(Z[r]), C).view(r.size, C, -1).clone()
            x[:, :, torch.as_tensor(cols, device=x.device)] = g
            cs = _repeat(None if c is None else model.tensor(c[r]), C)
            fn(r, x, cs, cols, grid)


def _prefix_enumeration(model: _Model, Z, miss, m, c, rows) -> np.ndarray:
    """Exact prefixes by enumeration: summing the chain over all completions counts every
    completion of the missing cells *after* position ``i`` once more, so divide by their
    number."""
    D = Z.shape[1]
    out = {}

    def fn(r, x, cs, cols, grid):
        C = grid.shape[0]
        L = model.log_probs(x.view(-1, D), m, cs).view(r.size, C, D)
        cum = _cum_in_order(L, model.orders[m])  # (R, C, D), missing terms included
        pos = model.positions[m][cols]
        log_after = np.array([np.log(model.sizes[cols[pos > i]]).sum() for i in range(D)])
        P = torch.logsumexp(cum, dim=1).cpu().numpy() - log_after
        for j, row in enumerate(r):
            out[row] = P[j]

    _enumerate(model, Z, miss, c, rows, fn)
    return np.stack([out[row] for row in rows]) if rows.size else np.empty((0, D))


# ---------------------------------------------------------------------------- marginals
@torch.no_grad()
def _marginal(estimator: Any, Z, unknown, missing, context, *, n_draws: int,
              max_completions: int, generator: torch.Generator,
              per_feature: bool = False) -> dict[str, np.ndarray]:
    """Log marginal density of the observed cells of every row (user units), its standard
    error, the method code of every row, and (``per_feature``, one member only) the observed
    cells' conditionals given the observed cells before them, NaN for missing cells."""
    model = _Model(estimator)
    n, D = Z.shape
    schema = estimator.schema_
    exact, enumerable = model.plan(missing, max_completions)
    has_missing = missing.any(1)
    method = np.zeros(n, np.int64)
    logp = np.full((model.K, n), np.nan)
    var_terms = np.zeros((model.K, n))  # sum_k Var(w_k)/S, scaled by exp(-shift) below
    shift = np.zeros(n)
    prefix = np.full((n, D), np.nan) if per_feature else None
    is_rows_any = np.zeros(n, bool)
    logw_all: list[tuple[int, np.ndarray, np.ndarray]] = []
    for m in range(model.K):
        code = np.where(exact[:, m], _ORDERING,
                        np.where(enumerable, _ENUMERATION, _IMPORTANCE))
        code[~has_missing] = _ORDERING  # the full chain rule
        method = np.maximum(method, code)
        for which in (_ORDERING, _ENUMERATION, _IMPORTANCE):
            rows = np.flatnonzero(code == which)
            if rows.size == 0:
                continue
            c = None if context is None else context[rows]
            if which == _ORDERING:
                P = _prefix_ordering(model, Z[rows], missing[rows], m, c)
            elif which == _ENUMERATION:
                P = _prefix_enumeration(model, Z, missing, m, context, rows)
            else:
                P, logw = _prefix_importance(model, Z[rows], missing[rows], m, c, n_draws,
                                             generator)
                logw_all.append((m, rows, logw))
                is_rows_any[rows] = True
            logp[m, rows] = P[:, -1]
            if per_feature:
                prefix[rows] = P
    # log p(x_o) = log mean_k p_k(x_o)
    with np.errstate(invalid="ignore"):
        log_marginal = _logmeanexp(logp, axis=0)
    std = np.zeros(n)
    if logw_all:
        shift = np.where(np.isfinite(log_marginal), log_marginal, 0.0)
        for _m, rows, logw in logw_all:
            w = np.exp(logw - shift[rows, None])  # weights relative to the estimate
            var_terms[_m, rows] = w.var(axis=1, ddof=1) / w.shape[1] if w.shape[1] > 1 \
                else np.inf
        with np.errstate(invalid="ignore", divide="ignore"):
            std = np.sqrt(var_terms.sum(0)) / model.K  # se(p_hat) / p_hat
        std[~is_rows_any] = 0.0
    # Units: the log|Jacobian| of the observed continuous cells only.
    jac = np.where(missing, 0.0, schema.log_jacobian_per_feature)
    rows_jac = estimator._log_jacobian_rows(schema, Z)
    if rows_jac is not None:
        jac = jac + np.where(missing, 0.0, rows_jac)
    out = log_marginal + jac.sum(1)
    bad = np.isnan(out) | (unknown & ~missing).any(1)
    out[bad] = -np.inf
    method[~has_missing] = 0
    result = {"score": out, "std": std, "method": method}
    if per_feature:
        order = model.orders[0]
        prev = np.concatenate([np.zeros((n, 1)), prefix[:, :-1]], axis=1)
        cond_in_order = prefix - prev
        per = np.empty((n, D))
        per[:, order] = cond_in_order
        per = per + jac
        per[missing] = np.nan
        per[np.isnan(per) & ~missing] = -np.inf
        per[unknown & ~missing] = -np.inf
        result["per_feature"] = per
    return result


def _logmeanexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.mean(np.exp(a - top), axis=axis, keepdims=True)) + top
    return np.squeeze(out, axis=axis)


def marginal_score_samples(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    n_draws: int = N_DRAWS,
    max_completions: int = MAX_COMPLETIONS,
    random_state: Any = SCORE_SEED,
    return_std: bool = True,
) -> Any:
    """Log marginal density of the observed cells of every row, and how it was computed.

    ``estimator.score_samples(X)`` returns the same scores with the defaults; this function
    also says which rows are exact and how uncertain the others are (see :mod:`skar.missing`
    for the three methods).

    Parameters
    ----------
    estimator : fitted tabular skar estimator
        MADEDensity, NADEDensity, RNADEDensity, MASDEDensity, RNNDensity or
        ARTransformerDensity.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Rows with missing cells (NaN, None or ``pd.NA``); complete rows get their usual score.
    y : array-like, default=None
        The context of a conditional model (ignored by unconditional ones).
    n_draws : int, default=N_DRAWS
        Importance draws per row and member, for rows that are not exact.
    max_completions : int, default=MAX_COMPLETIONS
        Enumerate a row's missing cells when all are discrete with at most this many joint
        values.
    random_state : int, RandomState instance or None, default=SCORE_SEED
        Seeds the importance draws (``None``: the estimator's ``random_state``).
    return_std : bool, default=True
        Also return the standard errors and methods.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        ``log p(x_o)`` in the units of ``X`` (the log|Jacobian| of observed continuous cells
        only).
    std : ndarray of shape (n_samples,)
        Only with ``return_std``: the standard error of each estimated score (delta method,
        ``se(p_hat) / p_hat``); 0 where the score is exact.
    method : ndarray of shape (n_samples,), dtype object
        Only with ``return_std``: ``"complete"`` (no missing cell), ``"ordering"`` or
        ``"enumeration"`` (exact), ``"importance"`` (estimated).

    Examples
    --------
    >>> import numpy as np
    >>> from skar.models.made import MADEDensity
    >>> from skar.missing import marginal_score_samples
    >>> X = np.random.RandomState(0).normal(size=(200, 3))
    >>> est = MADEDensity((8,), max_iter=2, early_stopping=False, random_state=0).fit(X)
    >>> scores, std, method = marginal_score_samples(est, [[0.1, np.nan, 0.3]])
    >>> method.tolist()
    ['importance']
    """
    n_draws = _check_positive(n_draws, "n_draws")
    max_completions = _check_positive(max_completions, "max_completions")
    _, Z, unknown, missing, context = _prepare(estimator, X, y)
    res = _marginal(estimator, Z, unknown, missing, context, n_draws=n_draws,
                    max_completions=max_completions,
                    generator=_generator(estimator, random_state))
    if not return_std:
        return res["score"]
    return res["score"], res["std"], np.array(METHODS, dtype=object)[res["method"]]


# ---------------------------------------------------------------------------- conditional draws
@torch.no_grad()
def _draws(estimator: Any, Z, unknown, missing, context, *, n_draws: int, n_proposals: int,
           max_completions: int, generator: torch.Generator) -> tuple:
    """Encoded draws (n_draws, n, D) of the missing cells given the observed ones, the method
    code of every row and the effective sample size of importance rows (NaN elsewhere)."""
    model = _Model(estimator)
    n, D = Z.shape
    out = np.broadcast_to(Z, (n_draws, n, D)).copy()
    method = np.zeros(n, np.int64)
    ess = np.full(n, np.nan)
    exact, enumerable = model.plan(missing, max_completions)
    has = missing.any(1)
    by_order = has & exact.all(1)
    by_enum = has & ~by_order & enumerable
    by_sir = has & ~by_order & ~by_enum
    method[by_order], method[by_enum], method[by_sir] = _ORDERING, _ENUMERATION, _IMPORTANCE
    K = model.K

    # Exact by ordering: a member from its posterior p_k(x_o) / sum_j p_j(x_o), then the
    # missing cells from that member's conditionals.
    rows = np.flatnonzero(by_order)
    if rows.size:
        c = None if context is None else context[rows]
        if K > 1:
            logp = np.stack([_prefix_ordering(model, Z[rows], missing[rows], m, c)[:, -1]
                             for m in range(K)], axis=1)
            probs = torch.softmax(torch.as_tensor(logp), dim=1)
            members = torch.multinomial(probs, n_draws, replacement=True,
                                        generator=generator).numpy()  # (R, n_draws)
        else:
            members = np.zeros((rows.size, n_draws), np.int64)
        for m in range(K):
            r_idx, d_idx = np.nonzero(members == m)
            for s in _chunks(r_idx.size, 1):
                rr = rows[r_idx[s]]
                x = model.tensor(Z[rr]).clone()
                cs = None if context is None else model.tensor(context[rr])
                model.fill(x, model.tensor(missing[rr]), m, cs, generator)
                out[d_idx[s], rr] = x.cpu().numpy()

    # Exact by enumeration: the conditional over the completions, from the joint scores.
    rows = np.flatnonzero(by_enum)
    if rows.size:
        def fn(r, x, cs, cols, grid):
            C = grid.shape[0]
            joint = torch.stack([model.log_probs(x.view(-1, D), m, cs).sum(1)
                                 for m in range(K)]).view(K, r.size, C)
            joint = torch.logsumexp(joint, dim=0)  # the 1/K cancels in the conditional
            pick = torch.multinomial(torch.softmax(joint.cpu(), dim=1), n_draws,
                                     replacement=True, generator=generator).numpy()
            vals = grid[pick]  # (R, n_draws, |cols|)
            for j, row in enumerate(r):
                out[:, row][:, cols] = vals[j]

        _enumerate(model, Z, missing, context, rows, fn)

    # Sampling-importance-resampling: n_proposals per member from the ancestral proposals,
    # resampled by their weights p_k(x_o, x_m) / q_k(x_m).
    rows = np.flatnonzero(by_sir)
    for s in _chunks(rows.size, K * n_proposals):
        rr = rows[s]
        pools, logws = [], []
        for m in range(K):
            x = _repeat(model.tensor(Z[rr]), n_proposals)
            mk = _repeat(model.tensor(missing[rr]), n_proposals)
            cs = _repeat(None if context is None else model.tensor(context[rr]), n_proposals)
            model.fill(x, mk, m, cs, generator)
            lw = model.log_probs(x, m, cs).masked_fill(mk, 0.0).sum(1)
            pools.append(x.view(rr.size, n_proposals, D))
            logws.append(lw.view(rr.size, n_proposals))
        pool = torch.cat(pools, dim=1).cpu()  # (R, K*S, D)
        logw = torch.cat(logws, dim=1).cpu()  # (R, K*S)
        logw = torch.nan_to_num(logw, nan=-math.inf)
        ok = torch.isfinite(logw).any(1)
        logw[~ok] = 0.0  # no proposal has positive weight: fall back to the proposals
        pick = torch.multinomial(torch.softmax(logw, dim=1), n_draws, replacement=True,
                                 generator=generator)  # (R, n_draws)
        chosen = torch.gather(pool, 1, pick.unsqueeze(-1).expand(-1, -1, D))  # (R, n_draws, D)
        out[:, rr] = chosen.transpose(0, 1).numpy()
        ess[rr] = torch.exp(2 * torch.logsumexp(logw, 1) - torch.logsumexp(2 * logw, 1)).numpy()
    out[:, ~missing.any(1)] = Z[~missing.any(1)]
    return out, method, ess


def _column_values(decoded: Any, j: int) -> np.ndarray:
    return decoded.iloc[:, j].to_numpy() if isinstance(decoded, pd.DataFrame) \
        else np.asarray(decoded)[:, j]


def _fill(X: Any, missing: np.ndarray, columns: list[np.ndarray]) -> Any:
    """A copy of ``X`` whose missing cells hold ``columns[j]``'s values (rows of X)."""
    if isinstance(X, pd.DataFrame):
        out = X.copy()
        for j in range(X.shape[1]):
            rows = np.flatnonzero(missing[:, j])
            if rows.size == 0:
                continue
            col = out.iloc[:, j]
            values = columns[j][rows]
            if isinstance(col.dtype, pd.CategoricalDtype):
                new = col.to_numpy(dtype=object)
                new[rows] = values
                out.isetitem(j, pd.Series(pd.Categorical(new, dtype=col.dtype), index=X.index))
            else:
                new = col.to_numpy(dtype=object).copy()
                new[rows] = values
                series = pd.Series(new, index=X.index)
                try:
                    series = series.astype(col.dtype)
                except (TypeError, ValueError):
                    series = series.infer_objects()
                out.isetitem(j, series)
        return out
    X = np.asarray(X)
    dtype = X.dtype
    values = np.column_stack([np.asarray(c) for c in columns])
    if dtype.kind in "biuf" and values.dtype.kind in "biuf":
        out = X.astype(np.float64, copy=True)
    else:
        out = X.astype(object, copy=True)
    out[missing] = values[missing]
    return out


def sample_conditional(
    estimator: Any,
    X: Any,
    n_draws: int = 1,
    random_state: Any = None,
    *,
    y: Any = None,
    n_proposals: int = 256,
    max_completions: int = MAX_COMPLETIONS,
    return_info: bool = False,
) -> Any:
    """Draws of the missing cells of every row given its observed cells.

    Exact where every member of the model puts the row's observed columns before its missing
    ones (ancestral sampling, the member drawn from its posterior weight ``p_k(x_o)``) or where
    the missing cells are discrete with at most ``max_completions`` joint values (a draw from
    the enumerated conditional). Otherwise sampling-importance-resampling: ``n_proposals``
    ancestral draws per member with the observed cells clamped, resampled with replacement by
    their weights ``prod_{d observed} p_k(x_d | x_<d)``; approximate (exact as ``n_proposals``
    grows; the draws of a row may repeat), with the effective sample size
    ``(sum w)^2 / sum w^2`` of the pool in ``info["ess"]``.

    Parameters
    ----------
    estimator : fitted tabular skar estimator
    X : array-like or DataFrame of shape (n_samples, n_features)
        Rows with missing cells (NaN, None or ``pd.NA``).
    n_draws : int, default=1
        Draws per row.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws; ``None`` uses the estimator's ``random_state``.
    y : array-like, default=None
        The context of a conditional model.
    n_proposals : int, default=256
        Proposals per member and row for sampling-importance-resampling.
    max_completions : int, default=MAX_COMPLETIONS
    return_info : bool, default=False
        Also return ``{"method": ..., "ess": ...}``: every row's method (``"complete"``,
        ``"ordering"``, ``"enumeration"``, ``"importance"``) and effective sample size
        (NaN for exact rows).

    Returns
    -------
    draws : ndarray of shape (n_draws, n_samples, n_features), or DataFrame
        ``X`` with its missing cells filled, once per draw: a numpy array (float64 for numeric
        data, object otherwise), or for a DataFrame a DataFrame of ``n_draws * n_samples``
        rows indexed by ``(draw, original index)``, with ``X``'s columns and dtypes. Observed
        cells are ``X``'s own values.
    info : dict
        Only with ``return_info=True``.
    """
    n_draws = _check_positive(n_draws, "n_draws")
    n_proposals = _check_positive(n_proposals, "n_proposals")
    max_completions = _check_positive(max_completions, "max_completions")
    X, Z, unknown, missing, context = _prepare(estimator, X, y)
    draws, method, ess = _draws(estimator, Z, unknown, missing, context, n_draws=n_draws,
                                n_proposals=n_proposals, max_completions=max_completions,
                                generator=_generator(estimator, random_state))
    n, D = Z.shape
    decoded = estimator.schema_.decode(draws.reshape(-1, D))
    filled = []
    for k in range(n_draws):
        cols = [_column_values(decoded, j)[k * n : (k + 1) * n] for j in range(D)]
        filled.append(_fill(X, missing, cols))
    if isinstance(X, pd.DataFrame):
        result = pd.concat(filled, keys=range(n_draws), names=["draw", X.index.name])
    else:
        result = np.stack(filled)
    if return_info:
        return result, {"method": np.array(METHODS, dtype=object)[method], "ess": ess}
    return result


def impute(
    estimator: Any,
    X: Any,
    n_draws: int = 100,
    random_state: Any = None,
    *,
    y: Any = None,
    strategy: str = "mean",
    n_proposals: int = 256,
    max_completions: int = MAX_COMPLETIONS,
) -> Any:
    """Fill the missing cells of ``X`` from the model's conditional ``p(x_m | x_o)``.

    Parameters
    ----------
    estimator : fitted tabular skar estimator
    X : array-like or DataFrame of shape (n_samples, n_features)
    n_draws : int, default=100
        Conditional draws per row (:func:`sample_conditional`).
    random_state : int, RandomState instance or None, default=None
    y : array-like, default=None
        The context of a conditional model.
    strategy : {"mean", "sample"}, default="mean"
        ``"mean"``: continuous (and quantized) cells get the mean of their draws (the
        conditional mean, estimated), binary and categorical cells the most frequent draw
        (the conditional mode, estimated); ``"sample"``: the first draw (one multiple
        imputation; vary ``random_state`` for others).
    n_proposals, max_completions : int
        See :func:`sample_conditional`.

    Returns
    -------
    ndarray or DataFrame of shape (n_samples, n_features)
        ``X`` with its missing cells filled (a DataFrame for a DataFrame, with its dtypes).
    """
    if strategy not in ("mean", "sample"):
        raise ValueError(f"strategy must be 'mean' or 'sample'; got {strategy!r}")
    n_draws = 1 if strategy == "sample" else _check_positive(n_draws, "n_draws")
    n_proposals = _check_positive(n_proposals, "n_proposals")
    max_completions = _check_positive(max_completions, "max_completions")
    X, Z, unknown, missing, context = _prepare(estimator, X, y)
    draws, _, _ = _draws(estimator, Z, unknown, missing, context, n_draws=n_draws,
                         n_proposals=n_proposals, max_completions=max_completions,
                         generator=_generator(estimator, random_state))
    n, D = Z.shape
    schema = estimator.schema_
    decoded_draws = schema.decode(draws.reshape(-1, D))
    modes = draws[0].copy()
    for j, spec in enumerate(schema.columns):
        if spec.kind != "continuous" and n_draws > 1:
            codes = np.rint(draws[:, :, j]).astype(np.int64)  # (n_draws, n)
            counts = np.apply_along_axis(np.bincount, 0, codes, minlength=spec.n_categories)
            modes[:, j] = counts.argmax(0)
    decoded_modes = schema.decode(modes)
    cols = []
    for j, spec in enumerate(schema.columns):
        if spec.kind == "continuous":
            v = _column_values(decoded_draws, j).astype(np.float64).reshape(n_draws, n)
            cols.append(v.mean(0))
        else:
            cols.append(_column_values(decoded_modes, j))
    return _fill(X, missing, cols)


# ---------------------------------------------------------------------------- transformer
class SkarImputer(TransformerMixin, BaseEstimator):
    """Impute missing cells with a skar density: the conditional of the missing cells given
    the observed ones.

    ``fit`` trains a clone of ``estimator`` on the complete rows of ``X`` (rows without a
    missing cell); ``transform`` fills every missing cell from the model's conditional
    ``p(x_m | x_o)`` (:func:`impute`): the conditional mean of continuous cells and the
    conditional mode of discrete ones, estimated from ``n_draws`` draws, or one draw
    (``strategy="sample"``, multiple imputation across ``random_state`` values).

    Parameters
    ----------
    estimator : skar tabular estimator or None, default=None
        The density to fit (cloned). ``None``: ``MADEDensity()``.
    n_draws : int, default=100
        Conditional draws per row for ``strategy="mean"``.
    strategy : {"mean", "sample"}, default="mean"
    n_proposals : int, default=256
        Proposals per row for sampling-importance-resampling (:func:`sample_conditional`).
    random_state : int, RandomState instance or None, default=None
        Seeds the draws of ``transform``; ``None`` uses the seed 0, so that ``transform`` is
        deterministic (pass other integers for other multiple imputations).

    Attributes
    ----------
    estimator_ : fitted estimator
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when X was a DataFrame with string column names.
    n_complete_rows_ : int
        Rows the estimator was trained on.

    Examples
    --------
    >>> import numpy as np
    >>> from skar.models.made import MADEDensity
    >>> from skar.missing import SkarImputer
    >>> X = np.random.RandomState(0).normal(size=(200, 3))
    >>> X[0, 1] = np.nan
    >>> imp = SkarImputer(MADEDensity((8,), max_iter=2, early_stopping=False, random_state=0),
    ...                   n_draws=10, random_state=0).fit(X)
    >>> bool(np.isnan(imp.transform(X)).any())
    False
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "score_samples"]), None],
        "n_draws": [Interval(Integral, 1, None, closed="left")],
        "strategy": [StrOptions({"mean", "sample"})],
        "n_proposals": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator: Any = None, *, n_draws: int = 100, strategy: str = "mean",
                 n_proposals: int = 256, random_state: Any = None) -> None:
        self.estimator = estimator
        self.n_draws = n_draws
        self.strategy = strategy
        self.n_proposals = n_proposals
        self.random_state = random_state

    def _check_X(self, X: Any, *, reset: bool) -> Any:
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] < 1:
                raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a "
                                 "minimum of 1 is required.")
            return X
        return validate_data(self, X, reset=reset, dtype=None, ensure_all_finite="allow-nan")

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: Any = None) -> SkarImputer:
        """Fit the density on the complete rows of ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        X = self._check_X(X, reset=True)
        complete = ~np.asarray(pd.isna(pd.DataFrame(X)), dtype=bool).any(1)
        if not complete.any():
            raise ValueError(
                "every row of X has a missing cell; SkarImputer trains its density on the "
                "complete rows, so it needs at least one (impute some rows another way first)"
            )
        if self.estimator is None:
            from .models.made import MADEDensity

            estimator = MADEDensity()
        else:
            estimator = clone(self.estimator)
        rows = X[complete] if isinstance(X, pd.DataFrame) else np.asarray(X)[complete]
        if not isinstance(X, pd.DataFrame) and rows.dtype == object:
            try:
                rows = rows.astype(np.float64)
            except (TypeError, ValueError):
                pass
        self.estimator_ = estimator.fit(rows)
        _check_supported(self.estimator_)
        self.n_complete_rows_ = int(complete.sum())
        return self

    def transform(self, X: Any) -> Any:
        """Fill the missing cells of ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray or DataFrame of shape (n_samples, n_features)
            ``X`` with its missing cells filled (float64 for numeric arrays).
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        rs = 0 if self.random_state is None else self.random_state
        return impute(self.estimator_, X, n_draws=self.n_draws, random_state=rs,
                      strategy=self.strategy, n_proposals=self.n_proposals)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The input feature names (imputation keeps the columns)."""
        from sklearn.utils.validation import _check_feature_names_in

        check_is_fitted(self)
        return _check_feature_names_in(self, input_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.non_deterministic = False
        return tags
