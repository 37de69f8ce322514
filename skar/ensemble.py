r"""Ensembles of independently seeded density estimators, scored by log-mean-exp.

A neural density fitted to a few hundred rows depends on its seed: the initial weights, the
minibatch order, the rows early stopping holds out and, for MADE, the masks. Two fits of the
same estimator can differ by more than the gap between two model families (the defaults
benchmark measured seeds of one ``MADEDensity()`` on a Boston fold from -1.5 to -3.5 nats per
row). :class:`DensityEnsemble` fits ``n_estimators`` clones of one estimator, each with its own
``random_state``, and models the uniform mixture

.. math::  p(x) = \frac{1}{K} \sum_{k=1}^{K} p_k(x),
   \qquad \log p(x) = \operatorname{logsumexp}_k \log p_k(x) - \log K.

This is the *deep ensemble* of Lakshminarayanan et al. (2017) for densities, and the seed
counterpart of the ordering and mask ensembles of EoNADE (Uria et al. 2014) and MADE (Germain et
al. 2015), which average orderings inside one network. By Jensen's inequality the mixture's
log-likelihood of every row is at least the members' mean,
``log p(x) >= (1/K) sum_k log p_k(x)``, so on any data the ensemble's held-out log-likelihood is
at least the average member's (it can be below the best member's). The mixture is a proper
density, so it normalises, samples and compares as any other: a draw picks a member uniformly,
then draws from it.

What an ensemble costs: ``K`` fits (``n_jobs`` runs them in parallel processes) and ``K``
scoring passes. What it does not offer: a mixture of autoregressive models is not autoregressive
(its conditionals ``p(x_d | x_<d)`` are posterior-weighted mixtures of the members'), so
there is no ``score_samples_per_feature``; use one member for per-column explanations.

References
----------
Lakshminarayanan, B., Pritzel, A. & Blundell, C. (2017). Simple and scalable predictive
uncertainty estimation using deep ensembles. NeurIPS.

Uria, B., Murray, I. & Larochelle, H. (2014). A deep and tractable density estimator. ICML.
"""

from __future__ import annotations

import inspect
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, DensityMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from .base import check_passthrough_X, passthrough_tags

__all__ = ["DensityEnsemble"]

_MAX_SEED = np.iinfo(np.int32).max


def _seeded_clone(estimator: Any, seed: int) -> Any:
    """A clone of ``estimator`` whose every ``random_state`` parameter (nested ones, as in a
    :class:`~sklearn.pipeline.Pipeline`, included) is ``seed``."""
    member = clone(estimator)
    keys = [k for k in member.get_params(deep=True) if k == "random_state"
            or k.endswith("__random_state")]
    if keys:
        member.set_params(**dict.fromkeys(keys, seed))
    return member


def _fit_member(member: Any, X: Any, y: Any, sample_weight: Any) -> Any:
    kwargs = {}
    if y is not None:
        kwargs["y"] = y
    if sample_weight is not None:
        kwargs["sample_weight"] = sample_weight
    return member.fit(X, **kwargs)


def _accepts(method: Any, name: str) -> bool:
    """Whether ``method`` takes a keyword ``name`` (``GaussianMixture.sample`` takes no
    ``random_state``: it draws with the estimator's own)."""
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _rows_of(draw: Any) -> Any:
    """The rows of a member's ``sample`` (``GaussianMixture.sample`` returns ``(X, labels)``)."""
    return draw[0] if isinstance(draw, tuple) else draw


