"""What the meta-estimators (:class:`skar.DensityOutlierDetector`, :class:`skar.DensityEnsemble`)
share: input checks and tags that leave the column kinds to the estimator they wrap."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.utils import get_tags
from sklearn.utils.validation import validate_data


def check_passthrough_X(meta: Any, X: Any, *, reset: bool) -> Any:
    """Check the width and feature names of ``X`` for ``meta``; DataFrames stay DataFrames
    (mixed kinds are the inner estimator's business), anything else becomes a 2-D array of its
    own dtype. Numeric conversion and NaN/inf messages belong to the inner estimator, which
    knows which columns may hold text."""
    if isinstance(X, pd.DataFrame):
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(
                f"Found array with {X.shape[0]} sample(s) and {X.shape[1]} feature(s) "
                f"(shape={X.shape}) while a minimum of 1 sample and 1 feature is required."
            )
        validate_data(meta, X, reset=reset, skip_check_array=True)
        return X
    return validate_data(
        meta, X, reset=reset, dtype=None, ensure_all_finite=False, accept_sparse=False
    )


def passthrough_tags(tags: Any, inner: Any) -> Any:
    """``tags`` with the input kinds and determinism of the estimator ``inner``."""
    inner_tags = get_tags(inner)
    tags.input_tags.allow_nan = inner_tags.input_tags.allow_nan
    tags.input_tags.categorical = inner_tags.input_tags.categorical
    tags.input_tags.string = inner_tags.input_tags.string
    tags.input_tags.sparse = False
    tags.non_deterministic = inner_tags.non_deterministic
    return tags
