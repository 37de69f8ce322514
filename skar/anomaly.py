r"""Outlier detection on top of any density estimator, with calibrated p-values.

A row is an outlier when the fitted density gives it a low log density. On top of that plain
idea :class:`DensityOutlierDetector` adds three things:

**The API and signs of** :class:`~sklearn.ensemble.IsolationForest`: ``score_samples`` is the
log density (higher is more normal), ``decision_function = score_samples - offset_`` is negative
for outliers, ``predict`` gives ``+1`` for inliers and ``-1`` for outliers.

**Split-conformal p-values** (Vovk, Gammerman & Shafer 2005; Bates et al. 2023). A seeded
``calibration_fraction`` of the training rows is held out; the density is fitted on the rest and
scores the held-out rows, ``s_1, ..., s_n``. For a new row ``x`` with log density ``s(x)``,

.. math::  p(x) = \frac{1 + \#\{j : s_j \le s(x)\}}{n + 1}.

If ``x`` and the calibration rows are exchangeable (drawn from the same distribution as the
training data), ``P(p(x) <= a) <= a`` for every ``a``: thresholding ``p(x) <= a`` raises a
false alarm on at most a fraction ``a`` of normal rows, whatever the density model and however
badly it fits. A poor model makes the test less *powerful*, never less *valid*. Ties (discrete
data) make the p-value conservative, never anti-conservative.

**Per-column explanations.** An autoregressive density factorises as
``-log p(x) = sum_d -log p(x_d | x_<d)``, so :meth:`DensityOutlierDetector.explain` tells how
many nats of surprise each column adds, given the columns before it in the model's ordering.

**Rows the model cannot score.** A row whose log density is ``-inf`` (impossible under the
model, or beyond what it can represent: a value that overflows the network's float32) gets the
smallest p-value, ``1 / (n_cal + 1)``, and is always flagged. A NaN log density from the inner
estimator (it could not evaluate the row) counts as ``-inf``, with a warning naming the rows:
p-values and decisions are never NaN.

**False-discovery-rate control.** Flagging every row with ``p(x) <= a`` bounds the share of
*normal rows* flagged; among many test rows with few anomalies most flags can still be false.
With ``fdr=q`` the detector applies the Benjamini--Hochberg step-up procedure to the p-values of
the rows passed together to ``predict``: with ``p_(1) <= ... <= p_(m)`` sorted and
``k = max{i : p_(i) <= i q / m}``, the rows with ``p <= p_(k)`` are flagged. Bates et al. (2023)
show that conformal p-values sharing one calibration set are positively regression
dependent on a subset (PRDS) when the calibration rows and the normal test rows are i.i.d. (more
generally exchangeable) and the anomalies are independent of them; BH is then valid (Benjamini
& Yekutieli 2001), so

.. math::

   \mathrm{FDR} = E\left[\frac{\#\{\text{normal rows flagged}\}}
   {\max(1, \#\{\text{rows flagged}\})}\right] \le q\,\frac{m_0}{m} \le q,

with ``m_0`` the number of normal rows among the ``m``. The expectation is over the calibration
split and the test rows; a single batch can exceed ``q``.

**Rows with missing cells** (NaN). The detector passes them to the density, which must score a
row with missing cells (skar's tabular estimators return the log *marginal* density of the
observed cells; an imputing :class:`~sklearn.pipeline.Pipeline` works too). A marginal over
fewer cells lives on another scale than a full log density (in one dimension fewer it lacks a
conditional term of a few nats), so it cannot be ranked among complete calibration rows. Each
row ``x`` with missing set ``M`` is therefore calibrated against the calibration rows scored
with the *same* cells ``M`` masked: ``p(x) = (1 + #{j : s_M(x_j) <= s_M(x)}) / (n_M + 1)``,
over the ``n_M`` calibration rows whose own missing cells lie within ``M``. When cells are
missing completely at random (MCAR: which cells are missing is independent of the values),
the observed part of a normal row and the same part of those calibration rows are exchangeable,
so each p-value keeps its guarantee. Under MAR or MNAR missingness it does not. Rows with
different missing sets are calibrated against different scores, a case the PRDS proof does not
cover: each p-value stays valid, but for an FDR guarantee over rows of mixed patterns use
``fdr_method="by"`` (Benjamini--Yekutieli, valid under any dependence, at the price of dividing
the thresholds by ``1 + 1/2 + ... + 1/m``).

The density is *not* refitted on all the rows after calibration: the calibration rows must not
have been seen by the model, otherwise their scores are optimistic and the p-values lose their
guarantee. The price is that the density sees ``1 - calibration_fraction`` of the rows.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .base import check_passthrough_X, passthrough_tags

__all__ = ["DensityOutlierDetector"]


def _can_explain(self: DensityOutlierDetector) -> bool:
    """``available_if`` check: the inner estimator splits log p(x) into per-column terms."""
    est = getattr(self, "estimator_", self.estimator)
    if not hasattr(est, "score_samples_per_feature"):
        raise AttributeError(
            f"explain needs an estimator with score_samples_per_feature (skar's autoregressive "
            f"estimators); {type(est).__name__} has no per-column decomposition of its log "
            "density"
        )
    return True


def _declare_categories(X: Any) -> Any:
    """A DataFrame's object and string columns as ``category`` columns listing every value of
    ``X``, so the inner density learns the categories of the calibration rows too."""
    if not isinstance(X, pd.DataFrame):
        return X
    cols = [
        c for c in X.columns
        if pd.api.types.is_object_dtype(X[c].dtype) or pd.api.types.is_string_dtype(X[c].dtype)
    ]
    if not cols:
        return X
    X = X.copy()
    for c in cols:
        values = X[c]
        if values.isna().any():
            continue  # the inner estimator names the missing value
        try:
            X[c] = values.astype("category")
        except TypeError:  # unorderable mixed objects: leave the column to the estimator
            continue
    return X


@contextmanager
def _user_rows(rows: np.ndarray, step: str) -> Iterator[None]:
    """Re-raise an error that names ``row k`` of a subset of ``X`` with ``row rows[k]``, the
    position in the ``X`` passed to ``fit``, and say which step of ``fit`` failed."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        message = str(exc.args[0]) if exc.args else ""
        if not _ROW.search(message):
            raise  # no row named: the error is about the data as a whole
        message = _ROW.sub(lambda m: _map_row(m, rows), message)
        if "not seen in fit" in message and "calibration" in step:
            message += (
                "; that category occurs only in rows held out for calibration, so the density "
                "never saw it: declare every category up front (a pandas 'category' column, or "
                "a DataFrame whose string columns the detector then declares for you), or "
                "change random_state or calibration_fraction"
            )
        try:
            mapped = type(exc)(
                f"{message} (while {step}; row numbers are positions in the X passed to fit)"
            )
        except Exception:  # an exception type with another constructor: keep it as it is
            raise exc from None
        raise mapped from None