class DensityEnsemble(DensityMixin, BaseEstimator):
    r"""Uniform mixture of ``n_estimators`` independently seeded fits of one density estimator.

    ``log p(x) = logsumexp_k log p_k(x) - log K``, with member ``k`` a clone of ``estimator``
    whose ``random_state`` is the ``k``-th integer drawn from ``random_state``. Every row's
    log-likelihood is at least the members' mean (Jensen), so the ensemble is never worse than
    the average seed, and its score varies less from one ``random_state`` to the next. See the
    module docstring for the mathematics and the costs.

    Parameters
    ----------
    estimator : estimator object
        A density estimator with ``fit`` and ``score_samples`` (every skar estimator,
        :class:`~sklearn.neighbors.KernelDensity`, :class:`~sklearn.mixture.GaussianMixture`,
        or a :class:`~sklearn.pipeline.Pipeline` ending in one). It is cloned; each clone's
        ``random_state`` parameters, nested ones included, are replaced by the member's seed.
        ``sample`` needs the members to have a ``sample`` method.
    n_estimators : int, default=5
        Number of members ``K``.
    n_jobs : int, default=None
        Members fitted in parallel by :class:`joblib.Parallel` (``None`` means 1, ``-1`` every
        core). Scoring and sampling run in this process.
    random_state : int, RandomState instance or None, default=None
        Draws the members' seeds (and is the default seed of :meth:`sample`). An integer makes
        the whole ensemble reproducible.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members.
    seeds_ : ndarray of shape (n_estimators,)
        The ``random_state`` each member was given.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names seen in ``fit``, when ``X`` had string column names.

    See Also
    --------
    skar.MADEDensity : ``n_orderings`` averages masks inside one network (one fit).
    sklearn.ensemble.BaggingRegressor : the same seeding of members, for regressors.

    Examples
    --------
    >>> import numpy as np
    >>> from skar import MADEDensity
    >>> from skar import DensityEnsemble
    >>> X = np.random.RandomState(0).normal(size=(200, 2))
    >>> ens = DensityEnsemble(MADEDensity(hidden_layer_sizes=(8,), max_iter=5),
    ...                       n_estimators=3, random_state=0).fit(X)
    >>> len(ens.estimators_), ens.score_samples(X[:4]).shape, ens.sample(5).shape
    (3, (4,), (5, 2))
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "score_samples"])],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator: Any, *, n_estimators: int = 5, n_jobs: int | None = None,
                 random_state: Any = None) -> None:
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _check_X(self, X: Any, *, reset: bool) -> Any:
        return check_passthrough_X(self, X, reset=reset)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> DensityEnsemble:
        """Fit ``n_estimators`` clones of ``estimator``, each with its own seed, on all of X.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training rows, passed to every member as they are.
        y : array-like of shape (n_samples,), default=None
            Passed to every member's ``fit`` when given (conditioning columns of skar's
            conditional models).
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to every member's ``fit`` when given.

        Returns
        -------
        self : object
            The fitted ensemble.
        """
        saved = dict(self.__dict__)
        try:
            X = self._check_X(X, reset=True)
            rng = check_random_state(self.random_state)
            seeds = rng.randint(_MAX_SEED, size=self.n_estimators)
            members = [_seeded_clone(self.estimator, int(s)) for s in seeds]
            self.estimators_ = Parallel(n_jobs=self.n_jobs)(
                delayed(_fit_member)(m, X, y, sample_weight) for m in members)
            self.seeds_ = seeds
        except BaseException:
            # A failed fit (bad rows, a member that raises, Ctrl-C) leaves a previously
            # fitted ensemble as it was, as every skar estimator does.
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        return self

    def _member_scores(self, X: Any, y: Any) -> np.ndarray:
        """``(K, n_samples)`` log densities of the members (``y`` to those that take it)."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        return np.stack([np.asarray(m.score_samples(
            X, **({"y": y} if y is not None and _accepts(m.score_samples, "y") else {})),
            dtype=np.float64) for m in self.estimators_])

    def score_samples(self, X: Any, y: Any = None) -> np.ndarray:
        """Log density of the mixture, ``logsumexp_k log p_k(x) - log K``, per row.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            Passed to the members' ``score_samples`` when given and they take it (skar's
            conditional models score ``log p(x | y)``); ignored by the others, as
            :class:`~sklearn.neighbors.KernelDensity` ignores it.

        Returns
        -------
        ndarray of shape (n_samples,), float64
            Natural log density in the units of ``X``; ``-inf`` where every member gives the
            row probability zero.
        """
        scores = self._member_scores(X, y)
        with np.errstate(divide="ignore"):  # rows that every member gives -inf stay -inf
            return logsumexp(scores, axis=0) - np.log(len(scores))

    def score(self, X: Any, y: Any = None) -> float:
        """Total log-likelihood of ``X`` under the mixture (as ``KernelDensity.score``).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            As in :meth:`score_samples`.

        Returns
        -------
        logprob : float
            ``sum_n log p(x_n)``: higher is better, so ``GridSearchCV`` needs no scorer.
        """
        return float(np.sum(self.score_samples(X, y)))

    def sample(self, n_samples: int = 1, random_state: Any = None, y: Any = None) -> Any:
        """Draw rows from the mixture: each row picks a member uniformly, then draws from it.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw.
        random_state : int, RandomState instance or None, default=None
            Seeds the draw (the members' assignment and their draws; a member whose
            ``sample`` takes no ``random_state``, as ``GaussianMixture``'s, draws with its
            own seed). ``None`` uses the
            ensemble's ``random_state``, so an ensemble built with an integer draws the same
            rows every call.
        y : scalar or array-like of shape (n_samples,), default=None
            Passed to the members' ``sample`` when given and they take it: a scalar to every
            member, an array row by row.

        Returns
        -------
        ndarray or DataFrame of shape (n_samples, n_features)
            What the members return (a DataFrame for a skar model fitted on one), rows in
            the order drawn.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        member_of_row = rng.randint(len(self.estimators_), size=n_samples)
        y_rows = None if y is None or np.ndim(y) == 0 else np.asarray(y)
        if y_rows is not None and len(y_rows) != n_samples:
            raise ValueError(f"y has {len(y_rows)} entries; sample needs one per row, "
                             f"n_samples={n_samples}")
        pieces, positions = [], []
        for k, member in enumerate(self.estimators_):
            rows = np.flatnonzero(member_of_row == k)
            seed = int(rng.randint(_MAX_SEED))  # drawn for every member: stable streams
            if rows.size == 0:
                continue
            kwargs = {}
            if y is not None and _accepts(member.sample, "y"):
                kwargs["y"] = y if y_rows is None else y_rows[rows]
            if _accepts(member.sample, "random_state"):
                kwargs["random_state"] = seed
            pieces.append(_rows_of(member.sample(int(rows.size), **kwargs)))
            positions.append(rows)
        order = np.argsort(np.concatenate(positions), kind="stable")
        if isinstance(pieces[0], pd.DataFrame):
            return pd.concat(pieces, ignore_index=True).iloc[order].reset_index(drop=True)
        return np.concatenate([np.asarray(p) for p in pieces])[order]

    def __sklearn_tags__(self):
        return passthrough_tags(super().__sklearn_tags__(), self.estimator)
