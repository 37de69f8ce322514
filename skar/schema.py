"""Columns <-> tensors: column kinds, categories, scaling and the log|Jacobian| of scaling.

A :class:`TabularSchema` is learned from the training data. It gives every column a *feature
type* (``feature_types`` forces any of them; otherwise they are inferred by the rules below):

``binary``
    a ``bool`` column, or a numeric column whose training values are all 0 or 1;
    modelled by a Bernoulli.
``categorical``
    a pandas ``category``, ``object`` or ``string`` column, or any column named in
    ``categorical_features``; its categories become the codes ``0 .. K-1`` of a Categorical.
``quantized``
    a numeric column whose values lie on a grid (integers, multiples of 0.01, ..., or such a
    grid shifted and scaled, as ``StandardScaler`` leaves it) that the data make visible by
    repeating values (the rule is in :func:`detect_grid`); standardised,
    and modelled by the probability of the grid cell under a mixture divided by the step: the
    density of the *dequantized* variable, bounded by ``1 / step``
    (:class:`skar.distributions.Mixture` with ``step > 0``).
``continuous``
    any other numeric column; standardised inside with the training mean and standard
    deviation, modelled by a mixture, plus point masses (atoms) at values that repeat far more
    often than a continuous variable allows (:func:`detect_atoms`).

Binary, categorical, quantized and continuous columns have the :attr:`ColumnSpec.kind`
``"binary"``, ``"categorical"``, ``"continuous"`` and ``"continuous"``: a network sees a
quantized column as a number; only its family differs (:attr:`ColumnSpec.feature_type`).

Standardising ``z = (x - m) / s`` changes densities by the Jacobian of the map:
``log p_X(x) = log p_Z(z) - sum_d log s_d``, summed over the continuous (and quantized)
columns. :attr:`TabularSchema.log_jacobian` is that constant, so every estimator reports the
log density in the units the user passed, directly comparable with
:class:`sklearn.neighbors.KernelDensity`. (On an atom, the family's term is a log-probability
and already compensates ``- log s``; see :class:`skar.distributions.Mixture`.)

**Values not seen in fit.** A category not seen in fit, or a value other than 0/1 in a binary
column, has probability zero under the model. :meth:`TabularSchema.encode` raises on them, or,
with ``return_unknown=True``, replaces them by a valid code and returns a mask of those cells,
so that an estimator can score such rows ``-inf`` (its ``handle_unknown``). A finite number in
a continuous or quantized column is never unknown (off-grid values fall in a cell).

**Datetime and timedelta columns** are refused with a message that names the column and how
to turn it into numbers: a timestamp has no natural unit or origin for a density.

Encoded rows are ``float32`` arrays of shape ``(n, D)`` holding 0/1, category codes or
standardised values; :class:`OneHotInputs` expands them into a network's input layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from .distributions import Bernoulli, Categorical, ConditionalFamily, Mixture

__all__ = [
    "ColumnSpec", "OneHotInputs", "TabularSchema", "detect_atoms", "detect_grid", "detect_step",
    "lattice_step",
]

KINDS = ("binary", "categorical", "continuous")
#: Largest standardised value an encoded (float32) row can hold.
FLOAT32_MAX = float(np.finfo(np.float32).max)
FEATURE_TYPES = ("binary", "categorical", "continuous", "quantized")

#: Grid steps tried by :func:`detect_step`, coarsest first: 1, 2 and 5 times a power of ten.
GRID_STEPS = tuple(m * 10.0**k for k in range(6, -9, -1) for m in (5, 2, 1))
#: Share of the training values that must lie on a grid (the others fall in its cells).
GRID_COVERAGE = 0.99
#: Share of the rows (point masses left out) that must share their value with another row for
#: a grid to count as visible.
GRID_REPEATS = 0.05
#: Smallest grid step in standard deviations: float32 codes place values to ~6e-8 |z|, so a
#: finer grid could not be told apart in the encoded rows.
GRID_MIN_STEP = 1e-4
#: Point masses: at most this many per column, each held by at least ATOM_SHARE of the rows
#: (and by at least ATOM_MIN_COUNT rows).
MAX_ATOMS = 5
ATOM_SHARE = 0.01
ATOM_MIN_COUNT = 3


@dataclass
class ColumnSpec:
    """What skar learned about one column at fit time.

    Attributes
    ----------
    name : object
        The column label (a DataFrame column name, or the integer position).
    kind : {"binary", "categorical", "continuous"}
        What a network sees (quantized columns are ``"continuous"``).
    categories : ndarray or None
        For binary and categorical columns, the values that codes ``0 .. K-1`` stand for.
    mean, scale : float
        Standardisation of a continuous column (``scale`` > 0).
    dtype : object
        The column's dtype at fit time, used to give samples back in the same dtype.
    step : float or None
        The grid step of a quantized column, in the column's units (values
        ``origin + k * step``).
    origin : float
        A grid point of a quantized column, in the column's units: 0 for a decimal grid
        (multiples of ``step``), a recorded value for a shifted grid (:func:`lattice_step`).
    atoms : ndarray or None
        Point masses of a continuous column, in the column's units.
    declared : bool
        Whether the user forced the column's feature type (``feature_types``,
        ``categorical_features`` or a ``quantization`` step).
    """

    name: Any
    kind: str
    categories: np.ndarray | None = None
    mean: float = 0.0
    scale: float = 1.0
    dtype: Any = field(default=None)
    step: float | None = None
    atoms: np.ndarray | None = None
    declared: bool = False
    origin: float = 0.0

    @property
    def n_categories(self) -> int:
        """Number of categories (2 for binary, 1 for continuous as a convention)."""
        return 1 if self.categories is None else len(self.categories)

    @property
    def feature_type(self) -> str:
        """``"binary"``, ``"categorical"``, ``"quantized"`` or ``"continuous"``."""
        return "quantized" if self.step is not None else self.kind

    @property
    def label(self) -> str:
        """How error messages name the column."""
        return f"column {self.name!r}" if isinstance(self.name, str) else f"column {self.name}"

    def grid(self) -> tuple[float, float]:
        """``(step, offset)`` of a quantized column in standardised units, the offset reduced
        to ``[-step/2, step/2]`` (grid points are ``offset + j * step``)."""
        step = self.step / self.scale
        origin = (self.origin - self.mean) / self.scale  # where a grid point lands
        return step, origin - step * np.round(origin / step)

    def snap(self, x: np.ndarray) -> np.ndarray:
        """Values moved to the centre of their grid cell, in the column's units."""
        k = np.round((x - self.origin) / self.step)
        if self.origin != 0.0:  # a shifted grid has no decimals to round to
            return self.origin + k * self.step
        digits = max(0, int(np.ceil(-np.log10(self.step))) + 1)
        return np.round(k * self.step, digits)