_ROW = re.compile(r"\brow (\d+)")


def _map_row(match: re.Match, rows: np.ndarray) -> str:
    k = int(match.group(1))
    return f"row {rows[k]}" if 0 <= k < len(rows) else match.group(0)


def _nan_as_minus_inf(scores: np.ndarray, method: str) -> np.ndarray:
    """NaN log densities become ``-inf``, with a warning naming the first such row.

    NaN means the inner estimator could not evaluate the row (typically a value beyond what
    its float32 network represents); calling it impossible is the one reading under which the
    row is flagged, which is what a user hunting outliers needs, and p-values stay defined.
    """
    bad = np.isnan(scores)
    if not bad.any():
        return scores
    rows = np.unique(np.nonzero(bad)[0])
    warnings.warn(
        f"estimator_.{method} returned NaN for {rows.size} row(s) (first: row {rows[0]}); "
        "they count as log density -inf, i.e. outliers with the smallest p-value",
        UserWarning,
        stacklevel=3,
    )
    scores = scores.copy()
    scores[bad] = -np.inf
    return scores


def _missing_cells(X: Any) -> np.ndarray:
    """The missing cells (NaN, None, ``pd.NA``) of checked rows, as an (n_samples, n_features)
    boolean array."""
    if isinstance(X, pd.DataFrame):
        return X.isna().to_numpy()
    X = np.asarray(X)
    if X.dtype.kind in "fc":
        return np.isnan(X)
    if X.dtype.kind == "O":
        return np.asarray(pd.isna(X), dtype=bool)
    return np.zeros(X.shape, dtype=bool)


def _mask_cells(X: Any, pattern: np.ndarray) -> Any:
    """A copy of the rows ``X`` with the columns where ``pattern`` is True made missing (NaN)."""
    if isinstance(X, pd.DataFrame):
        cond = pd.DataFrame(np.broadcast_to(pattern, X.shape), index=X.index, columns=X.columns)
        return X.mask(cond)
    X = np.asarray(X)
    if X.dtype.kind not in "fcO":  # integers and booleans cannot hold NaN
        X = X.astype(np.float64)
    X = X.copy()
    X[:, pattern] = np.nan
    return X


def _stack(pieces: list[Any]) -> Any:
    if isinstance(pieces[0], pd.DataFrame):
        return pd.concat(pieces, ignore_index=True)
    return np.concatenate(pieces)


def _percentile(scores: np.ndarray, q: float) -> float:
    """``np.percentile``, defined when scores hold ``-inf`` (interpolating to it gives NaN)."""
    value = float(np.percentile(scores, q))
    if np.isnan(value):
        value = float(np.percentile(scores, q, method="lower"))
    return value


