"""Out of the box: every tabular skar estimator at its defaults against tuned classics.

This is issue 17's benchmark. Each skar estimator is fitted with no argument but
``random_state`` (``MADEDensity()``, ``RNADEDensity()`` on continuous data, ``NADEDensity()`` on
discrete data, ``ARTransformerDensity()``), side by side with two cross-validated classics:

- ``KernelDensity (CV)``: the bandwidth chosen by 5-fold ``GridSearchCV`` over a log grid;
- ``GaussianMixture (CV)``: ``n_components`` chosen by 5-fold ``GridSearchCV``
  (``covariance_type="full"``);
- ``GaussianMixture (CV, reg_covar)``: the same with ``reg_covar`` in {1e-6, 1e-4, 1e-2, 0.1}
  cross-validated too (the default 1e-6 lets components collapse on repeated values, and the
  search then keeps one component on Boston);

both fitted on standardised columns (a ``StandardScaler`` fitted on the training rows) with
the log|Jacobian| of the standardisation, ``-sum_d log s_d``, added back, so that every number
is a log density in the units the data set is given in (skar does the same inside). A data set
with categorical columns gets, for the classics, the factorisation
``log p(group) + log p_classic(continuous | group) + log p(other categoricals | continuous, group)``
(the group's smoothed frequency, one classic fitted per group, a cross-validated multinomial
``LogisticRegressionCV`` for the rest, mixed with a 1e-3 uniform share so an unseen category
costs a finite amount).

Data sets (units; splits):

- ``mixture_1d``: scikit-learn's KDE example, N=100 from 0.3 N(0,1) + 0.7 N(5,1) (30 and 70
  draws, as in the example), scored on 20,000 fresh draws from the mixture; one seed per cell.
  The true density's mean log-likelihood on the same draws is computed in closed form, and its
  negative entropy by quadrature.
- ``moons``: ``make_moons(n_samples=1000, noise=0.08, random_state=0)`` (the gallery's), 3
  shuffled folds, z-scored with the training fold's mean and deviation.
- ``digits_pca15``: ``load_digits`` (1,797 rows of 64 pixels), 80/20 split per seed, PCA to 15
  dimensions fitted on the training split (the units of the PCA scores), as in scikit-learn's
  KDE example.
- ``red_wine``, ``white_wine``, ``parkinsons``, ``ionosphere``, ``boston``: the RNADE protocol
  (:func:`skar.datasets.load_rnade_uci`, 10 shuffled folds of ``KFold(10, random_state=0)``,
  the same folds as ``benchmarks/uci``, z-scored with the training fold), the first 3 folds
  only, for speed.
- ``wine_mixed``: red and white wine in one frame (6,497 rows): the 11 physico-chemical columns
  in data units, ``color`` (red/white) and ``quality`` (3..9) as pandas categoricals; folds as
  the RNADE protocol (first 3 of 10).
- ``digits_binary``: the 8x8 digits binarized (a pixel above 7 of 16 is 1; 64 binary columns,
  the data set ``select_recipe.py`` chose NADE's recipe on), 80/20 split per seed: the suite's
  discrete data set, where ``NADEDensity()`` is compared. A density of real vectors does not
  score a binary vector's probability, so on binary data the two classic rows are their
  discrete counterparts, tuned the same way (``BinaryKernelDensity``: the Aitchison-Aitken
  kernel, a mixture of ``n`` product-Bernoullis centred on the training rows, its bandwidth
  chosen by 5-fold ``GridSearchCV``; ``BernoulliMixture``: EM with ``n_components`` chosen
  by 5-fold ``GridSearchCV``, and in the ``reg_covar`` row its pseudo-count as well). Their
  log-probabilities, like skar's, sum to at most 0 over the 2^64 vectors.
- ``red_wine_n100``, ``red_wine_n300``, ``digits_pca15_n100``, ``digits_pca15_n300``: small
  samples, n training rows drawn per seed, scored on all other rows (z-scoring, or the PCA,
  fitted on the n training rows).
- ``speed``: scoring throughput at 11 continuous columns (red wine, z-scored, resampled to
  20,000 query rows), one thread, ``GaussianMixture(n_components=10)`` and each skar default in
  one run; the skar models are fitted for 2 epochs only (``max_iter=2``: the scoring cost does
  not depend on how long a model trained). Multiply-adds per row are counted by
  :class:`torch.utils.flop_counter.FlopCounterMode` over the matrix products of one scoring
  pass (elementwise work is not counted), from the weight shapes for NADE/RNADE (whose tied
  pass multiplies elementwise, unseen by the counter), and for the mixture as
  ``K * D * (D + 1)`` (scikit-learn's triangular whitening and squared norm per component).

Per cell (data set, model, seed or fold) the run records the test log-likelihood per row, fit
seconds (wall clock and process CPU time), scoring rows per second, ``n_iter_`` (the epochs
run, with the early-stopping epoch and the validation curve for the neural models; EM
iterations for the mixture), the chosen
hyper-parameter for the classics, the load average, the command, the ``--label`` and the skar
source it imported. Cells go to ``benchmarks/results/<out>_cells.jsonl`` as they finish, and a
rerun with the same ``--out`` skips the cells there (``--fresh`` starts over), so a long run can
be stopped and resumed; ``--table-only`` tabulates what is done, marking partial rows with their
counts.

Usage::

    python benchmarks/defaults/run.py --label before --quick      # a few cells, short fits
    python benchmarks/defaults/run.py --label before --jobs 1     # the full suite
    python benchmarks/defaults/run.py --label after --datasets mixture_1d moons
    python benchmarks/defaults/run.py --label before --table-only

Writes ``benchmarks/results/<out>.md`` and ``<out>.png`` (default ``defaults_<label>``, or
``defaults_<label>_quick``). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import sklearn
import torch
from joblib import Parallel, delayed
from scipy import integrate, special, stats
from sklearn.base import BaseEstimator
from sklearn.datasets import load_digits, make_moons
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegressionCV
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.neighbors import KernelDensity
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

import skar
from skar import ARTransformerDensity, DensityEnsemble, MADEDensity, NADEDensity, RNADEDensity
from skar.datasets import load_rnade_uci, load_wine_quality

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
UCI = ["red_wine", "white_wine", "parkinsons", "ionosphere", "boston"]
# Most informative first: a stopped run has these.
DATASETS = ["mixture_1d", "moons", "digits_pca15", "red_wine", "speed", "red_wine_n100",
            "red_wine_n300", "digits_pca15_n100", "digits_pca15_n300", "boston", "ionosphere",
            "wine_mixed", "white_wine", "parkinsons", "digits_binary"]
N_SPLITS = {"mixture_1d": 5, "speed": 1}  # every other data set: 3 seeds or folds
QUICK_DATASETS = ["mixture_1d", "moons", "red_wine", "speed", "wine_mixed", "red_wine_n100"]
KDE_GRID = np.geomspace(0.01, 3.0, 25)
BINARY_KDE_GRID = np.geomspace(1e-3, 0.5, 25)  # the chance a kernel flips a bit
GMM_GRID = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]
# The Bernoulli mixture chose 32, GMM_GRID's largest, on digits_binary: the grid goes on.
BERNOULLI_GRID = GMM_GRID + [48, 64, 96, 128]
N_TRUE_1D = 100


# --------------------------------------------------------------------------- data
@dataclass
class Split:
    """One train/test split: arrays (or frames) in the units the data set is scored in."""

    X_train: Any
    X_test: Any
    true_ll: float | None = None  # mean log-likelihood of the true density, when known


def _mixture_1d_logpdf(x: np.ndarray) -> np.ndarray:
    """Closed-form log density of 0.3 N(0, 1) + 0.7 N(5, 1)."""
    return np.logaddexp(np.log(0.3) + stats.norm.logpdf(x, 0, 1),
                        np.log(0.7) + stats.norm.logpdf(x, 5, 1))


def mixture_1d_neg_entropy() -> float:
    """E[log p(x)] of the 1-D mixture by quadrature: the best any estimator can score."""
    f = lambda x: np.exp(_mixture_1d_logpdf(x)) * _mixture_1d_logpdf(x)  # noqa: E731
    return float(integrate.quad(f, -12, 17, limit=200)[0])


def _zscore(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = tr.mean(0), tr.std(0)
    sd[sd == 0] = 1.0
    return (tr - mu) / sd, (te - mu) / sd


def _pca15(tr: np.ndarray, te: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    pca = PCA(n_components=15, whiten=False, random_state=seed).fit(tr)
    return pca.transform(tr), pca.transform(te)


_WINE: list[pd.DataFrame] = []  # a module-level cache (see _commit for why not functools)


def _wine_frame() -> pd.DataFrame:
    if _WINE:
        return _WINE[0]
    parts = []
    for color in ("red", "white"):
        df = load_wine_quality(color=color, as_frame=True).frame.copy()
        df.insert(0, "color", color)
        parts.append(df)
    df = pd.concat(parts, ignore_index=True)
    df["color"] = pd.Categorical(df["color"], categories=["red", "white"])
    df["quality"] = pd.Categorical(df["quality"].astype(int),
                                   categories=sorted(df["quality"].astype(int).unique()))
    _WINE.append(df)
    return df


def load_split(ds: str, seed: int) -> Split:
    """The ``seed``-th split (seed or fold) of data set ``ds``."""
    if ds == "mixture_1d":
        rng = np.random.RandomState(seed)
        n0 = int(0.3 * N_TRUE_1D)
        tr = np.concatenate([rng.normal(0, 1, n0), rng.normal(5, 1, N_TRUE_1D - n0)])
        test_rng = np.random.RandomState(10_000 + seed)
        comp = test_rng.rand(20_000) < 0.3
        te = np.where(comp, test_rng.normal(0, 1, 20_000), test_rng.normal(5, 1, 20_000))
        return Split(tr[:, None], te[:, None], float(_mixture_1d_logpdf(te).mean()))
    if ds == "moons":
        X, _ = make_moons(n_samples=1000, noise=0.08, random_state=0)
        tr, te = list(KFold(3, shuffle=True, random_state=0).split(X))[seed]
        return Split(*_zscore(X[tr], X[te]))
    if ds == "digits_pca15":
        X = load_digits().data
        tr, te = train_test_split(X, test_size=0.2, random_state=seed)
        return Split(*_pca15(tr, te, seed))
    if ds == "digits_binary":
        X = (load_digits().data > 7).astype(np.float64)
        return Split(*train_test_split(X, test_size=0.2, random_state=seed))
    if ds in UCI:
        X = np.asarray(load_rnade_uci(ds), dtype=np.float64)
        tr, te = list(KFold(10, shuffle=True, random_state=0).split(X))[seed]
        return Split(*_zscore(X[tr], X[te]))
    if ds == "wine_mixed":
        df = _wine_frame()
        tr, te = list(KFold(10, shuffle=True, random_state=0).split(df))[seed]
        return Split(df.iloc[tr].reset_index(drop=True), df.iloc[te].reset_index(drop=True))
    for base in ("red_wine", "digits_pca15"):
        for n in (100, 300):
            if ds == f"{base}_n{n}":
                X = (np.asarray(load_rnade_uci("red_wine"), dtype=np.float64)
                     if base == "red_wine" else load_digits().data)
                rows = np.random.RandomState(seed).permutation(len(X))
                tr, te = X[rows[:n]], X[rows[n:]]
                return Split(*(_zscore(tr, te) if base == "red_wine" else _pca15(tr, te, seed)))
    raise ValueError(f"unknown data set {ds!r}; expected one of {DATASETS}")


def _categorical_columns(X: Any) -> list[Any]:
    if not isinstance(X, pd.DataFrame):
        return []
    return [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]


def is_binary(X: Any) -> bool:
    """An array of 0/1 values only (``digits_binary``)."""
    return not isinstance(X, pd.DataFrame) and bool(np.isin(np.asarray(X), (0, 1)).all())


def is_continuous(X: Any) -> bool:
    return not _categorical_columns(X) and not is_binary(X)


def is_discrete(X: Any) -> bool:
    if isinstance(X, pd.DataFrame):
        return len(_categorical_columns(X)) == X.shape[1]
    return is_binary(X)


# --------------------------------------------------------------------------- classics
class StandardisedClassic:
    """A scikit-learn density fitted on standardised columns, scored in data units.

    ``log p_X(x) = log p_Z((x - m) / s) - sum_d log s_d``, with the scaler fitted on the
    training rows. ``make(seed)`` returns the (GridSearchCV-wrapped) estimator.
    """

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make

    def fit(self, X: np.ndarray) -> StandardisedClassic:
        self.scaler_ = StandardScaler().fit(X)
        self.log_jacobian_ = -float(np.log(self.scaler_.scale_).sum())
        self.search_ = self.make().fit(self.scaler_.transform(X))
        self.model_ = self.search_.best_estimator_
        self.best_params_ = {k: (float(v) if isinstance(v, float | np.floating) else int(v))
                             for k, v in self.search_.best_params_.items()}
        self.n_iter_ = getattr(self.model_, "n_iter_", None)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return self.model_.score_samples(self.scaler_.transform(X)) + self.log_jacobian_


class MixedClassic:
    """A classic density for a frame with categorical columns (see the module docstring).

    ``log p(x) = log p(g) + log p_classic(x_cont | g) + log p(x_rest | x_cont, g)``: ``g`` is the
    first categorical column (its add-one smoothed frequency, one classic per level), the other
    categoricals come from a multinomial ``LogisticRegressionCV`` on the standardised continuous
    columns and the group's indicators.
    """

    def __init__(self, make: Callable[[], Any], seed: int) -> None:
        self.make, self.seed = make, seed

    def fit(self, X: pd.DataFrame) -> MixedClassic:
        cats = _categorical_columns(X)
        self.group_, self.rest_ = cats[0], cats[1:]
        self.cont_ = [c for c in X.columns if c not in cats]
        g = X[self.group_]
        levels = list(g.cat.categories)
        counts = g.value_counts().reindex(levels, fill_value=0).to_numpy(dtype=float)
        self.log_pg_ = dict(zip(levels, np.log((counts + 1) / (counts.sum() + len(levels)))))
        self.per_group_ = {lv: StandardisedClassic(self.make).fit(
            X.loc[g == lv, self.cont_].to_numpy(np.float64)) for lv in levels}
        self.scaler_ = StandardScaler().fit(X[self.cont_].to_numpy(np.float64))
        self.clf_ = {}
        for c in self.rest_:
            clf = LogisticRegressionCV(Cs=8, cv=3, max_iter=2000, scoring="neg_log_loss")
            with warnings.catch_warnings():
                # scikit-learn 1.9 announces changes of defaults this script does not rely on.
                warnings.simplefilter("ignore", FutureWarning)
                clf.fit(self._features(X), X[c].astype(str))
            self.clf_[c] = (clf, [str(v) for v in X[c].cat.categories])
        self.best_params_ = {str(lv): m.best_params_ for lv, m in self.per_group_.items()}
        self.n_iter_ = None
        return self

    def _features(self, X: pd.DataFrame) -> np.ndarray:
        onehot = pd.get_dummies(X[self.group_]).to_numpy(np.float64)
        return np.hstack([self.scaler_.transform(X[self.cont_].to_numpy(np.float64)), onehot])

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        g = X[self.group_]
        out = g.map(self.log_pg_).to_numpy(np.float64)
        for lv, m in self.per_group_.items():
            rows = (g == lv).to_numpy()
            if rows.any():
                out[rows] += m.score_samples(X.loc[rows, self.cont_].to_numpy(np.float64))
        for c, (clf, all_levels) in self.clf_.items():
            proba = clf.predict_proba(self._features(X))
            col = {str(k): i for i, k in enumerate(clf.classes_)}
            x = X[c].astype(str).to_numpy()
            p = np.array([proba[i, col[v]] if v in col else 0.0 for i, v in enumerate(x)])
            out += np.log((1 - 1e-3) * p + 1e-3 / len(all_levels))
        return out


class BinaryKernelDensity(BaseEstimator):
    r"""Kernel density of binary vectors with the Aitchison-Aitken kernel (1976).

    .. math::

        P(x) = \frac{1}{n} \sum_{i=1}^{n} \prod_{d=1}^{D}
            (1 - b)^{[x_d = t_{id}]} \, b^{[x_d \ne t_{id}]}
             = \frac{1}{n} \sum_i (1 - b)^{D - h_i(x)} b^{h_i(x)},

    with ``t_i`` the training rows, ``h_i(x)`` the Hamming distance and ``b`` in (0, 1/2] the
    ``bandwidth`` (the chance the kernel flips a bit): a mixture of ``n`` product-Bernoullis,
    a probability over the ``2^D`` vectors, the discrete counterpart of a Gaussian KDE.
    ``score`` is the total log-probability, as :class:`~sklearn.neighbors.KernelDensity`'s.
    """

    def __init__(self, bandwidth: float = 0.1) -> None:
        self.bandwidth = bandwidth

    def fit(self, X: np.ndarray, y: Any = None) -> BinaryKernelDensity:
        self.X_ = np.asarray(X, dtype=np.float64)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        hamming = X @ (1 - self.X_).T + (1 - X) @ self.X_.T  # (n_query, n_train)
        b, D = float(self.bandwidth), X.shape[1]
        log_k = (D - hamming) * np.log1p(-b) + hamming * np.log(b)
        return special.logsumexp(log_k, axis=1) - np.log(len(self.X_))

    def score(self, X: np.ndarray, y: Any = None) -> float:
        return float(self.score_samples(X).sum())


class BernoulliMixture(BaseEstimator):
    r"""Mixture of ``n_components`` product-Bernoulli distributions, fitted by EM.

    :math:`P(x) = \sum_k \pi_k \prod_d \mu_{kd}^{x_d} (1 - \mu_{kd})^{1 - x_d}`, the
    discrete counterpart of :class:`~sklearn.mixture.GaussianMixture`. The M-step is the MAP
    estimate under a symmetric Beta prior of ``pseudo_count`` extra zeros and ones per pixel
    (which keeps every :math:`\mu` off 0 and 1, as ``reg_covar`` keeps a covariance off
    singular): :math:`\mu_{kd} = (\sum_i r_{ik} x_{id} + a) / (\sum_i r_{ik} + 2a)`.
    Responsibilities start from a seeded Dirichlet draw; EM stops when the mean
    log-likelihood gains less than ``tol``. ``score`` is the mean log-probability, as
    GaussianMixture's.
    """

    def __init__(self, n_components: int = 1, pseudo_count: float = 1e-2,
                 max_iter: int = 300, tol: float = 1e-4, random_state: Any = None) -> None:
        self.n_components = n_components
        self.pseudo_count = pseudo_count
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _log_joint(self, X: np.ndarray) -> np.ndarray:
        return (X @ np.log(self.means_).T + (1 - X) @ np.log1p(-self.means_).T
                + np.log(self.weights_))

    def fit(self, X: np.ndarray, y: Any = None) -> BernoulliMixture:
        X = np.asarray(X, dtype=np.float64)
        rng = check_random_state(self.random_state)
        resp = rng.dirichlet(np.ones(self.n_components), size=len(X))
        a, previous = self.pseudo_count, -np.inf
        for iteration in range(1, self.max_iter + 1):
            self.n_iter_ = iteration
            nk = resp.sum(0)
            self.weights_ = (nk + 1e-10) / (nk.sum() + 1e-10 * len(nk))
            self.means_ = (resp.T @ X + a) / (nk[:, None] + 2 * a)
            log_joint = self._log_joint(X)
            log_p = special.logsumexp(log_joint, axis=1)
            resp = np.exp(log_joint - log_p[:, None])
            if log_p.mean() - previous < self.tol:
                break
            previous = log_p.mean()
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return special.logsumexp(self._log_joint(np.asarray(X, dtype=np.float64)), axis=1)

    def score(self, X: np.ndarray, y: Any = None) -> float:
        return float(self.score_samples(X).mean())


class BinaryClassic:
    """A classic of binary vectors (:class:`BinaryKernelDensity`, :class:`BernoulliMixture`)
    behind ``GridSearchCV``: no scaling, its scores are log-probabilities."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make

    def fit(self, X: np.ndarray) -> BinaryClassic:
        self.search_ = self.make().fit(X)
        self.model_ = self.search_.best_estimator_
        self.best_params_ = {k: (float(v) if isinstance(v, float | np.floating) else int(v))
                             for k, v in self.search_.best_params_.items()}
        self.n_iter_ = getattr(self.model_, "n_iter_", None)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return self.model_.score_samples(X)


