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
- :func:`load_tiny_shakespeare`: tiny Shakespeare (char-rnn, 1,115,394 characters, nanoGPT's
  90/10 split), :func:`text_windows`, which cuts a text into windows of character codes (or a
  DataFrame of categorical columns over the whole alphabet), and :func:`decode_windows`, which
  turns rows back into strings.
- :func:`load_shakespeare_speeches`: the 7,097 speeches of tiny Shakespeare as documents (the
  125 speaker-only blocks left out), and :func:`words_to_ids`, which turns texts into word-id
  sequences over a vocabulary cut at a frequency, with ``<unk>`` as id 0.

Provenance, citations and licences of the bundled files are in ``skar/datasets/data/README.md``.
"""

from ._documents import load_shakespeare_speeches, words_to_ids
from ._mnist import BINARIZED_MNIST_PUBLISHED, load_binarized_mnist
from ._sequences import load_sunspots, make_windows
from ._text import decode_windows, load_tiny_shakespeare, text_windows
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
    "decode_windows",
    "load_binarized_mnist",
    "load_boston_housing",
    "load_ionosphere",
    "load_parkinsons",
    "load_rnade_uci",
    "load_shakespeare_speeches",
    "load_sunspots",
    "load_tiny_shakespeare",
    "load_wine_quality",
    "make_windows",
    "text_windows",
    "words_to_ids",
]
