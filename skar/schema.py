"""Columns <-> tensors: column kinds, categories, scaling and the log|Jacobian| of scaling.

A :class:`TabularSchema` is learned from the training data. It gives every column a *kind*:

``binary``
    a ``bool`` column, or a numeric column whose training values are all 0 or 1;
    modelled by a Bernoulli.
``categorical``
    a pandas ``category``, ``object`` or ``string`` column, or any column named in
    ``categorical_features``; its categories become the codes ``0 .. K-1`` of a Categorical.
``continuous``
    any other numeric column; standardised inside with the training mean and standard
    deviation, modelled by a mixture.

Standardising ``z = (x - m) / s`` changes densities by the Jacobian of the map:
``log p_X(x) = log p_Z(z) - sum_d log s_d``, summed over the continuous columns.
:attr:`TabularSchema.log_jacobian` is that constant, so every estimator reports the log density
in the units the user passed, directly comparable with :class:`sklearn.neighbors.KernelDensity`.

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

__all__ = ["ColumnSpec", "OneHotInputs", "TabularSchema"]

KINDS = ("binary", "categorical", "continuous")


@dataclass
class ColumnSpec:
    """What skar learned about one column at fit time.

    Attributes
    ----------
    name : object
        The column label (a DataFrame column name, or the integer position).
    kind : {"binary", "categorical", "continuous"}
    categories : ndarray or None
        For binary and categorical columns, the values that codes ``0 .. K-1`` stand for.
    mean, scale : float
        Standardisation of a continuous column (``scale`` > 0).
    dtype : object
        The column's dtype at fit time, used to give samples back in the same dtype.
    """

    name: Any
    kind: str
    categories: np.ndarray | None = None
    mean: float = 0.0
    scale: float = 1.0
    dtype: Any = field(default=None)

    @property
    def n_categories(self) -> int:
        """Number of categories (2 for binary, 1 for continuous as a convention)."""
        return 1 if self.categories is None else len(self.categories)

    @property
    def label(self) -> str:
        """How error messages name the column."""
        return f"column {self.name!r}" if isinstance(self.name, str) else f"column {self.name}"


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


def _is_missing(values: np.ndarray) -> np.ndarray:
    return np.asarray(pd.isna(values), dtype=bool)


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
    """The columns of a data set: their kinds, categories and scaling.

    Build one with :meth:`from_data`; it then encodes rows to the float32 matrix every network
    reads (:meth:`encode`) and decodes sampled matrices back to the user's kinds and dtypes
    (:meth:`decode`).

    Parameters
    ----------
    columns : list of ColumnSpec
    is_frame : bool
        Whether the training data was a pandas DataFrame (samples are then DataFrames).
    array_dtype : numpy dtype or None
        The dtype of a numpy training array, kept for the samples.
    """

    def __init__(
        self, columns: list[ColumnSpec], is_frame: bool, array_dtype: Any = None
    ) -> None:
        self.columns = columns
        self.is_frame = is_frame
        self.array_dtype = array_dtype

    # ------------------------------------------------------------------ building
    @classmethod
    def from_data(
        cls, X: Any, *, categorical_features: Any = None, n_features: int | None = None
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

        Returns
        -------
        TabularSchema
        """
        is_frame = isinstance(X, pd.DataFrame)
        n_features = X.shape[1]
        names = list(X.columns) if is_frame else list(range(n_features))
        forced = cls._categorical_mask(categorical_features, names)
        columns = []
        for j, name in enumerate(names):
            col = _column(X, j)
            kind, cats = _infer_kind(col, bool(forced[j]))
            dtype = col.dtype
            if kind in ("binary", "categorical"):
                values = np.asarray(col, dtype=object)
                miss = _is_missing(values)
                if miss.any():
                    row, v = _first_bad(values, miss)
                    raise ValueError(
                        f"{_label(name)} holds a missing value ({v!r}) at row {row}; skar "
                        "needs complete rows. Impute or drop missing values first."
                    )
                columns.append(ColumnSpec(name, kind, cats, dtype=dtype))
                continue
            x = _to_float(col, name)
            _check_finite(x, name)
            if np.isin(x, (0.0, 1.0)).all():
                cats = np.array([0, 1], dtype=dtype if np.dtype(dtype).kind in "biuf" else float)
                columns.append(ColumnSpec(name, "binary", cats, dtype=dtype))
                continue
            mean, std = float(x.mean()), float(x.std())
            scale = std if np.isfinite(std) and std > 0 else 1.0
            columns.append(ColumnSpec(name, "continuous", None, mean, scale, dtype))
        array_dtype = None if is_frame else np.asarray(X).dtype
        return cls(columns, is_frame, array_dtype)

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
    def input_sizes(self) -> list[int]:
        """Width of every column in a one-hot input layer (K for categorical, else 1)."""
        return [c.n_categories if c.kind == "categorical" else 1 for c in self.columns]

    @property
    def log_jacobian_per_feature(self) -> np.ndarray:
        """``-log s_d`` for continuous columns, 0 for discrete ones; shape (D,)."""
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
        """The conditional family of every column (Bernoulli, Categorical or Mixture)."""
        fams: list[ConditionalFamily] = []
        for c in self.columns:
            if c.kind == "binary":
                fams.append(Bernoulli())
            elif c.kind == "categorical":
                fams.append(Categorical(c.n_categories))
            else:
                fams.append(Mixture(n_components, component, min_scale))
        return fams

    # ------------------------------------------------------------------ encode / decode
    def encode(self, X: Any) -> np.ndarray:
        """Encode rows to a float32 matrix of 0/1, category codes and standardised values.

        Parameters
        ----------
        X : ndarray or DataFrame of shape (n_samples, n_features)
            Checked to be 2-D, non-empty and of the fitted width.

        Returns
        -------
        ndarray of shape (n_samples, n_features), float32

        Raises
        ------
        ValueError
            On NaN or inf, an unseen category, or a binary column holding something other
            than 0/1; the message names the column, the row and the value.
        TypeError
            When a numeric column holds something that is not a number.
        """
        n = X.shape[0]
        Z = np.empty((n, self.n_features), dtype=np.float32)
        for j, spec in enumerate(self.columns):
            col = _column(X, j)
            if spec.kind == "continuous":
                x = _to_float(col, spec.name)
                _check_finite(x, spec.name)
                Z[:, j] = (x - spec.mean) / spec.scale
            elif spec.kind == "binary" and spec.categories.dtype.kind in "biuf":
                x = _to_float(col, spec.name)
                _check_finite(x, spec.name)
                bad = (x != 0.0) & (x != 1.0)
                if bad.any():
                    row, v = _first_bad(x, bad)
                    raise ValueError(
                        f"{spec.label} is binary (only 0 and 1 were seen in fit), but holds "
                        f"{v!r} at row {row}"
                    )
                Z[:, j] = x
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
                if bad.any():
                    row, v = _first_bad(values, bad)
                    raise ValueError(
                        f"{spec.label} holds the category {v!r} at row {row}, which was not "
                        f"seen in fit; the known categories are {list(spec.categories)}"
                    )
                Z[:, j] = codes
        return Z

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
            non-numeric categories).
        """
        Z = np.asarray(Z, dtype=np.float64)
        out: dict[Any, Any] = {}
        for j, spec in enumerate(self.columns):
            z = Z[:, j]
            if spec.kind == "continuous":
                out[spec.name] = z * spec.scale + spec.mean
            else:
                codes = np.rint(z).astype(np.int64)
                values = spec.categories[codes]
                if self.is_frame:
                    if isinstance(spec.dtype, pd.CategoricalDtype):
                        values = pd.Categorical.from_codes(codes, dtype=spec.dtype)
                    else:
                        values = pd.array(values).astype(spec.dtype)
                out[spec.name] = values
        if self.is_frame:
            frame = pd.DataFrame(out)
            for spec in self.columns:
                if spec.kind == "continuous" and np.dtype(spec.dtype).kind == "f":
                    frame[spec.name] = frame[spec.name].astype(spec.dtype)
            return frame
        cols = [np.asarray(out[spec.name]) for spec in self.columns]
        try:
            arr = np.column_stack([c.astype(np.float64) for c in cols])
        except (TypeError, ValueError):
            return np.column_stack([c.astype(object) for c in cols])
        dt = self.array_dtype
        if dt is not None and dt.kind in "biuf" and (
            dt.kind == "f" or all(c.kind != "continuous" for c in self.columns)
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