def binary_kde_cv(seed: int, n_train: int) -> Any:
    return GridSearchCV(BinaryKernelDensity(), {"bandwidth": BINARY_KDE_GRID}, cv=5, n_jobs=1)


def bernoulli_mixture_cv(seed: int, n_train: int) -> Any:
    grid = [k for k in BERNOULLI_GRID if k <= max(1, (n_train * 4 // 5) // 2)]
    return GridSearchCV(BernoulliMixture(random_state=seed), {"n_components": grid}, cv=5,
                        n_jobs=1)


def bernoulli_mixture_cv_reg(seed: int, n_train: int) -> Any:
    """The Bernoulli mixture with its pseudo-count cross-validated too (the binary row of
    ``GaussianMixture (CV, reg_covar)``)."""
    grid = [k for k in BERNOULLI_GRID if k <= max(1, (n_train * 4 // 5) // 2)]
    return GridSearchCV(BernoulliMixture(random_state=seed),
                        {"n_components": grid, "pseudo_count": [1e-3, 1e-2, 1e-1, 1.0]},
                        cv=5, n_jobs=1)


def kde_cv(seed: int, n_train: int) -> Any:
    return GridSearchCV(KernelDensity(), {"bandwidth": KDE_GRID}, cv=5, n_jobs=1)


def gmm_cv(seed: int, n_train: int) -> Any:
    # GaussianMixture needs at least n_components rows in each CV training part.
    grid = [k for k in GMM_GRID if k <= max(1, (n_train * 4 // 5) // 2)]
    return GridSearchCV(GaussianMixture(covariance_type="full", random_state=seed),
                        {"n_components": grid}, cv=5, n_jobs=1)


def gmm_cv_reg(seed: int, n_train: int) -> Any:
    """GaussianMixture with ``reg_covar`` cross-validated too.

    With the default ``reg_covar=1e-6``, a column of repeated values (Boston, ionosphere, the
    wines) lets a component collapse onto them, and the cross-validation then falls back to
    few components; a larger floor keeps more components usable. This is the tuned mixture
    the issue's "better of KDE-CV and GMM-CV" should be measured against.
    """
    grid = [k for k in GMM_GRID if k <= max(1, (n_train * 4 // 5) // 2)]
    return GridSearchCV(GaussianMixture(covariance_type="full", random_state=seed),
                        {"n_components": grid, "reg_covar": [1e-6, 1e-4, 1e-2, 1e-1]}, cv=5,
                        n_jobs=1)


# --------------------------------------------------------------------------- models
@dataclass
class Entry:
    """One row of the table: a name, a factory ``(seed, X_train, quick) -> estimator`` and the
    data it applies to (``"any"``, ``"continuous"``, ``"discrete"``)."""

    name: str
    make: Callable[[int, Any, bool], Any]
    applies: str = "any"
    skar: bool = True


def _quick(quick: bool) -> dict[str, Any]:
    # Quick mode checks the pipeline only: its neural numbers are not the defaults'.
    return {"max_iter": 5} if quick else {}


def _classic(make: Callable[[int, int], Any],
             binary: Callable[[int, int], Any]) -> Callable[[int, Any, bool], Any]:
    """The classic ``make`` (or on binary data its discrete counterpart ``binary``)."""
    def build(seed: int, X: Any, quick: bool) -> Any:
        if is_binary(X):
            return BinaryClassic(lambda: binary(seed, len(X)))
        if is_continuous(X):
            return StandardisedClassic(lambda: make(seed, len(X)))
        # Per group, the rows of the smallest level bound the grid.
        return MixedClassic(lambda: make(seed, int(X[_categorical_columns(X)[0]]
                                                   .value_counts().min())), seed)
    return build


def model_entries() -> list[Entry]:
    """The models compared; a new model is one more Entry."""
    return [
        Entry("KernelDensity (CV)", _classic(kde_cv, binary_kde_cv), skar=False),
        Entry("GaussianMixture (CV)", _classic(gmm_cv, bernoulli_mixture_cv), skar=False),
        Entry("GaussianMixture (CV, reg_covar)",
              _classic(gmm_cv_reg, bernoulli_mixture_cv_reg), skar=False),
        Entry("MADEDensity()", lambda s, X, q: MADEDensity(random_state=s, **_quick(q))),
        Entry("RNADEDensity()", lambda s, X, q: RNADEDensity(random_state=s, **_quick(q)),
              "continuous"),
        Entry("NADEDensity()", lambda s, X, q: NADEDensity(random_state=s, **_quick(q)),
              "discrete"),
        Entry("ARTransformerDensity()",
              lambda s, X, q: ARTransformerDensity(random_state=s, **_quick(q))),
        # Seed ensembles (K=5, DensityEnsemble's default): the members' seeds are drawn from
        # the cell's seed.
        Entry("DensityEnsemble(MADEDensity())",
              lambda s, X, q: DensityEnsemble(MADEDensity(**_quick(q)), random_state=s)),
        Entry("DensityEnsemble(RNADEDensity())",
              lambda s, X, q: DensityEnsemble(RNADEDensity(**_quick(q)), random_state=s),
              "continuous"),
        Entry("DensityEnsemble(ARTransformerDensity())",
              lambda s, X, q: DensityEnsemble(ARTransformerDensity(**_quick(q)),
                                              random_state=s)),
    ]


def _applies(entry: Entry, ds: str) -> bool:
    if ds == "speed":
        return entry.skar and entry.applies != "discrete"
    if entry.applies == "any":
        return True
    X = load_split(ds, 0).X_train
    return is_continuous(X) if entry.applies == "continuous" else is_discrete(X)


def _neural_record(model: Any) -> dict[str, Any]:
    h = getattr(model, "history_", None)
    if h is None:
        return {}
    valid = h["valid_nll"].to_numpy(dtype=float)
    rec = {"max_iter": model.max_iter,
           "validation_fraction": model.validation_fraction if model.early_stopping else None,
           "train_nll": [round(float(v), 4) for v in h["train_nll"]],
           "valid_nll": [None if np.isnan(v) else round(float(v), 4) for v in valid]}
    if np.isfinite(valid).any():
        rec["best_epoch"] = int(np.nanargmin(valid)) + 1
    return rec


def _rate(model: Any, X: Any, repeats: int = 1) -> tuple[np.ndarray, float]:
    """Scores and rows per second of ``model.score_samples(X)`` (best of ``repeats``)."""
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        scores = model.score_samples(X)
        best = min(best, time.perf_counter() - t)
    return scores, len(X) / best


def _cell(ds: str, entry: Entry, seed: int, quick: bool, threads: int, label: str,
          command: str) -> dict[str, Any]:
    """Fit one model on one split and score its test rows."""
    torch.set_num_threads(threads)
    if ds == "speed":
        return _speed_cell(entry, threads, label, command)
    split = load_split(ds, seed)
    model = entry.make(seed, split.X_train, quick)
    t, cpu = time.perf_counter(), time.process_time()
    model.fit(split.X_train)
    fit_s, fit_cpu_s = time.perf_counter() - t, time.process_time() - cpu
    scores, rate = _rate(model, split.X_test)
    cell = {"dataset": ds, "model": entry.name, "seed": seed,
            "test_ll": float(scores.mean()), "n_train": len(split.X_train),
            "n_test": len(split.X_test), "fit_s": fit_s, "fit_cpu_s": fit_cpu_s,
            "score_rows_per_s": rate,
            "n_iter": getattr(model, "n_iter_", None),
            "params": getattr(model, "best_params_", None), "true_ll": split.true_ll}
    cell.update(_neural_record(model))
    return _stamp(cell, label, command)


def _stamp(cell: dict[str, Any], label: str, command: str) -> dict[str, Any]:
    cell.update(label=label, command=command, load_average=os.getloadavg()[0],
                skar_source=str(Path(skar.__file__).parent), skar_commit=_commit(),
                threads=torch.get_num_threads())
    return cell


def multiply_adds_per_row(model: Any, X: np.ndarray) -> tuple[float, str]:
    """Multiply-adds per row of one ``score_samples`` pass, and how they were found.

    The matrix products that run are counted by :class:`~torch.utils.flop_counter.FlopCounterMode`.
    NADE/RNADE's tied pass forms its products elementwise (broadcast multiply and sum), which
    the counter does not see; for those networks the count comes from the shapes instead:
    ``n_members * (H * n_input_units + D * K_max * H)``, the hidden pre-activations (one column
    of ``W`` per position, accumulated) plus every position's output layer.
    """
    from torch.utils.flop_counter import FlopCounterMode

    network = model.net_.module_.network
    if hasattr(network, "W") and hasattr(network, "outputs"):
        per_member = network.W.numel() + network.outputs.weight.numel()
        return float(network.n_members * per_member), "shapes"
    counter = FlopCounterMode(display=False)
    with counter:
        model.score_samples(X)
    return counter.get_total_flops() / 2 / len(X), "counted"


def _speed_cell(entry: Entry, threads: int, label: str, command: str) -> dict[str, Any]:
    """Rows/s of GaussianMixture(10) and of one skar default, in the same process."""
    X = np.asarray(load_rnade_uci("red_wine"), dtype=np.float64)
    X = (X - X.mean(0)) / X.std(0)
    query = X[np.random.RandomState(0).randint(len(X), size=20_000)]
    gmm = GaussianMixture(n_components=10, covariance_type="full", random_state=0).fit(X)
    model = entry.make(0, X, False).set_params(max_iter=2).fit(X)
    model.score_samples(query[:100])  # warm-up
    gmm.score_samples(query[:100])
    # Alternate the two, best of 5 each, so that a change of load on the shared machine
    # does not fall on one of them only.
    gmm_rate = rate = 0.0
    for _ in range(5):
        gmm_rate = max(gmm_rate, _rate(gmm, query)[1])
        rate = max(rate, _rate(model, query)[1])
    D, K = X.shape[1], 10
    macs, how = multiply_adds_per_row(model, query[:2000])
    cell = {"dataset": "speed", "model": entry.name, "seed": 0, "n_features": D,
            "score_rows_per_s": rate, "gmm_rows_per_s": gmm_rate,
            "ratio_to_gmm": rate / gmm_rate,
            "multiply_adds_per_row": macs, "multiply_adds_from": how,
            "gmm_multiply_adds_per_row": K * D * (D + 1),
            "n_params": sum(p.numel() for p in model.net_.module_.parameters())}
    return _stamp(cell, label, command)


# --------------------------------------------------------------------------- run
def n_splits(ds: str, quick: bool, override: int | None) -> int:
    if override is not None and ds != "speed":
        return min(override, N_SPLITS.get(ds, 3))
    if quick:
        return 1 if ds != "mixture_1d" else 2
    return N_SPLITS.get(ds, 3)


def run(datasets: list[str], quick: bool, seeds: int | None, models: list[str] | None,
        cells_path: Path, jobs: int, threads: int, label: str, table_only: bool,
        command: str) -> list[dict[str, Any]]:
    entries = [e for e in model_entries() if models is None or e.name in models]
    done: list[dict[str, Any]] = []
    if cells_path.exists():
        # A line still being written by a running job is not a cell yet.
        done = [json.loads(line) for line in cells_path.read_text().splitlines()
                if line.endswith("}")]
    have = {(c["dataset"], c["model"], c["seed"]) for c in done}
    todo = [] if table_only else [
        (ds, e, s) for ds in datasets for s in range(n_splits(ds, quick, seeds))
        for e in entries if _applies(e, ds) and (ds, e.name, s) not in have]
    print(f"{len(have)} cells found in {cells_path.name}, {len(todo)} to run", flush=True)
    tasks = (delayed(_cell)(ds, e, s, quick, threads, label, command) for ds, e, s in todo)
    with cells_path.open("a") as sink:
        for cell in Parallel(n_jobs=jobs, return_as="generator")(tasks):
            sink.write(json.dumps(cell) + "\n")
            sink.flush()
            done.append(cell)
            ll = f"{cell['test_ll']:9.3f}" if "test_ll" in cell else "    speed"
            print(f"{cell['dataset']:18s} {cell['model']:24s} {cell['seed']} {ll} "
                  f"fit {cell.get('fit_s', 0):6.1f} s  {cell['score_rows_per_s']:10,.0f} rows/s "
                  f"n_iter {cell.get('n_iter')} {cell.get('params') or ''} "
                  f"load {cell['load_average']:.1f}", flush=True)
    names = [e.name for e in entries]
    return [c for c in done if c["dataset"] in datasets and c["model"] in names]


# --------------------------------------------------------------------------- table
def _fmt(v: float, nd: int = 3) -> str:
    return f"{v:.{nd}f}" if np.isfinite(v) else "—"


def table(cells: list[dict[str, Any]], datasets: list[str], quick: bool, seeds: int | None,
          label: str, command: str) -> str:
    entries = [e for e in model_entries() if any(c["model"] == e.name for c in cells)]
    ds_list = [ds for ds in datasets if any(c["dataset"] == ds for c in cells)]

    def of(ds: str, name: str) -> list[dict[str, Any]]:
        return sorted((c for c in cells if c["dataset"] == ds and c["model"] == name),
                      key=lambda c: c["seed"])

    made_by = sorted({c["command"] for c in cells})
    sources = sorted({c["skar_source"] for c in cells})
    loads = [c["load_average"] for c in cells]
    note = " (quick: 5 epochs for the neural models, not their defaults)" if quick else ""
    lines = [f"Label: **{label}**{note}.  ",
             f"Command: `{command}`  ",
             f"Cells made by: {', '.join(f'`{m}`' for m in made_by)}.  ",
             f"skar imported from: {', '.join(f'`{s}`' for s in sources)}.  ",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other work "
             f"(1-minute load average at the cells' ends: {min(loads):.1f} to {max(loads):.1f}; "
             "times are upper bounds, compare them only within this file), one torch thread, "
             f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
             f"Python {platform.python_version()}.", "",
             "Test log-likelihood per row (nats, higher is better): mean ± standard deviation "
             "over seeds or folds (ddof=1), the number of cells in brackets when it is short of "
             "the run's count. `Δ best classic`: the model's mean minus the better of KDE-CV "
             "and GMM-CV on that data set. Fit: mean seconds per cell; score: median rows/s; "
             "epochs: mean `n_iter_` (the neural models' epochs, GMM's EM iterations), and for "
             "the neural models the mean epoch early stopping restored.", ""]
    summary = ["| data set | n train | " + " | ".join(e.name for e in entries) + " |",
               "|---|---:|" + "---:|" * len(entries)]
    detail = []
    for ds in ds_list:
        if ds == "speed":
            continue
        want = n_splits(ds, quick, seeds)
        best_classic = max((np.mean([c["test_ll"] for c in of(ds, e.name)])
                            for e in entries if not e.skar and of(ds, e.name)),
                           default=math.nan)
        true = [c["true_ll"] for c in cells if c["dataset"] == ds and c.get("true_ll")]
        head = f"### {ds}"
        if true:
            head += (f" (true density on the same test draws: {np.mean(true):.3f}; "
                     f"negative entropy by quadrature: {mixture_1d_neg_entropy():.3f})")
        detail += [head, "", "| model | test LL | Δ best classic | per seed | fit s | "
                   "score rows/s | epochs (stop) | chosen |",
                   "|---|---:|---:|---|---:|---:|---:|---|"]
        row = []
        for e in entries:
            cs = of(ds, e.name)
            if not cs:
                row.append("")
                continue
            v = np.array([c["test_ll"] for c in cs])
            sd = v.std(ddof=1) if v.size > 1 else math.nan
            short = f" ({v.size}/{want})" if v.size < want else ""
            mean = f"{v.mean():.3f} ± {_fmt(sd)}{short}"
            delta = v.mean() - best_classic
            row.append(f"{v.mean():.3f}{short}" + ("" if not e.skar else f" ({delta:+.3f})"))
            iters = [c["n_iter"] for c in cs if c.get("n_iter") is not None]
            stops = [c["best_epoch"] for c in cs if c.get("best_epoch")]
            ep = (f"{np.mean(iters):.0f}" if iters else "—") + (
                f" ({np.mean(stops):.0f})" if stops else "")
            chosen = "; ".join(json.dumps(c["params"]) for c in cs if c.get("params"))
            detail.append(
                f"| {e.name} | {mean} | {delta:+.3f} | "
                + ", ".join(f"{x:.3f}" for x in v)
                + f" | {np.mean([c['fit_s'] for c in cs]):.1f} | "
                f"{np.median([c['score_rows_per_s'] for c in cs]):,.0f} | {ep} | {chosen} |")
        n_train = of(ds, entries[0].name) or [c for c in cells if c["dataset"] == ds]
        summary.append(f"| {ds} | {n_train[0]['n_train']} | " + " | ".join(row) + " |")
        detail.append("")
    speed = [c for c in cells if c["dataset"] == "speed"]
    speed_lines = []
    if speed:
        speed_lines = [
            "### Scoring speed: 11 continuous columns (red wine), 20,000 rows, one thread, "
            "one run", "",
            "| model | rows/s | GaussianMixture(10) rows/s (same process) | ratio | target | "
            "multiply-adds/row | GMM multiply-adds/row | parameters |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for c in speed:
            target = "1/15" if "Transformer" in c["model"] else "1/3"
            speed_lines.append(
                f"| {c['model']} | {c['score_rows_per_s']:,.0f} | {c['gmm_rows_per_s']:,.0f} | "
                f"1/{1 / c['ratio_to_gmm']:.1f} | {target} | "
                f"{c['multiply_adds_per_row']:,.0f} ({c.get('multiply_adds_from', 'counted')}) | "
                f"{c['gmm_multiply_adds_per_row']:,} | "
                f"{c['n_params']:,} |")
        speed_lines.append("")
    return "\n".join(
        lines + ["## Summary: mean test log-likelihood per row (in brackets for skar: Δ to "
                 "the better classic)", ""] + summary + [""] + speed_lines
        + targets(cells, ds_list, entries)
        + ["## Per data set", ""] + detail + diagnostics(cells, ds_list, entries))


def targets(cells: list[dict[str, Any]], ds_list: list[str], entries: list[Entry]) -> list[str]:
    """Issue 17's targets, checked on the cells there (partial data sets count as they are).

    - beat the better classic's mean on every data set; on the 1-D mixture, within 0.01 nats
      of KDE-CV or better on every seed;
    - seed-to-seed standard deviation at most KDE-CV's + 0.02 nats;
    - scoring at least 1/3 of GaussianMixture(10)'s rows/s (1/15 for the Transformer);
    - fit time on red wine at most 3x the GMM-CV's.
    """
    classics = [e.name for e in entries if not e.skar]
    quality = [ds for ds in ds_list if ds != "speed"]

    def vals(ds: str, name: str) -> dict[int, float]:
        return {c["seed"]: c["test_ll"] for c in cells
                if c["dataset"] == ds and c["model"] == name}

    out = ["## Issue 17's targets on these cells", "",
           "| model | beats the better classic (data sets) | shortfalls (nats) | 1-D seeds within "
           "0.01 of KDE-CV | std ≤ KDE-CV std + 0.02 | excesses (nats) | red-wine fit / GMM-CV "
           "fit | scoring vs GMM(10) (target) |", "|---|---:|---|---:|---:|---|---:|---:|"]
    for e in (e for e in entries if e.skar):
        won, short, ok_sd, excess = 0, [], 0, []
        n_ds = n_sd = 0
        one_d = "—"
        for ds in quality:
            own = vals(ds, e.name)
            best = max((np.mean(list(vals(ds, c).values())) for c in classics if vals(ds, c)),
                       default=math.nan)
            if not own or not np.isfinite(best):
                continue
            n_ds += 1
            if ds == "mixture_1d":
                kde = vals(ds, "KernelDensity (CV)")
                common = [s for s in own if s in kde]
                good = sum(own[s] >= kde[s] - 0.01 for s in common)
                one_d = f"{good}/{len(common)}"
                gap = min(own[s] - kde[s] for s in common) if common else math.nan
                if common and good == len(common):
                    won += 1
                else:
                    short.append(f"{ds} {gap:+.3f} (worst seed vs KDE-CV)")
            elif np.mean(list(own.values())) > best:
                won += 1
            else:
                short.append(f"{ds} {np.mean(list(own.values())) - best:+.3f}")
            kde_sd = list(vals(ds, "KernelDensity (CV)").values())
            if len(own) > 1 and len(kde_sd) > 1:
                n_sd += 1
                d = np.std(list(own.values()), ddof=1) - np.std(kde_sd, ddof=1) - 0.02
                if d <= 0:
                    ok_sd += 1
                else:
                    excess.append(f"{ds} {d:+.3f}")
        rw = [c["fit_s"] for c in cells if c["dataset"] == "red_wine" and c["model"] == e.name]
        fits = []
        for g in ("GaussianMixture (CV)", "GaussianMixture (CV, reg_covar)"):
            gf = [c["fit_s"] for c in cells if c["dataset"] == "red_wine" and c["model"] == g]
            if rw and gf:
                fits.append(f"{np.mean(rw) / np.mean(gf):.1f}x")
            # CPU seconds (one thread each): what the fits cost, whatever else ran meanwhile
            rc = [c["fit_cpu_s"] for c in cells if c["dataset"] == "red_wine"
                  and c["model"] == e.name and "fit_cpu_s" in c]
            gc = [c["fit_cpu_s"] for c in cells if c["dataset"] == "red_wine"
                  and c["model"] == g and "fit_cpu_s" in c]
            if rc and gc:
                fits.append(f"{np.mean(rc) / np.mean(gc):.1f}x CPU")
        sp = [c for c in cells if c["dataset"] == "speed" and c["model"] == e.name]
        target = "1/15" if "Transformer" in e.name else "1/3"
        speed = f"1/{1 / sp[0]['ratio_to_gmm']:.1f} ({target})" if sp else "—"
        out.append(f"| {e.name} | {won}/{n_ds} | {'; '.join(short) or '—'} | {one_d} | "
                   f"{ok_sd}/{n_sd} | {'; '.join(excess) or '—'} | "
                   f"{' / '.join(fits) or '—'} | {speed} |")
    return out + ["", "Red-wine fit ratios are against GaussianMixture (CV) / (CV, reg_covar): "
                  "wall times on the shared machine, and process CPU times (`CPU`) where the "
                  "cells recorded them.", ""]


def diagnostics(cells: list[dict[str, Any]], ds_list: list[str],
                entries: list[Entry]) -> list[str]:
    """How the neural models' training ended, from the recorded curves (means over cells).

    ``valid rows`` is the early-stopping hold-out (``validation_fraction`` of the training rows;
    0.1, the default, where a cell predates that record). ``curve noise`` is the median
    epoch-to-epoch change of the validation NLL: when it is as large as the gaps between the
    models, the hold-out cannot tell a better epoch from a worse one.
    """
    out = ["## Training diagnostics of the neural models", "",
           "Means over cells. Epochs: run / restored by early stopping / `max_iter`. NLLs in "
           "nats per row at the restored epoch; `test NLL − valid NLL` above 0 means the "
           "hold-out flattered the model. Curve noise: median |Δ valid NLL| between epochs.",
           "", "| data set | model | epochs | valid rows | train NLL | valid NLL | test NLL | "
           "test − valid | curve noise |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for ds in ds_list:
        for e in entries:
            cs = [c for c in cells if c["dataset"] == ds and c["model"] == e.name
                  and c.get("best_epoch")]
            if not cs:
                continue
            b = [c["best_epoch"] - 1 for c in cs]
            tr = np.mean([c["train_nll"][i] for c, i in zip(cs, b)])
            va = np.mean([c["valid_nll"][i] for c, i in zip(cs, b)])
            te = -np.mean([c["test_ll"] for c in cs])
            n_valid = np.mean([math.ceil(c["n_train"] * (c.get("validation_fraction") or 0.1))
                               for c in cs])
            noise = np.median(np.concatenate([np.abs(np.diff(
                [v for v in c["valid_nll"] if v is not None])) for c in cs]))
            out.append(f"| {ds} | {e.name} | {np.mean([c['n_iter'] for c in cs]):.0f} / "
                       f"{np.mean(b) + 1:.0f} / {cs[0]['max_iter']} | {n_valid:.0f} | "
                       f"{tr:.3f} | {va:.3f} | {te:.3f} | {te - va:+.3f} | {noise:.3f} |")
    return out + [""]


def plot(cells: list[dict[str, Any]], datasets: list[str], path: Path, label: str) -> None:
    """Each skar default's mean minus the better classic's, per data set."""
    entries = [e for e in model_entries() if e.skar and any(c["model"] == e.name for c in cells)]
    ds_list = [ds for ds in datasets if ds != "speed" and any(c["dataset"] == ds for c in cells)]
    if not ds_list:
        return
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(ds_list) * len(entries)), 4.5))
    width = 0.8 / max(1, len(entries))
    for j, e in enumerate(entries):
        xs, ys = [], []
        for i, ds in enumerate(ds_list):
            classic = [np.mean([c["test_ll"] for c in cells
                                if c["dataset"] == ds and c["model"] == m])
                       for m in ("KernelDensity (CV)", "GaussianMixture (CV)")
                       if any(c["dataset"] == ds and c["model"] == m for c in cells)]
            own = [c["test_ll"] for c in cells if c["dataset"] == ds and c["model"] == e.name]
            if classic and own:
                xs.append(i + j * width)
                ys.append(np.mean(own) - max(classic))
        ax.bar(xs, ys, width, label=e.name)
    ax.axhline(0, color="k", lw=0.8)
    # Gaps run from hundredths (the 1-D mixture) to nats (UCI): linear near 0, log beyond.
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xticks(np.arange(len(ds_list)) + 0.4 - width / 2, ds_list, rotation=30, ha="right")
    ax.set_ylabel("test LL − better of KDE-CV / GMM-CV (nats/row)")
    ax.set_title(f"skar defaults vs tuned classics ({label}); above 0 = the default wins")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--label", required=True, help='what is measured, e.g. "before" or "after"')
    p.add_argument("--quick", action="store_true",
                   help="one split per data set (two on the 1-D mixture), six data sets, "
                        "5 epochs: checks the pipeline, not the defaults")
    p.add_argument("--datasets", nargs="+", choices=DATASETS)
    p.add_argument("--seeds", type=int, help="at most this many seeds or folds per data set")
    p.add_argument("--models", nargs="+", help="only these entries (by name)")
    p.add_argument("--jobs", type=int, default=1, help="cells run in parallel (processes)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per job")
    p.add_argument("--out", default=None, help="results file stem in benchmarks/results/")
    p.add_argument("--fresh", action="store_true", help="ignore the cells of an earlier run")
    p.add_argument("--table-only", action="store_true",
                   help="run nothing: tabulate the cells already there")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    torch.set_num_threads(args.threads)
    datasets = args.datasets or (QUICK_DATASETS if args.quick else DATASETS)
    out = args.out or f"defaults_{args.label}" + ("_quick" if args.quick else "")
    RESULTS.mkdir(exist_ok=True)
    cells_path = RESULTS / f"{out}_cells.jsonl"
    if args.fresh and cells_path.exists():
        cells_path.unlink()
    command = ("python benchmarks/defaults/run.py " + shlex.join(sys.argv[1:])).strip()
    print(f"skar from {Path(skar.__file__).parent} (commit {_commit()}), load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    cells = run(datasets, args.quick, args.seeds, args.models, cells_path, args.jobs,
                args.threads, args.label, args.table_only, command)
    md = table(cells, datasets, args.quick, args.seeds, args.label, command)
    print(md)
    (RESULTS / f"{out}.md").write_text(
        f"# skar defaults vs tuned classics ({args.label})\n\n" + md + "\n")
    plot(cells, datasets, RESULTS / f"{out}.png", args.label)


_COMMIT: dict[str, str] = {}


def _commit() -> str:
    """The commit of the skar source imported (``+dirty`` if its tree has edits), looked up
    once per process.

    A plain function with a module-level cache, not ``functools.lru_cache``: the script runs
    as ``__main__``, so joblib's workers receive ``_cell`` and what it calls pickled by value,
    and an ``lru_cache`` wrapper is pickled by reference to ``__main__._commit``, which a
    worker's ``__main__`` does not have (``--jobs 2`` failed to unpickle it).
    """
    if "sha" not in _COMMIT:
        src = Path(skar.__file__).parent
        try:
            head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."],
                                   capture_output=True, text=True, check=True).stdout.strip()
            _COMMIT["sha"] = head + ("+dirty" if dirty else "")
        except (OSError, subprocess.CalledProcessError):
            _COMMIT["sha"] = "unknown"
    return _COMMIT["sha"]


if __name__ == "__main__":
    main()