class DensityOutlierDetector(OutlierMixin, BaseEstimator):
    r"""Outlier detection with any density estimator, conformal p-values and explanations.

    Wraps an estimator with ``fit`` and ``score_samples`` (every skar estimator,
    :class:`~sklearn.neighbors.KernelDensity`, :class:`~sklearn.mixture.GaussianMixture`) into an
    outlier detector with the API and sign conventions of
    :class:`~sklearn.ensemble.IsolationForest` and
    :class:`~sklearn.neighbors.LocalOutlierFactor` with ``novelty=True``. Fit it on normal rows,
    then score new rows.

    ``fit`` holds out a seeded ``calibration_fraction`` of the rows, fits a clone of
    ``estimator`` on the others, and keeps the log densities of the held-out rows. A failed
    ``fit`` (bad input, an error of the inner estimator, ``KeyboardInterrupt``) leaves a
    previously fitted detector exactly as it was, and an error about a row names its position
    in the ``X`` passed to ``fit``, not in the internal subset. They give the
    split-conformal p-value of a row ``x`` with log density ``s(x)``,

    .. math::  p(x) = \frac{1 + \#\{j : s_j \le s(x)\}}{n_{cal} + 1},

    the chance that a normal row scores as low as ``x`` or lower. For rows exchangeable with the
    training rows, ``P(p(x) <= a) <= a``: flagging ``p(x) <= a`` raises false alarms on at most
    a fraction ``a`` of normal rows, whatever the density model.

    Parameters
    ----------
    estimator : estimator object
        A density estimator with ``fit(X)`` and ``score_samples(X)`` (the log density). It is
        cloned in ``fit``; the fitted clone is ``estimator_``.
    contamination : "auto" or float, default="auto"
        How ``offset_`` (the threshold of ``predict``) is chosen.

        - ``"auto"``: a row is an outlier when its conformal p-value is at most
          ``false_alarm_rate``, so at most that fraction of normal rows is flagged. Use it when
          the training rows are clean (novelty detection).
        - a float in (0, 0.5]: the expected share of outliers in the training rows;
          ``offset_`` is that quantile of the training rows' log densities, as in
          :class:`~sklearn.ensemble.IsolationForest`, so ``predict`` flags that share of the
          training rows. The rows the density was fitted on score higher than new rows do, so
          on new normal rows somewhat more than ``contamination`` are flagged.
    false_alarm_rate : float, default=0.05
        With ``contamination="auto"``, the p-value at or below which a row is an outlier: the
        largest tolerated share of normal rows flagged. Ignored for a float ``contamination``
        (the p-values from :meth:`pvalues` are calibrated either way). With ``n`` calibration
        rows the attainable rates are multiples of ``1 / (n + 1)``; below ``1 / (n + 1)``
        nothing can be flagged.
    calibration_fraction : float, default=0.2
        Share of the training rows held out to calibrate the p-values (at least one row, and at
        least one row left to fit the density).
    fdr : float in (0, 1) or None, default=None
        When set, :meth:`predict` controls the false discovery rate among the rows passed to it
        at this level: it flags the Benjamini--Hochberg rejections, the rows whose
        :meth:`adjusted_pvalues` are at most ``fdr`` (see Notes for the guarantee). ``predict``
        then no longer follows the sign of :meth:`decision_function`, and the same row may be
        flagged in one batch and not in another. When None, ``predict`` flags each row on its
        own, by ``offset_`` (``contamination`` and ``false_alarm_rate``). The smallest p-value
        is ``1 / (n_cal + 1)``, so ``k`` rows of a batch of ``m`` can only be flagged when
        ``1 / (n_cal + 1) <= k fdr / m`` (divided by ``1 + 1/2 + ... + 1/m`` for ``"by"``):
        hold out enough calibration rows for the batch sizes you test.
    fdr_method : {"bh", "by"}, default="bh"
        The step-up procedure of ``fdr`` and :meth:`adjusted_pvalues`: ``"bh"``
        (Benjamini--Hochberg; valid for conformal p-values sharing one calibration set) or
        ``"by"`` (Benjamini--Yekutieli; valid under any dependence, e.g. among rows with
        different missing cells, and more conservative by a factor ``1 + 1/2 + ... + 1/m``).
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of the calibration rows. The inner estimator keeps its own
        ``random_state``.

    Attributes
    ----------
    estimator_ : estimator object
        The density, fitted on the rows not held out for calibration.
    offset_ : float
        ``decision_function(X) = score_samples(X) - offset_``; rows whose log density is below
        ``offset_`` are outliers. ``-inf`` when nothing can be flagged (too few calibration rows
        for ``false_alarm_rate``).
    calibration_scores_ : ndarray of shape (n_calibration,)
        The held-out rows' log densities, sorted ascending. Rows with missing cells are
        calibrated against these rows scored with the same cells masked, computed when needed.
    calibration_indices_ : ndarray of shape (n_calibration,)
        Positions, in the training data, of the rows held out for calibration.
    contribution_baseline_ : ndarray of shape (`n_features_in_`,) or None
        Median over the calibration rows of each column's ``-log p(x_d | x_<d)``, the
        reference of :meth:`explain`; None when the estimator cannot split its log density by
        column.
    n_features_in_ : int
        Number of columns seen in fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when X was a DataFrame with string column names.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Outlier detection by random partitioning.
    sklearn.neighbors.LocalOutlierFactor : Outlier detection by local density ratios.
    skar.MADEDensity : An autoregressive density for mixed-type tables.

    Notes
    -----
    The density is not refitted on all rows after calibration: calibration scores must come from
    rows the model has not seen, or the p-values lose their guarantee.

    A category that occurs only in the held-out calibration rows is *learned*: the object and
    string columns of a DataFrame are handed to the inner estimator as pandas ``category``
    columns whose categories are those of all the rows passed to ``fit`` (so a skar density
    knows every category, and gives the rare one the small probability it learned for an
    unseen code). For other inputs (a numpy array whose column the inner estimator treats as
    categorical) the error says that the category occurs only in calibration rows, and how to
    declare it.

    Log densities of ``-inf`` (and NaN, which counts as ``-inf``) are the smallest possible
    score: such a row gets the smallest p-value, and ``predict`` flags it even when
    ``offset_`` is ``-inf``. Rows the model was fitted
    on tend to score higher than fresh rows, so with a float ``contamination`` the threshold
    (taken over all training rows, as scikit-learn's detectors do) flags somewhat more than
    ``contamination`` of fresh normal rows; the ``"auto"`` threshold has no such bias.

    **False discovery rate.** With ``fdr=q``, ``predict(X)`` sorts the ``m`` p-values of the
    rows of ``X``, finds ``k = max{i : p_(i) <= i q / m}`` and flags the rows with
    ``p <= p_(k)`` (none when there is no such ``i``). Conformal p-values that share one
    calibration set are PRDS when the calibration rows and the normal rows of ``X`` are i.i.d.
    (exchangeable) and the anomalies are independent of them (Bates et al. 2023), so the
    expected share of normal rows among the flagged ones is at most ``q m_0 / m <= q``, with
    ``m_0`` the number of normal rows in ``X``. The expectation runs over the calibration split
    and the test rows: a single batch may exceed ``q``. Rows of ``X`` the density was fitted on
    (``fit_predict``) are not exchangeable with the calibration rows, and the bound does not
    apply to them.

    **Rows with missing cells.** ``X`` may hold NaN (or None / ``pd.NA`` in a DataFrame) when
    the inner estimator scores such rows: skar's tabular estimators return the log marginal
    density of the observed cells, and an imputing Pipeline scores the completed row. An
    estimator that cannot (KernelDensity, GaussianMixture) gets an error naming the first
    missing cell. ``score_samples(X, return_n_observed=True)`` also returns how many cells
    each score used. A row with missing set ``M`` is calibrated against the calibration rows
    scored with the cells ``M`` masked too (only those whose own missing cells lie within
    ``M``), so its p-value is valid when cells are missing completely at random; its
    ``decision_function`` subtracts the threshold computed the same way from those scores
    (the conformal threshold for ``contamination="auto"``, the ``contamination`` quantile
    otherwise) rather than ``offset_``, and ``predict`` agrees with it. Each distinct missing
    pattern in ``X`` costs one scoring pass over the calibration rows.

    References
    ----------
    V. Vovk, A. Gammerman and G. Shafer. Algorithmic Learning in a Random World. Springer, 2005.
    S. Bates, E. Candes, L. Lei, Y. Romano and M. Sesia. Testing for outliers with conformal
    p-values. Annals of Statistics 51(1), 2023.
    Y. Benjamini and Y. Hochberg. Controlling the false discovery rate. Journal of the Royal
    Statistical Society B 57(1), 1995.
    Y. Benjamini and D. Yekutieli. The control of the false discovery rate in multiple testing
    under dependency. Annals of Statistics 29(4), 2001.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import KernelDensity
    >>> from skar.anomaly import DensityOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(500, 2))
    >>> det = DensityOutlierDetector(KernelDensity(bandwidth=0.5), random_state=0).fit(X)
    >>> det.predict([[0.0, 0.0], [6.0, 6.0]])
    array([ 1, -1])
    >>> bool(det.decision_function([[6.0, 6.0]])[0] < 0)
    True
    >>> det.pvalues([[0.0, 0.0], [6.0, 6.0]]).round(3)
    array([0.99, 0.01])

    With a skar estimator, :meth:`explain` says which columns made a row unlikely:

    >>> from skar import MADEDensity
    >>> made = MADEDensity(hidden_layer_sizes=(16,), max_iter=20, random_state=0)
    >>> det = DensityOutlierDetector(made, random_state=0).fit(X)
    >>> det.explain([[0.0, 8.0]])["feature"].tolist()
    ['x1', 'x0']
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "score_samples"])],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "false_alarm_rate": [Interval(Real, 0, 1, closed="neither")],
        "calibration_fraction": [Interval(Real, 0, 1, closed="neither")],
        "fdr": [Interval(Real, 0, 1, closed="neither"), None],
        "fdr_method": [StrOptions({"bh", "by"})],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator: Any,
        *,
        contamination: str | float = "auto",
        false_alarm_rate: float = 0.05,
        calibration_fraction: float = 0.2,
        fdr: float | None = None,
        fdr_method: str = "bh",
        random_state: Any = None,
    ) -> None:
        self.estimator = estimator
        self.contamination = contamination
        self.false_alarm_rate = false_alarm_rate
        self.calibration_fraction = calibration_fraction
        self.fdr = fdr
        self.fdr_method = fdr_method
        self.random_state = random_state

    # ------------------------------------------------------------------ input checks
    def _check_X(self, X: Any, *, reset: bool) -> Any:
        return check_passthrough_X(self, X, reset=reset)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: Any = None) -> DensityOutlierDetector:
        """Fit the density on part of ``X`` and calibrate on the rest.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training rows, assumed normal (or contaminated by about ``contamination``). Mixed
            pandas frames go to the inner estimator as they are.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted detector.
        """
        saved = dict(self.__dict__)
        try:
            self._fit(X)
        except BaseException:
            # Validate before changing anything: a failed fit (bad rows, a new width the inner
            # estimator rejects, Ctrl-C) leaves a previously fitted detector as it was.
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        return self

    def _fit(self, X: Any) -> None:
        X = self._check_X(X, reset=True)
        n = X.shape[0]
        n_cal = math.ceil(n * self.calibration_fraction)
        if n - n_cal < 1:
            raise ValueError(
                f"calibration_fraction={self.calibration_fraction} of n_samples = {n} leaves "
                f"no row to fit the density on ({n} sample(s)); pass more rows or lower "
                "calibration_fraction"
            )
        X = _declare_categories(X)
        perm = check_random_state(self.random_state).permutation(n)
        cal, rest = np.sort(perm[:n_cal]), np.sort(perm[n_cal:])
        X_cal = _safe_indexing(X, cal)
        with _user_rows(rest, "fitting the density on the rows not held out for calibration"):
            estimator = clone(self.estimator).fit(_safe_indexing(X, rest))

        cal_missing = _missing_cells(X_cal)
        complete = ~cal_missing.any(axis=1)
        if self.contamination == "auto":
            with _user_rows(cal, "scoring the rows held out for calibration"):
                cal_scores = self._scores(estimator, X_cal)
            # offset_ is the threshold of complete rows: rows with missing cells have their own
            # (see _groups), so calibration rows with missing cells do not enter it.
            offset = self._conformal_offset(np.sort(cal_scores[complete]))
        else:
            with _user_rows(np.arange(n), "scoring the training rows"):
                train_scores = self._scores(estimator, X)
            cal_scores = train_scores[cal]
            offset = _percentile(train_scores, 100.0 * self.contamination)

        if np.isneginf(cal_scores).any():
            # An estimator with handle_unknown="zero_probability" (the default) scores a
            # category seen only in calibration rows -inf instead of raising: calibration
            # stays valid (such a row is below every score), but the user should know.
            row = int(cal[np.flatnonzero(np.isneginf(cal_scores))[0]])
            warnings.warn(
                f"row {row} of X, held out for calibration, has probability zero under the "
                "density fitted on the other rows (score -inf): a category or value that "
                "occurs only in rows held out for calibration? Declare every category up front "
                "(pandas category dtype), or pass handle_unknown='error' to the estimator to "
                "have it named",
                UserWarning,
                stacklevel=3,
            )

        with _user_rows(cal, "scoring the rows held out for calibration"):
            baseline = self._contribution_baseline(estimator, X_cal)
        self.estimator_ = estimator
        # Kept to calibrate rows with missing cells against the same cells masked here.
        self._calibration_X = X_cal
        self._calibration_missing = cal_missing
        self.calibration_indices_ = cal
        self.calibration_scores_ = np.sort(cal_scores)
        self.offset_ = offset
        self.contribution_baseline_ = baseline

    @staticmethod
    def _scores(estimator: Any, X: Any) -> np.ndarray:
        """The inner log densities, NaN (a row the estimator could not evaluate) as -inf."""
        return _nan_as_minus_inf(np.asarray(estimator.score_samples(X), dtype=np.float64),
                                 "score_samples")

    def _conformal_offset(self, sorted_cal: np.ndarray, warn: bool = True) -> float:
        """The log density below which ``p(x) <= false_alarm_rate``.

        With sorted calibration scores ``c_(1) <= ... <= c_(n)``, a row with ``k`` calibration
        scores at or below its own has ``p = (1 + k) / (n + 1)``; ``p <= a`` iff
        ``k <= K - 1`` with ``K = floor(a (n + 1))``, iff ``s(x) < c_(K)``.
        """
        n = sorted_cal.shape[0]
        # The small epsilon keeps a = k / (n + 1), which is meant exactly, from flooring to k - 1.
        k = math.floor(self.false_alarm_rate * (n + 1) + 1e-9)
        if k < 1:
            if not warn:
                return -np.inf
            warnings.warn(
                f"With {n} calibration rows the smallest p-value is 1/{n + 1} = "
                f"{1 / (n + 1):.3g} > false_alarm_rate={self.false_alarm_rate}, so predict flags "
                f"nothing; hold out at least {math.ceil(1 / self.false_alarm_rate) - 1} "
                "calibration rows (more rows or a larger calibration_fraction)",
                UserWarning,
                stacklevel=3,
            )
            return -np.inf
        return float(sorted_cal[k - 1])

    @staticmethod
    def _contribution_baseline(estimator: Any, X_cal: Any) -> np.ndarray | None:
        if not hasattr(estimator, "score_samples_per_feature"):
            return None
        try:
            per_feature = estimator.score_samples_per_feature(X_cal)
        except ValueError:  # an ensemble of orderings: no per-column decomposition
            return None
        per_feature = _nan_as_minus_inf(np.asarray(per_feature, dtype=np.float64),
                                        "score_samples_per_feature")
        return np.median(-per_feature, axis=0)

    # ------------------------------------------------------------------ scoring
    def _score_rows(self, X: Any, missing: np.ndarray) -> np.ndarray:
        """``_scores`` of checked rows; an estimator that rejects their missing cells gets an
        error naming the first such cell and what to do."""
        try:
            return self._scores(self.estimator_, X)
        except (ValueError, TypeError) as exc:
            message = str(exc.args[0]) if exc.args else ""
            if not missing.any() or not re.search(r"nan|missing", message, re.IGNORECASE):
                raise
            row, col = (int(i[0]) for i in np.nonzero(missing))
            if hasattr(self, "feature_names_in_"):
                column = f"column {self.feature_names_in_[col]!r}"
            else:
                column = f"column {col}"
            name = type(self.estimator_).__name__
            raise ValueError(
                f"{column} holds NaN (a missing cell) at row {row}, and {name} cannot score "
                f"rows with missing cells ({message.splitlines()[0]}). Use an estimator that "
                "scores the observed cells (skar's tabular estimators: the log marginal "
                "density), impute in a pipeline, e.g. make_pipeline(SimpleImputer(), "
                f"{name}()), or drop the rows with missing cells"
            ) from exc

    def _masked_calibration_scores(self, patterns: np.ndarray) -> list[np.ndarray]:
        """For each missing pattern ``M`` (a row of ``patterns``), the sorted log densities of
        the calibration rows whose missing cells lie within ``M``, with the cells ``M`` masked.

        Under MCAR these are exchangeable with a normal row missing ``M``. The masked copies of
        several patterns are scored in one call, in chunks that keep memory bounded.
        """
        X_cal, cal_missing = self._calibration_X, self._calibration_missing
        d = cal_missing.shape[1]
        chunk_rows = max(1, 2_000_000 // max(d, 1))
        out: list[np.ndarray] = [np.empty(0)] * len(patterns)
        pieces: list[Any] = []
        owners: list[tuple[int, int]] = []  # (pattern, number of rows) of every piece

        def flush() -> None:
            if not pieces:
                return
            stacked = _stack(pieces)
            scores = self._score_rows(stacked, _missing_cells(stacked))
            start = 0
            for k, size in owners:
                out[k] = np.sort(scores[start : start + size])
                start += size
            pieces.clear()
            owners.clear()

        queued = 0
        for k, pattern in enumerate(patterns):
            if not pattern.any() and not cal_missing.any():
                continue  # complete rows use calibration_scores_ (see _groups)
            eligible = np.flatnonzero(~(cal_missing & ~pattern).any(axis=1))
            if eligible.size == 0:
                continue  # no calibration row observes every cell x does: p = 1
            pieces.append(_mask_cells(_safe_indexing(X_cal, eligible), pattern))
            owners.append((k, eligible.size))
            queued += eligible.size
            if queued >= chunk_rows:
                flush()
                queued = 0
        flush()
        return out

    def _groups(self, missing: np.ndarray) -> list[tuple[Any, np.ndarray, float]]:
        """``(rows, sorted calibration scores, threshold)`` for every missing pattern of X.

        Complete rows use ``calibration_scores_`` and ``offset_`` when the calibration rows are
        complete; any other pattern its masked calibration scores and the threshold computed
        from them as ``offset_`` is from the complete ones.
        """
        if not missing.any() and not self._calibration_missing.any():
            return [(slice(None), self.calibration_scores_, self.offset_)]
        patterns, inverse = np.unique(missing, axis=0, return_inverse=True)
        inverse = np.asarray(inverse).ravel()
        cal_sets = self._masked_calibration_scores(patterns)
        groups = []
        complete_cal = not self._calibration_missing.any()
        for k, cal_scores in enumerate(cal_sets):
            if complete_cal and not patterns[k].any():
                groups.append((np.flatnonzero(inverse == k), self.calibration_scores_,
                               self.offset_))
                continue
            if self.contamination == "auto":
                offset = self._conformal_offset(cal_scores, warn=False)
            elif cal_scores.size:
                offset = _percentile(cal_scores, 100.0 * self.contamination)
            else:
                offset = -np.inf
            groups.append((np.flatnonzero(inverse == k), cal_scores, offset))
        return groups

    def _checked(self, X: Any) -> tuple[Any, np.ndarray, np.ndarray]:
        """Checked rows, their missing cells and their log densities."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        missing = _missing_cells(X)
        return X, missing, self._score_rows(X, missing)

    def score_samples(self, X: Any, *, return_n_observed: bool = False
                      ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Log density of every row under the fitted estimator (higher is more normal).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows may hold missing cells (NaN) when the inner estimator scores them.
        return_n_observed : bool, default=False
            Also return how many cells of each row the score used.

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64
            ``estimator_.score_samples(X)``: the opposite of an anomaly score, as in
            :meth:`sklearn.ensemble.IsolationForest.score_samples`. For a row with missing
            cells, whatever the inner estimator returns for it: with a skar estimator the log
            marginal density of the observed cells, which is on another scale than a complete
            row's log density (compare :meth:`pvalues`, which are calibrated per pattern).
        n_observed : ndarray of shape (n_samples,), int
            The number of observed (non-missing) cells of each row, the cells a skar
            estimator's marginal density is over. Only when ``return_n_observed`` is True.
        """
        _, missing, scores = self._checked(X)
        if return_n_observed:
            return scores, (~missing).sum(axis=1)
        return scores

    def decision_function(self, X: Any) -> np.ndarray:
        """Shifted log density: negative for outliers, non-negative for inliers.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        decision : ndarray of shape (n_samples,), float64
            ``score_samples(X) - offset_`` for complete rows; ``-inf`` for a row of log
            density ``-inf``, whatever ``offset_`` (such a row is always an outlier). A row
            with missing cells has its score minus the threshold computed like ``offset_``
            from the calibration rows with the same cells masked.
        """
        _, missing, scores = self._checked(X)
        decision = np.empty_like(scores)
        with np.errstate(invalid="ignore"):
            for rows, _, offset in self._groups(missing):
                decision[rows] = scores[rows] - offset
        # -inf - (-inf) is NaN: a row the model calls impossible stays the lowest of all.
        decision[scores == -np.inf] = -np.inf
        return decision

    def predict(self, X: Any) -> np.ndarray:
        """Label every row an inlier (+1) or an outlier (-1).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), int
            With ``fdr=None``: ``-1`` where ``decision_function(X) < 0``, else ``+1``; with
            ``contamination="auto"`` that is ``-1`` exactly where
            ``pvalues(X) <= false_alarm_rate``. With ``fdr`` set: ``-1`` for the rows the
            Benjamini--Hochberg (or Benjamini--Yekutieli) procedure rejects at level ``fdr``
            among the rows of ``X``, i.e. where ``adjusted_pvalues(X) <= fdr``.
        """
        if self.fdr is not None:
            adjusted = self.adjusted_pvalues(X)
            labels = np.ones(adjusted.shape[0], dtype=int)
            # Conformal p-values are multiples of 1 / (n + 1): a row meant to sit exactly on
            # the BH line i q / m must not fall off it by a rounding error of m p / i.
            labels[adjusted <= self.fdr * (1 + 1e-9)] = -1
            return labels
        decision = self.decision_function(X)
        labels = np.ones(decision.shape[0], dtype=int)
        labels[decision < 0] = -1
        return labels

    def pvalues(self, X: Any) -> np.ndarray:
        r"""Split-conformal p-values: how unusually low each row's log density is.

        .. math::  p(x) = \frac{1 + \#\{j : s_j \le s(x)\}}{n_{cal} + 1}

        where ``s_j`` are the log densities of the ``n_cal`` held-out calibration rows. For a
        row with missing cells ``M``, ``s`` is the score with ``M`` missing and the ``s_j`` are
        those of the calibration rows with ``M`` masked too (``n_cal`` counting those whose
        own missing cells lie within ``M``).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        pvalues : ndarray of shape (n_samples,), float64
            In ``[1 / (n_cal + 1), 1]``. For a normal row (exchangeable with the training
            rows; with missing cells, missing completely at random) ``P(p <= a) <= a``: small
            values are evidence of an outlier. To flag rows while controlling the false
            discovery rate over many rows, use ``fdr`` or :meth:`adjusted_pvalues`.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.mixture import GaussianMixture
        >>> from skar.anomaly import DensityOutlierDetector
        >>> rng = np.random.RandomState(0)
        >>> det = DensityOutlierDetector(GaussianMixture(), calibration_fraction=0.5,
        ...                              random_state=0).fit(rng.normal(size=(2000, 1)))
        >>> det.pvalues([[0.0], [1.96], [4.0]]).round(2)  # about P(|Z| >= |x|)
        array([0.99, 0.04, 0.  ])
        >>> p = det.pvalues(rng.normal(size=(5000, 1)))  # fresh normal rows
        >>> bool(abs((p <= 0.1).mean() - 0.1) < 0.02)
        True
        """
        _, missing, scores = self._checked(X)
        p = np.empty_like(scores)
        for rows, cal_scores, _ in self._groups(missing):
            below = np.searchsorted(cal_scores, scores[rows], side="right")
            p[rows] = (1.0 + below) / (cal_scores.shape[0] + 1.0)
        return p

    def adjusted_pvalues(self, X: Any) -> np.ndarray:
        r"""Benjamini--Hochberg adjusted p-values of the rows of ``X``, taken together.

        With the ``m`` p-values of :meth:`pvalues` sorted, ``p_(1) <= ... <= p_(m)``,

        .. math::

           \tilde p_{(i)} = \min_{j \ge i} \min\left(1, \frac{m\, c_m\, p_{(j)}}{j}\right),

        with ``c_m = 1`` for ``fdr_method="bh"`` and ``c_m = \sum_{k \le m} 1/k`` for
        ``"by"`` (:func:`scipy.stats.false_discovery_control`). The rows with
        ``adjusted <= q`` are exactly the procedure's rejections at level ``q``: for every
        ``q`` at once, the expected share of normal rows among them is at most
        ``q m_0 / m`` (see the class Notes for the assumptions).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The batch of rows tested together: the adjustment depends on every row of it.

        Returns
        -------
        adjusted : ndarray of shape (n_samples,), float64
            In ``(0, 1]``, at least :meth:`pvalues`.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.mixture import GaussianMixture
        >>> from skar.anomaly import DensityOutlierDetector
        >>> rng = np.random.RandomState(0)
        >>> det = DensityOutlierDetector(GaussianMixture(), fdr=0.1, calibration_fraction=0.5,
        ...                              random_state=0).fit(rng.normal(size=(2000, 2)))
        >>> X = np.vstack([rng.normal(size=(95, 2)), rng.normal(6.0, 1.0, size=(5, 2))])
        >>> np.flatnonzero(det.predict(X) == -1)  # at FDR 10%: the 5 anomalies and 1 normal row
        array([41, 95, 96, 97, 98, 99])
        >>> int((det.pvalues(X) <= 0.05).sum())  # row by row at 5%: 7 normal rows flagged too
        12
        >>> det.adjusted_pvalues(X)[[41, 95]].round(3)
        array([0.067, 0.02 ])
        """
        return false_discovery_control(self.pvalues(X), method=self.fdr_method)

    # ------------------------------------------------------------------ explanations
    @available_if(_can_explain)
    def explain(self, X: Any, *, n_top: int | None = None, rank_by: str = "excess"
                ) -> pd.DataFrame:
        r"""Which columns made each row unlikely: ``-log p(x_d | x_<d)`` per column, ranked.

        An autoregressive density factorises, so a row's surprise splits exactly into columns,

        .. math::  -\log p(x) = \sum_d -\log p(x_d \mid x_{<d}),

        where ``x_<d`` are the columns before ``d`` in the model's ordering. A column that is
        improbable *given the columns before it* contributes many nats. (So with two strongly
        related columns the blame for a broken relation falls on the later one.)

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        n_top : int or None, default=None
            Keep only the ``n_top`` highest-ranked columns of each row (all when None).
        rank_by : {"excess", "contribution"}, default="excess"
            ``"excess"`` ranks by the contribution minus that column's median contribution on
            the calibration rows: how much *more* surprising the column is than usual. It does
            not depend on the units of the columns (rescaling a continuous column by ``c``
            adds ``log c`` to its every contribution). ``"contribution"`` ranks by the raw
            nats, which favours columns measured on a coarse scale.

        Returns
        -------
        explanation : DataFrame
            One row per (row of ``X``, column), indexed by ``row`` (the index of ``X`` for a
            DataFrame, else the position) and ``rank`` (1 = most to blame), with columns

            - ``feature``: the column name (``x0``, ``x1``, ... for arrays);
            - ``value``: the row's value in that column;
            - ``contribution``: ``-log p(x_d | x_<d)`` in nats; over all columns of a row they
              sum to ``-score_samples``; ``+inf`` for the column whose value the model cannot
              represent (e.g. overflows float32), which then ranks first; NaN for a missing
              cell (it ranks last), the others then being conditionals given the observed
              columns before them;
            - ``excess``: ``contribution`` minus ``contribution_baseline_``.

        Raises
        ------
        AttributeError
            If the estimator has no ``score_samples_per_feature`` (KernelDensity,
            GaussianMixture): ``hasattr(detector, "explain")`` is then False.
        ValueError
            If the estimator cannot split its density by column (an ensemble of orderings or
            masks, e.g. ``MADEDensity(n_orderings=8)``), or for a bad ``n_top`` or ``rank_by``.

        Examples
        --------
        >>> import numpy as np
        >>> from skar import MADEDensity
        >>> from skar.anomaly import DensityOutlierDetector
        >>> rng = np.random.RandomState(0)
        >>> X = rng.normal(size=(400, 3))
        >>> made = MADEDensity(hidden_layer_sizes=(16,), max_iter=20, random_state=0)
        >>> det = DensityOutlierDetector(made, random_state=0).fit(X)
        >>> ex = det.explain([[0.0, 6.0, 9.0]], n_top=2)  # two columns far out, x2 the furthest
        >>> ex["feature"].tolist()
        ['x2', 'x1']
        >>> list(ex.columns)
        ['feature', 'value', 'contribution', 'excess']
        """
        check_is_fitted(self)
        if rank_by not in ("excess", "contribution"):
            raise ValueError(f"rank_by must be 'excess' or 'contribution'; got {rank_by!r}")
        if n_top is not None and (
            isinstance(n_top, (bool, np.bool_))
            or not isinstance(n_top, (int, np.integer))
            or n_top < 1
        ):
            raise ValueError(f"n_top must be a positive integer or None; got {n_top!r}")
        X = self._check_X(X, reset=False)
        if self.contribution_baseline_ is None:
            # The estimator has the method but it failed on the (valid) calibration rows in
            # fit: an ensemble of orderings or masks. Its own error says why.
            try:
                self.estimator_.score_samples_per_feature(X)
            except ValueError as exc:
                raise ValueError(
                    f"explain needs a density that splits into per-column terms: {exc}. Use "
                    "an estimator with a single ordering (e.g. MADEDensity(n_orderings=1))"
                ) from None
        missing = _missing_cells(X)
        per_feature = np.asarray(self.estimator_.score_samples_per_feature(X), dtype=np.float64)
        # A missing cell's term is NaN by design (it is not in the marginal); only the NaN of
        # an observed cell means the estimator failed.
        per_feature = _nan_as_minus_inf(np.where(missing, 0.0, per_feature),
                                        "score_samples_per_feature")
        contribution = -per_feature  # (n_samples, n_features)
        with np.errstate(invalid="ignore"):
            excess = contribution - self.contribution_baseline_
        # A column the model cannot represent (an overflowing value: +inf nats) ranks first
        # even where its baseline is +inf too.
        excess[contribution == np.inf] = np.inf
        contribution[missing] = np.nan
        excess[missing] = np.nan
        n, d = contribution.shape
        if hasattr(self, "feature_names_in_"):
            names = np.asarray(self.feature_names_in_, dtype=object)
        else:
            names = np.array([f"x{j}" for j in range(d)], dtype=object)
        if isinstance(X, pd.DataFrame):
            values, rows = X.to_numpy(dtype=object), X.index.to_numpy()
        else:
            values, rows = np.asarray(X, dtype=object), np.arange(n)
        key = np.where(missing, -np.inf, excess if rank_by == "excess" else contribution)
        # Stable sort of the negated key: the most surprising column first, ties by position.
        order = np.argsort(-key, axis=1, kind="stable")  # (n_samples, n_features)
        k = d if n_top is None else min(n_top, d)
        order = order[:, :k]
        take = np.take_along_axis
        frame = pd.DataFrame(
            {
                "feature": names[order].ravel(),
                "value": take(values, order, axis=1).ravel(),
                "contribution": take(contribution, order, axis=1).ravel(),
                "excess": take(excess, order, axis=1).ravel(),
            },
            index=pd.MultiIndex.from_arrays(
                [np.repeat(rows, k), np.tile(np.arange(1, k + 1), n)], names=["row", "rank"]
            ),
        )
        return frame

    def __sklearn_tags__(self):
        return passthrough_tags(super().__sklearn_tags__(), self.estimator)