def _label(name: Any) -> str:
    return f"column {name!r}" if isinstance(name, str) else f"column {name}"


def _column(X: Any, j: int) -> Any:
    return X.iloc[:, j] if isinstance(X, pd.DataFrame) else X[:, j]


def _first_bad(values: np.ndarray, mask: np.ndarray) -> tuple[int, Any]:
    """The first flagged row and its value (numpy scalars shown as plain Python values)."""
    row = int(np.flatnonzero(mask)[0])
    v = values[row]
    return row, v.item() if isinstance(v, np.generic) else v


def _to_float(values: Any, name: Any) -> np.ndarray:
    """Convert one column to float64, naming the column, row and value on failure."""
    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
            values.dtype
        ):
            values = values.to_numpy(dtype=object)
        else:
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    out = np.empty(arr.shape[0], dtype=np.float64)
    for i, v in enumerate(arr):
        try:
            out[i] = float(v)
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"{_label(name)} holds {v!r} at row {i}, but a number was expected "
                f"({exc}). Name the column in categorical_features, or pass a pandas "
                "DataFrame with a 'category' or string column, to model it as categorical."
            ) from None
    return out


def _check_finite(x: np.ndarray, name: Any) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        row, v = _first_bad(x, bad)
        what = "NaN" if np.isnan(v) else ("+inf" if v > 0 else "-inf")
        raise ValueError(
            f"{_label(name)} holds {what} at row {row}; skar needs finite values (no NaN or "
            "inf). Impute or drop missing values first, e.g. with sklearn.impute.SimpleImputer."
        )


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation in float64 without overflow: computed on ``x / max|x|``
    and scaled back, so data of magnitude 1e300 (whose squares overflow) standardise."""
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if not top > 0:
        return 0.0, 0.0
    u = x / top
    return float(u.mean()) * top, float(u.std()) * top


def _is_missing(values: np.ndarray) -> np.ndarray:
    return np.asarray(pd.isna(values), dtype=bool)


def _on_grid(x: np.ndarray, step: float) -> np.ndarray:
    """Which values are integer multiples of ``step``, to float64 precision."""
    q = x / step
    return np.abs(q - np.round(q)) <= 1e-6 + 1e-12 * np.abs(q)


def grid_step(x: np.ndarray, *, allow_constant: bool = False) -> float | None:
    """The coarsest step of :data:`GRID_STEPS` with at least :data:`GRID_COVERAGE` of ``x`` on
    its grid (``x = k * step``) and no coarser than the range of ``x``; None if there is none
    (truly continuous values, or a constant column). With ``allow_constant`` (a column
    declared quantized), a constant column gets the coarsest step no larger than
    ``max(|x|, 1)`` (1 for a column of zeros)."""
    x = np.asarray(x, dtype=np.float64)
    span = float(x.max() - x.min()) if x.size else 0.0
    if not span > 0:
        if not (allow_constant and x.size):
            return None
        span = max(abs(float(x[0])), 1.0)
    for step in GRID_STEPS:
        if step <= span and _on_grid(x, step).mean() >= GRID_COVERAGE:
            return step
    return None


def _lattice_coverage(values: np.ndarray, counts: np.ndarray, origin: float,
                      step: float) -> float:
    """Share of the rows (``values`` with their ``counts``) on ``origin + k * step``."""
    q = (values - origin) / step
    return float(counts[np.abs(q - np.round(q)) <= 1e-6].sum() / counts.sum())


def lattice_step(x: np.ndarray) -> tuple[float, float] | None:
    """The grid ``origin + k * step`` that at least :data:`GRID_COVERAGE` of ``x`` lies on, for
    values that were recorded on a grid and then shifted and scaled (standardised by
    ``StandardScaler``, converted from Celsius): ``(step, origin)``, or None.

    The step is found from the gaps between neighbouring distinct values: gaps equal to
    float64 precision (relative 1e-6) are grouped, and for each of the three most frequent
    gaps ``g`` the coarsest ``g / m`` (``m = 1 .. 100``) that holds the coverage is a
    candidate (the step itself need not occur as a gap: Boston's NOX, recorded to 1e-4, has
    no two values 1e-4 apart); the largest candidate wins. ``origin`` is the most frequent
    value (a grid point). Truly continuous values have no repeated gap and no coverage.
    Values on a decimal grid are found by :func:`grid_step` first (with ``origin`` 0).
    """
    x = np.asarray(x, dtype=np.float64)
    values, counts = np.unique(x, return_counts=True)
    if values.size < 3:
        return None
    origin = float(values[np.argmax(counts)])
    size = max(float(np.abs(values).max()), float(values[-1] - values[0]))
    gaps = np.diff(values)
    gaps = np.sort(gaps[gaps > 1e-9 * size])
    if gaps.size == 0:
        return None
    # Groups of equal gaps: a new group starts where a gap exceeds the one before by 1e-6.
    starts = np.flatnonzero(np.r_[True, gaps[1:] > gaps[:-1] * (1 + 1e-6)])
    bounds = np.append(starts, gaps.size)
    sizes = np.diff(bounds)
    # A few distinct values decide quickly whether a step can hold; all of them confirm it.
    rng = np.random.default_rng(0)
    probe = np.sort(rng.choice(values.size, min(values.size, 256), replace=False))
    best = None
    for g in np.argsort(-sizes, kind="stable")[:3]:
        if sizes[g] < 2:
            break
        gap = float(np.median(gaps[bounds[g]:bounds[g + 1]]))
        for m in range(1, 101):
            step = gap / m
            if best is not None and step <= best:
                break
            if _lattice_coverage(values[probe], counts[probe], origin, step) < 0.9:
                continue
            if _lattice_coverage(values, counts, origin, step) >= GRID_COVERAGE:
                best = step
                break
    return None if best is None else (best, origin)


def detect_atoms(x: np.ndarray) -> np.ndarray:
    """The point masses of a continuous column: the values that repeat far more often than a
    continuous variable allows.

    A value is an atom when at least ``max(ATOM_MIN_COUNT, ATOM_SHARE * n)`` rows hold it
    exactly (a continuous variable recorded at a resolution too fine to collide, see
    :func:`detect_step`, repeats no value); at most :data:`MAX_ATOMS`, the most frequent.
    Ionosphere's values clipped at -1, 0 and +1 (8 to 27% of the rows each) are atoms.

    Returns
    -------
    ndarray
        The atoms, sorted (empty when there is none).
    """
    x = np.asarray(x, dtype=np.float64)
    values, counts = np.unique(x, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    keep = counts[order] >= max(ATOM_MIN_COUNT, ATOM_SHARE * x.size)
    return np.sort(values[order[keep][:MAX_ATOMS]])


def detect_step(x: np.ndarray, scale: float | None = None) -> float | None:
    """The step of :func:`detect_grid` (None where it finds no grid)."""
    grid = detect_grid(x, scale)
    return None if grid is None else grid[0]


def detect_grid(x: np.ndarray, scale: float | None = None) -> tuple[float, float] | None:
    """The grid ``(step, origin)`` of a numeric column, if the data make it visible; else None.

    The rule (every threshold is a module constant):

    1. **On a grid.** ``step`` is the coarsest of 1, 2 or 5 times a power of ten
       (:data:`GRID_STEPS`, 5e6 down to 1e-8) such that at least 99% of the training values are
       integer multiples of it (to float64 precision), with ``origin`` 0. The tolerance of 1%
       keeps a grid when a few values are averages (red wine's alcohol: 15 of 1,599 values
       such as 10.0333 are off its 0.1 grid; they fall in its cells). Failing that, a shifted
       and scaled grid (:func:`lattice_step`): the same values after ``StandardScaler`` are
       on the grid ``origin + k * 0.1 / s``, and are the same data.
    2. **Visible.** Leaving out the point masses (:func:`detect_atoms`), at least 5% of the
       rows share their value with another row. A continuous variable recorded at resolution
       ``r`` with density ``p`` collides at a rate of about ``n r p``: a grid fine enough to
       keep truly continuous data apart (normal draws to 6 decimals, ``n = 10^4``: 0.4%) stays
       continuous, while one that merges values (wine, counts, scores) is quantized. Repeats
       at a few values only (ionosphere's clipping at +-1 and 0) are point masses instead.
    3. **Representable.** ``step / scale >= 1e-4``: float32 codes place a standardised value
       to about ``6e-8 |z|``, so a finer grid could not be told apart after encoding.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Finite training values.
    scale : float, optional
        The column's standardisation scale (default: the standard deviation of ``x``).
    """
    x = np.asarray(x, dtype=np.float64)
    step, origin = grid_step(x), 0.0
    if step is None:
        found = lattice_step(x)
        if found is None:
            return None
        step, origin = found
    scale = float(x.std()) if scale is None else scale
    if not step >= GRID_MIN_STEP * scale:
        return None
    rest = x[~np.isin(x, detect_atoms(x))]
    if rest.size < 2:
        return None
    _, counts = np.unique(rest, return_counts=True)
    repeated = counts[counts > 1].sum() / rest.size
    return (step, origin) if repeated >= GRID_REPEATS else None


_DATETIME_KINDS = ("datetime64", "datetime", "date", "timedelta64", "timedelta", "period", "time")


def _check_not_datetime(col: Any, name: Any) -> None:
    """Refuse datetime, timedelta and period columns, saying how to turn them into numbers."""
    dtype = getattr(col, "dtype", None)
    what = None
    if dtype is not None and (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
    ):
        what = str(dtype)
    elif (dtype is None or pd.api.types.is_object_dtype(dtype)
          or pd.api.types.is_string_dtype(dtype)):
        inferred = pd.api.types.infer_dtype(np.asarray(col, dtype=object), skipna=True)
        if inferred in _DATETIME_KINDS:
            what = f"{inferred} objects"
    if what is None:
        return
    raise TypeError(
        f"{_label(name)} holds dates or durations ({what}); skar models numbers and "
        "categories, and a timestamp has no natural unit or origin for a density. Convert it "
        f"first, e.g. days since a reference, X[{name!r}] = (X[{name!r}] - "
        f"pd.Timestamp('2000-01-01')).dt.total_seconds() / 86400 (or .dt.total_seconds() for "
        "a timedelta), or its parts (.dt.year, .dt.month, .dt.dayofweek) as separate columns; "
        "or declare it categorical if each value is a label."
    )


def _infer_kind(col: Any, force_categorical: bool) -> tuple[str, np.ndarray | None]:
    """Decide a column's kind from its dtype and training values."""
    dtype = getattr(col, "dtype", None)
    if force_categorical or isinstance(dtype, pd.CategoricalDtype):
        if isinstance(dtype, pd.CategoricalDtype):
            return "categorical", np.asarray(dtype.categories, dtype=object)
        values = np.asarray(col, dtype=object)
        values = values[~_is_missing(values)]
        uniq = pd.unique(values)
        try:
            uniq = np.sort(uniq)
        except TypeError:  # mixed types cannot be ordered; keep order of appearance
            pass
        return "categorical", np.asarray(uniq, dtype=object)
    if dtype is not None and pd.api.types.is_bool_dtype(dtype):
        return "binary", np.array([False, True], dtype=object)
    if dtype is not None and not pd.api.types.is_numeric_dtype(dtype):
        if isinstance(col, pd.Series):  # object or string columns of a DataFrame
            return _infer_kind(col, True)
    return "numeric", None


class TabularSchema:
    """The columns of a data set: their kinds, categories, scaling, grids and point masses.

    Build one with :meth:`from_data`; it then encodes rows to the float32 matrix every network
    reads (:meth:`encode`), gives every column's conditional family (:meth:`families`), and
    decodes sampled matrices back to the user's kinds and dtypes (:meth:`decode`).

    Parameters
    ----------
    columns : list of ColumnSpec
    is_frame : bool
        Whether the training data was a pandas DataFrame (samples are then DataFrames).
    array_dtype : numpy dtype or None
        The dtype of a numpy training array, kept for the samples.
    quantized_samples : {"grid", "uniform"}, default="grid"
        Samples of a quantized column lie on its grid, as the data do (``"grid"``), or move
        uniformly within their cell (``"uniform"``, a draw of the dequantized variable).
    """

    #: Class default, so that schemas pickled before the option existed still decode.
    quantized_samples: str = "grid"

    def __init__(
        self,
        columns: list[ColumnSpec],
        is_frame: bool,
        array_dtype: Any = None,
        quantized_samples: str = "grid",
    ) -> None:
        self.columns = columns
        self.is_frame = is_frame
        self.array_dtype = array_dtype
        self.quantized_samples = quantized_samples

    # ------------------------------------------------------------------ building
    @classmethod
    def from_data(
        cls,
        X: Any,
        *,
        categorical_features: Any = None,
        feature_types: Any = None,
        quantization: Any = "auto",
        point_masses: str | None = "auto",
        quantized_samples: str = "grid",
        n_features: int | None = None,
    ) -> TabularSchema:
        """Learn the schema of ``X``.

        Parameters
        ----------
        X : ndarray or DataFrame of shape (n_samples, n_features)
            Already checked to be 2-D and non-empty.
        categorical_features : None, array-like of int, str or bool
            Columns to model as categorical in addition to those whose dtype says so:
            positions, column names, or a boolean mask (as in
            :class:`sklearn.ensemble.HistGradientBoostingRegressor`).
        feature_types : None, str, array-like of str, or dict
            Forces columns' feature types, each ``"binary"``, ``"categorical"``,
            ``"continuous"`` or ``"quantized"``: one string for every column, a list with one
            entry per column (``None`` entries are inferred), or a dict from column names or
            positions to types (other columns are inferred). ``None`` infers every column by
            the rules of :mod:`skar.schema`. A ``"binary"`` column must hold only 0/1 (or
            ``bool``); a ``"quantized"`` column takes its step from ``quantization`` or, if
            none is given there, the grid its values lie on (:func:`grid_step`); a
            ``"continuous"`` column is never quantized.
        quantization : "auto", None, dict or array-like of float, default="auto"
            ``"auto"`` quantizes the numeric columns whose grid the data make visible
            (:func:`detect_step`); ``None`` quantizes only columns declared ``"quantized"``.
            A dict from column names or positions to steps (or an array with one step per
            column, 0 or NaN for none) gives those columns' steps, in the column's units;
            the other columns are detected as with ``"auto"``.
        point_masses : "auto" or None, default="auto"
            ``"auto"`` gives continuous (not quantized) columns point masses at the values
            that repeat far more often than a continuous variable allows
            (:func:`detect_atoms`); ``None`` never.
        quantized_samples : {"grid", "uniform"}, default="grid"
            See the class parameters.

        Returns
        -------
        TabularSchema

        Raises
        ------
        TypeError
            For a datetime, timedelta or period column (the message says how to convert it),
            or a numeric column holding something that is not a number.
        ValueError
            For NaN or inf, a column declared binary that holds other values than 0/1, a
            column declared quantized whose values lie on no grid, or an unknown type name.
        """
        if quantized_samples not in ("grid", "uniform"):
            raise ValueError(
                f"quantized_samples must be 'grid' or 'uniform'; got {quantized_samples!r}"
            )
        if point_masses not in ("auto", None):
            raise ValueError(f"point_masses must be 'auto' or None; got {point_masses!r}")
        is_frame = isinstance(X, pd.DataFrame)
        n_features = X.shape[1]
        names = list(X.columns) if is_frame else list(range(n_features))
        forced = cls._categorical_mask(categorical_features, names)
        types = cls._feature_types(feature_types, names)
        steps = cls._steps(quantization, names)
        for j, name in enumerate(names):
            if forced[j] and types[j] not in (None, "categorical"):
                raise ValueError(
                    f"{_label(name)} is named in categorical_features but declared "
                    f"{types[j]!r} in feature_types; give it one type"
                )
            if forced[j]:
                types[j] = "categorical"
            if steps[j] is not None and types[j] not in (None, "quantized"):
                raise ValueError(
                    f"quantization gives {_label(name)} the step {steps[j]!r}, but it is "
                    f"declared {types[j]!r}; only quantized columns have a step"
                )
            if steps[j] is not None:
                types[j] = "quantized"
        columns = []
        for j, name in enumerate(names):
            col = _column(X, j)
            declared = types[j] is not None
            if types[j] != "categorical":
                _check_not_datetime(col, name)
            kind, cats = _infer_kind(col, types[j] == "categorical")
            dtype = col.dtype
            if types[j] == "binary" and kind == "categorical":
                raise ValueError(
                    f"{_label(name)} is declared binary in feature_types, but holds "
                    f"non-numeric values ({list(cats[:5])}); a binary column holds 0/1 or "
                    "bool values (declare it 'categorical' instead)"
                )
            if kind in ("binary", "categorical") and types[j] not in ("continuous", "quantized"):
                values = np.asarray(col, dtype=object)
                miss = _is_missing(values)
                if miss.any():
                    row, v = _first_bad(values, miss)
                    raise ValueError(
                        f"{_label(name)} holds a missing value ({v!r}) at row {row}; skar "
                        "needs complete rows. Impute or drop missing values first."
                    )
                columns.append(ColumnSpec(name, kind, cats, dtype=dtype, declared=declared))
                continue
            x = _to_float(col, name)
            _check_finite(x, name)
            zero_one = np.isin(x, (0.0, 1.0))
            if types[j] == "binary" or (types[j] is None and steps[j] is None and zero_one.all()):
                if not zero_one.all():
                    row, v = _first_bad(x, ~zero_one)
                    raise ValueError(
                        f"{_label(name)} is declared binary in feature_types, but holds {v!r} "
                        f"at row {row}; a binary column holds only 0 and 1 (declare it "
                        "'categorical', 'quantized' or 'continuous' instead)"
                    )
                np_dtype = dtype if isinstance(dtype, np.dtype) else np.dtype(float)
                cats = np.array([0, 1], dtype=np_dtype if np_dtype.kind in "biuf" else float)
                columns.append(ColumnSpec(name, "binary", cats, dtype=dtype, declared=declared))
                continue
            mean, std = float(x.mean()), float(x.std())
            if not (np.isfinite(mean) and np.isfinite(std)):  # 1e300-scale data overflowed
                mean, std = _mean_std(x)
            scale = std if np.isfinite(std) and std > 0 else 1.0
            step, origin = steps[j], 0.0
            if step is None and types[j] == "quantized":
                step = grid_step(x, allow_constant=True)
                if step is None and (found := lattice_step(x)) is not None:
                    step, origin = found
                if step is None:
                    raise ValueError(
                        f"{_label(name)} is declared quantized, but its values lie on no grid "
                        "of 1, 2 or 5 times a power of ten (1e-8 to 5e6), shifted or not; give "
                        f"its step, e.g. quantization={{{name!r}: 0.25}}"
                    )
            elif step is None and types[j] is None and quantization is not None:
                found = detect_grid(x, scale)
                if found is not None:
                    step, origin = found
            atoms = None
            if step is None and point_masses == "auto":
                found = detect_atoms(x)
                atoms = found if found.size else None
            columns.append(ColumnSpec(name, "continuous", None, mean, scale, dtype,
                                      step=step, atoms=atoms, declared=declared,
                                      origin=origin))
        array_dtype = None if is_frame else np.asarray(X).dtype
        return cls(columns, is_frame, array_dtype, quantized_samples)

    @staticmethod
    def _position(key: Any, names: list, what: str) -> int:
        """The position of a column named by ``key`` (a name, or an int position)."""
        n = len(names)
        if isinstance(key, (bool, np.bool_)):
            raise TypeError(f"{what} must name columns by position (int) or name; got {key!r}")
        if isinstance(key, str) or not isinstance(key, (int, np.integer)):
            if key not in names:
                raise ValueError(
                    f"{what} names {key!r}, which is not a column of X; the columns are {names}"
                )
            return names.index(key)
        if key in names:  # an integer label of a DataFrame column, or a numpy position
            return names.index(key)
        if not -n <= key < n:
            raise ValueError(f"{what} holds position {key}, but X has {n} columns")
        return int(key) % n

    @classmethod
    def _feature_types(cls, feature_types: Any, names: list) -> list[str | None]:
        n = len(names)

        def check(t: Any, where: str) -> str | None:
            if t is None or (isinstance(t, str) and t == "auto"):
                return None
            if not isinstance(t, str) or t not in FEATURE_TYPES:
                raise ValueError(
                    f"feature_types gives {where} the type {t!r}; the types are "
                    f"{list(FEATURE_TYPES)} (or None to infer it)"
                )
            return t

        if feature_types is None:
            return [None] * n
        if isinstance(feature_types, str):
            return [check(feature_types, "every column")] * n
        if isinstance(feature_types, dict):
            out: list[str | None] = [None] * n
            for key, t in feature_types.items():
                j = cls._position(key, names, "feature_types")
                out[j] = check(t, _label(names[j]))
            return out
        items = list(feature_types)
        if len(items) != n:
            raise ValueError(
                f"feature_types has {len(items)} entries, but X has {n} columns; give one "
                "type per column, or a dict from columns to types"
            )
        return [check(t, _label(name)) for t, name in zip(items, names)]

    @classmethod
    def _steps(cls, quantization: Any, names: list) -> list[float | None]:
        n = len(names)
        if quantization is None or (isinstance(quantization, str) and quantization == "auto"):
            return [None] * n
        if isinstance(quantization, str):
            raise ValueError(
                "quantization must be 'auto', None, a dict from columns to steps or one step "
                f"per column; got {quantization!r}"
            )

        def check(r: Any, j: int) -> float | None:
            if r is None:
                return None
            try:
                r = float(r)
            except (TypeError, ValueError):
                r = np.nan if r is None else r
            if isinstance(r, float) and (np.isnan(r) or r == 0.0):
                return None
            if not (isinstance(r, float) and np.isfinite(r) and r > 0):
                raise ValueError(
                    f"quantization gives {_label(names[j])} the step {r!r}; a step is a "
                    "positive number (0 or NaN for none)"
                )
            return r

        if isinstance(quantization, dict):
            out: list[float | None] = [None] * n
            for key, r in quantization.items():
                j = cls._position(key, names, "quantization")
                out[j] = check(r, j)
            return out
        items = list(np.ravel(np.asarray(quantization, dtype=object)))
        if len(items) != n:
            raise ValueError(
                f"quantization has {len(items)} steps, but X has {n} columns; give one step "
                "per column (0 or NaN for none), or a dict from columns to steps"
            )
        return [check(r, j) for j, r in enumerate(items)]

    @staticmethod
    def _categorical_mask(categorical_features: Any, names: list) -> np.ndarray:
        n = len(names)
        mask = np.zeros(n, dtype=bool)
        if categorical_features is None or (
            isinstance(categorical_features, str) and categorical_features == "from_dtype"
        ):
            return mask
        cf = np.asarray(categorical_features)
        if cf.ndim != 1:
            raise ValueError(
                "categorical_features must be a 1-D list of column positions, names or a "
                f"boolean mask; got {categorical_features!r}"
            )
        if cf.dtype.kind == "b":
            if cf.shape[0] != n:
                raise ValueError(
                    f"categorical_features is a boolean mask of length {cf.shape[0]}, but X "
                    f"has {n} columns"
                )
            return cf.copy()
        for item in cf.tolist():
            if isinstance(item, str):
                if item not in names:
                    raise ValueError(
                        f"categorical_features names {item!r}, which is not a column of X; "
                        f"the columns are {names}"
                    )
                mask[names.index(item)] = True
            elif isinstance(item, (int, np.integer)):
                if not -n <= item < n:
                    raise ValueError(
                        f"categorical_features holds position {item}, but X has {n} columns"
                    )
                mask[item] = True
            else:
                raise TypeError(
                    "categorical_features must hold column positions (int) or names (str); "
                    f"got {item!r}"
                )
        return mask

    # ------------------------------------------------------------------ properties
    @property
    def n_features(self) -> int:
        """Number of columns D."""
        return len(self.columns)

    @property
    def kinds(self) -> list[str]:
        """The kind of every column."""
        return [c.kind for c in self.columns]

    @property
    def feature_types(self) -> list[str]:
        """The feature type of every column: binary, categorical, quantized or continuous."""
        return [c.feature_type for c in self.columns]

    @property
    def input_sizes(self) -> list[int]:
        """Width of every column in a one-hot input layer (K for categorical, else 1)."""
        return [c.n_categories if c.kind == "categorical" else 1 for c in self.columns]

    @property
    def log_jacobian_per_feature(self) -> np.ndarray:
        """``-log s_d`` for continuous (and quantized) columns, 0 for discrete ones; shape (D,)."""
        return np.array(
            [-np.log(c.scale) if c.kind == "continuous" else 0.0 for c in self.columns]
        )

    @property
    def log_jacobian(self) -> float:
        """``-sum_d log s_d``: add it to a log density of standardised rows to get user units."""
        return float(self.log_jacobian_per_feature.sum())

    def families(
        self, n_components: int = 5, component: str = "gaussian", min_scale: float = 1e-3
    ) -> list[ConditionalFamily]:
        """The conditional family of every column (Bernoulli, Categorical or Mixture).

        Continuous columns get a :class:`~skar.distributions.Mixture`; a quantized column's
        carries its grid in standardised units (``step = r / s``, the cells of the column's
        values), a continuous column's its point masses. ``min_scale`` is the floor of the
        mixtures' component scales in standardised units on continuous columns (a quantized
        column's floor is ``step / 16``, which its cells make harmless).
        """
        fams: list[ConditionalFamily] = []
        for c in self.columns:
            if c.kind == "binary":
                fams.append(Bernoulli())
            elif c.kind == "categorical":
                fams.append(Categorical(c.n_categories))
            elif c.step is not None:
                step, offset = c.grid()
                fams.append(Mixture(n_components, component, min_scale, step=float(step),
                                    offset=float(offset),
                                    within_cell=self.quantized_samples == "uniform"))
            elif c.atoms is not None:
                atoms = tuple(float(a) for a in (c.atoms - c.mean) / c.scale)
                fams.append(Mixture(n_components, component, min_scale, atoms=atoms,
                                    atom_log_unit=float(np.log(c.scale))))
            else:
                fams.append(Mixture(n_components, component, min_scale))
        return fams

    # ------------------------------------------------------------------ encode / decode
    def encode(
        self, X: Any, *, return_unknown: bool = False, return_missing: bool = False
    ) -> Any:
        """Encode rows to a float32 matrix of 0/1, category codes and standardised values.

        A quantized column's values are moved to the centre of their grid cell (the family
        scores the cell). With ``return_unknown=True``, the cells whose value the model gives
        probability zero (a category not seen in fit, or a value other than 0/1 in a binary
        column) are not an error: they get the valid code 0, so a network never sees a bad
        code, and are flagged in the returned mask; an estimator scores their rows ``-inf``.
        With ``return_missing=True``, missing cells (NaN, None, ``pd.NA``) are not an error
        either: they get the valid code 0 (the mean of a continuous column) and are flagged
        in the returned mask of missing cells (see :mod:`skar.missing`); ``fit`` never asks
        for it, so training data must be complete.

        Parameters
        ----------
        X : ndarray or DataFrame of shape (n_samples, n_features)
            Checked to be 2-D, non-empty and of the fitted width.
        return_unknown : bool, default=False
            Return the mask of unknown cells instead of raising on them.
        return_missing : bool, default=False
            Return the mask of missing cells instead of raising on them.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features), float32
        unknown : ndarray of shape (n_samples, n_features), bool
            Only with ``return_unknown=True``. Read-only (a broadcast view of False) when no
            cell is flagged.
        missing : ndarray of shape (n_samples, n_features), bool
            Only with ``return_missing=True`` (after ``unknown`` when both are asked for);
            read-only when no cell is missing.

        Raises
        ------
        ValueError
            On inf, on NaN or a missing category (unless ``return_missing``), and (unless
            ``return_unknown``) an unseen
            category, or a binary column holding something other than 0/1; the message names
            the column, the row and the value.
        TypeError
            When a numeric column holds something that is not a number.
        """
        n = X.shape[0]
        Z = np.empty((n, self.n_features), dtype=np.float32)
        # The masks are allocated at their first flagged cell: scoring complete, known rows
        # (the common case) holds no (n, D) mask, only read-only all-False views.
        masks: dict[str, np.ndarray] = {}

        def flag(name: str, j: int, cells: np.ndarray) -> None:
            if name not in masks:
                masks[name] = np.zeros((n, self.n_features), dtype=bool)
            masks[name][:, j] = cells
        for j, spec in enumerate(self.columns):
            col = _column(X, j)
            if return_missing:
                values = col.to_numpy() if isinstance(col, pd.Series) else np.asarray(col)
                miss = np.isnan(values) if values.dtype.kind == "f" else _is_missing(values)
                if miss.any():
                    flag("missing", j, miss)
                    # A valid stand-in where the cell is missing (the column's mean, or its
                    # first category): the network reads a value it knows, and the caller
                    # masks the cell out of every score.
                    if spec.kind == "continuous":
                        col = _to_float(np.where(miss, 0.0, values.astype(object)), spec.name)
                        col[miss] = spec.mean
                    else:
                        col = values.astype(object)
                        col[miss] = spec.categories[0]
            if spec.kind == "continuous":
                x = _to_float(col, spec.name)
                _check_finite(x, spec.name)
                if spec.step is not None:
                    x = spec.snap(x)
                # Standardise in float64; a value whose standardised value float32 cannot
                # hold (1e39, or 1e30 in a column of scale 1e-10) is beyond what the model
                # represents: flagged (its row scores -inf), encoded as 0 so the network never
                # sees inf. Never an error: the value is finite and its density is ~0.
                with np.errstate(over="ignore", invalid="ignore"):
                    z = x - spec.mean
                    z /= spec.scale
                    far = ~np.isfinite(z)  # x - mean overflowed float64: split the terms
                    if far.any():
                        z[far] = x[far] / spec.scale - spec.mean / spec.scale
                over = ~((z <= FLOAT32_MAX) & (z >= -FLOAT32_MAX))  # NaN included
                if over.any():
                    z[over] = 0.0
                    flag("unknown", j, over)
                Z[:, j] = z
            elif spec.kind == "binary" and spec.categories.dtype.kind in "biuf":
                x = _to_float(col, spec.name)
                _check_finite(x, spec.name)
                bad = (x != 0.0) & (x != 1.0)
                if bad.any() and not return_unknown:
                    row, v = _first_bad(x, bad)
                    how = ("declared binary" if spec.declared
                           else "binary (only 0 and 1 were seen in fit)")
                    raise ValueError(
                        f"{spec.label} is {how}, but holds {v!r} at row {row}, which has "
                        "probability zero; pass handle_unknown='zero_probability' to score "
                        "such rows -inf, or declare the column 'quantized' or 'continuous' in "
                        "feature_types"
                    )
                Z[:, j] = np.where(bad, 0.0, x)
                if bad.any():
                    flag("unknown", j, bad)
            else:
                values = np.asarray(col, dtype=object)
                miss = _is_missing(values)
                if miss.any():
                    row, v = _first_bad(values, miss)
                    raise ValueError(
                        f"{spec.label} holds a missing value ({v!r}) at row {row}; skar needs "
                        "complete rows."
                    )
                codes = pd.Index(spec.categories).get_indexer(values)
                bad = codes < 0
                if bad.any() and not return_unknown:
                    row, v = _first_bad(values, bad)
                    raise ValueError(
                        f"{spec.label} holds the category {v!r} at row {row}, which was not "
                        f"seen in fit; the known categories are {list(spec.categories)}"
                    )
                Z[:, j] = np.where(bad, 0, codes)
                if bad.any():
                    flag("unknown", j, bad)
        none = np.broadcast_to(np.False_, (n, self.n_features))
        unknown, missing = masks.get("unknown", none), masks.get("missing", none)
        out = [Z] + [unknown] * return_unknown + [missing] * return_missing
        return out[0] if len(out) == 1 else tuple(out)

    def decode(self, Z: np.ndarray) -> Any:
        """Turn an encoded matrix back into rows of the user's kinds and dtypes.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_features)

        Returns
        -------
        ndarray or DataFrame
            A DataFrame with the fitted column names and dtypes (categories included) when the
            model was fitted on a DataFrame; otherwise a numpy array, in the training array's
            dtype when that holds every value exactly, else float64 (or object for
            non-numeric categories). Quantized columns come back on their grid (exact
            decimals such as 3.51), unless ``quantized_samples="uniform"``.
        """
        Z = np.asarray(Z, dtype=np.float64)
        on_grid = self.quantized_samples == "grid"
        out: dict[Any, Any] = {}
        for j, spec in enumerate(self.columns):
            z = Z[:, j]
            if spec.kind == "continuous":
                x = z * spec.scale + spec.mean
                out[spec.name] = spec.snap(x) if spec.step is not None and on_grid else x
            else:
                codes = np.rint(z).astype(np.int64)
                values = spec.categories[codes]
                if self.is_frame:
                    if isinstance(spec.dtype, pd.CategoricalDtype):
                        values = pd.Categorical.from_codes(codes, dtype=spec.dtype)
                    else:
                        values = pd.array(values).astype(spec.dtype)
                out[spec.name] = values

        def integral(spec: ColumnSpec) -> bool:  # a column whose samples are all integers
            return spec.kind != "continuous" or (
                spec.step is not None and on_grid and float(spec.step).is_integer()
                and float(spec.origin).is_integer()
            )

        if self.is_frame:
            frame = pd.DataFrame(out)
            for spec in self.columns:
                if spec.kind != "continuous":
                    continue
                kind = np.dtype(spec.dtype).kind if isinstance(spec.dtype, np.dtype) else ""
                if kind == "f" or (kind in "iu" and kind and integral(spec)):
                    frame[spec.name] = frame[spec.name].astype(spec.dtype)
            return frame
        cols = [np.asarray(out[spec.name]) for spec in self.columns]
        try:
            arr = np.column_stack([c.astype(np.float64) for c in cols])
        except (TypeError, ValueError):
            return np.column_stack([c.astype(object) for c in cols])
        dt = self.array_dtype
        if dt is not None and dt.kind in "biuf" and (
            dt.kind == "f" or all(integral(c) for c in self.columns)
        ):
            return arr.astype(dt)
        return arr


class OneHotInputs(nn.Module):
    """Expand encoded rows into a network's input layer: categorical codes become one-hot.

    Binary and continuous columns keep one unit; a categorical column with K categories gets K
    units. All columns are written with two vectorised operations (a gather and a scatter),
    not a Python loop over columns.

    Parameters
    ----------
    input_sizes : sequence of int
        Width of every column (:attr:`TabularSchema.input_sizes`).
    kinds : sequence of str
        Kind of every column.

    Attributes
    ----------
    column_of_unit : LongTensor of shape (n_units,)
        The column every input unit belongs to (a MADE mask gives them the same degree).
    """

    def __init__(self, input_sizes: Sequence[int], kinds: Sequence[str]) -> None:
        super().__init__()
        offsets = np.concatenate([[0], np.cumsum(input_sizes)]).astype(np.int64)
        self.n_units = int(offsets[-1])
        cat = [d for d, k in enumerate(kinds) if k == "categorical"]
        dense = [d for d, k in enumerate(kinds) if k != "categorical"]
        column_of_unit = np.repeat(np.arange(len(input_sizes)), input_sizes)
        self.register_buffer("column_of_unit", torch.as_tensor(column_of_unit), persistent=False)
        self.register_buffer("_dense_cols", torch.as_tensor(dense, dtype=torch.long),
                             persistent=False)
        self.register_buffer("_dense_units", torch.as_tensor(offsets[dense], dtype=torch.long),
                             persistent=False)
        self.register_buffer("_cat_cols", torch.as_tensor(cat, dtype=torch.long),
                             persistent=False)
        self.register_buffer("_cat_offsets", torch.as_tensor(offsets[cat], dtype=torch.long),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, D)`` encoded rows -> ``(B, n_units)`` network inputs."""
        out = x.new_zeros(x.shape[0], self.n_units)
        if self._dense_cols.numel():
            out[:, self._dense_units] = x[:, self._dense_cols]
        if self._cat_cols.numel():
            idx = self._cat_offsets + x[:, self._cat_cols].long()  # (B, n_cat)
            out.scatter_(1, idx, 1.0)
        return out
