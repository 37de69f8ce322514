"""Real data sets bundled with skar (nothing is downloaded at run time).

- :func:`load_wine_quality`, :func:`load_parkinsons`, :func:`load_ionosphere`,
  :func:`load_boston_housing`: the UCI data sets of the RNADE paper (Uria, Murray & Larochelle,
  2013), scikit-learn style (:class:`~sklearn.utils.Bunch` or ``(X, y)``), optionally with the
  paper's column selection (``preprocess=True``).
- :func:`load_rnade_uci`: the RNADE-preprocessed matrix by name, and
  :data:`RNADE_UCI_PUBLISHED`, the published test log-likelihoods.
- :func:`load_binarized_mnist`: binarized MNIST with the fixed Larochelle & Murray split, and
  :data:`BINARIZED_MNIST_PUBLISHED`, published test negative log-likelihoods.
- :func:`load_sunspots`: the monthly mean sunspot number 1749-2009, a long real series, and
  :func:`make_windows`, which cuts a series into one window per row for the sequence models.

Provenance, citations and licences of the bundled files are in ``skar/datasets/data/README.md``.
"""

from ._mnist import BINARIZED_MNIST_PUBLISHED, load_binarized_mnist
from ._sequences import load_sunspots, make_windows
from ._uci import (
    RNADE_UCI_PUBLISHED,
    load_boston_housing,
    load_ionosphere,
    load_parkinsons,
    load_rnade_uci,
    load_wine_quality,
)

__all__ = [
    "BINARIZED_MNIST_PUBLISHED",
    "RNADE_UCI_PUBLISHED",
    "load_binarized_mnist",
    "load_boston_housing",
    "load_ionosphere",
    "load_parkinsons",
    "load_rnade_uci",
    "load_sunspots",
    "load_wine_quality",
    "make_windows",
]
