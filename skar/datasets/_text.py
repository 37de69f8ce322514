"""Character-level text: tiny Shakespeare, and the helpers that cut a text into windows of
character codes and turn sampled windows back into strings.

A sequence model in skar reads one sequence per row; for text a row is a window of ``window``
consecutive characters. :func:`text_windows` gives either integer codes (for
``WaveNetDensity(quantization="integer", n_levels=len(vocabulary))``) or a DataFrame whose
every column is a pandas categorical over the *whole* vocabulary (for ``RNNDensity`` and
``ARTransformerDensity``): a column's categories come from its dtype, not from the characters
that happen to occur at that position in the training windows, so no model meets an "unseen"
character at test time. :func:`decode_windows` turns either form back into strings. The text
file ships inside the package (``skar/datasets/data/tinyshakespeare.txt``); nothing is
downloaded.
"""

from __future__ import annotations

from importlib.resources import files
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._sequences import make_windows

__all__ = ["decode_windows", "load_tiny_shakespeare", "text_windows"]

_PACKAGE = "skar.datasets"

_CITATION = (
    "tiny Shakespeare, Andrej Karpathy's char-rnn data set (data/tinyshakespeare/input.txt, "
    "2015), a 1,115,394-character extract of the works of William Shakespeare; provenance in "
    "skar/datasets/data/README.md."
)

_LICENCE = "Public domain (the text of Shakespeare's plays)."

#: nanoGPT's ``shakespeare_char`` split: the first 90% of the characters train.
TRAIN_FRACTION = 0.9


def load_tiny_shakespeare(*, return_text: bool = False) -> Bunch | str:
    """Load tiny Shakespeare, the character-level text of char-RNN (1,115,394 characters).

    ===================  ======================================================
    Characters           1,115,394 (65 distinct: letters, digits 3, punctuation,
                         space and newline)
    Train / test         1,003,854 / 111,540 (nanoGPT's split: the first 90%
                         of the characters train, the last 10% test)
    ===================  ======================================================

    Parameters
    ----------
    return_text : bool, default=False
        Return the whole text as one string instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``text`` (str: the whole file), ``train_text`` and ``test_text`` (the first 90% and
        the last 10% of the characters, cut at ``int(0.9 * len(text))`` as nanoGPT's
        ``prepare.py``), ``vocabulary`` (str: the distinct characters of the whole text,
        sorted, so a character's code is its index), ``DESCR``, ``citation`` and ``licence``.
    text : str
        When ``return_text`` is True.

    Notes
    -----
    Published mean cross-entropy per character on the last 10% (nats): nanoGPT's small CPU
    configuration (4 layers, 4 heads, 128 channels, block of 64 characters) about 1.88, its
    GPU configuration 1.4697; a unigram model about 3.3.

    Examples
    --------
    >>> from skar.datasets._text import load_tiny_shakespeare, text_windows
    >>> data = load_tiny_shakespeare()
    >>> len(data.text), len(data.vocabulary)
    (1115394, 65)
    >>> X, vocabulary = text_windows(data.train_text, window=64, vocabulary=data.vocabulary)
    >>> X.shape
    (15685, 64)
    """
    # newline="" keeps the file's line endings exactly (the published figures count them).
    path = files(_PACKAGE) / "data" / "tinyshakespeare.txt"
    with path.open("r", encoding="utf-8", newline="") as fh:
        text = fh.read()
    if return_text:
        return text
    n_train = int(TRAIN_FRACTION * len(text))
    return Bunch(
        text=text,
        train_text=text[:n_train],
        test_text=text[n_train:],
        vocabulary="".join(sorted(set(text))),
        DESCR=load_tiny_shakespeare.__doc__,
        citation=_CITATION,
        licence=_LICENCE,
    )


def _check_vocabulary(vocabulary: Any) -> list[str]:
    chars = list(vocabulary)
    for c in chars:
        if not isinstance(c, str) or len(c) != 1:
            raise ValueError(
                f"vocabulary must be a string or a sequence of single characters; it holds "
                f"{c!r}"
            )
    if len(set(chars)) != len(chars):
        dup = next(c for i, c in enumerate(chars) if c in chars[:i])
        raise ValueError(f"vocabulary holds the character {dup!r} twice")
    if not chars:
        raise ValueError("vocabulary is empty")
    return chars


def text_windows(
    text: str,
    window: int,
    stride: int | None = None,
    vocabulary: Any = None,
    *,
    as_frame: bool = False,
) -> tuple[np.ndarray | pd.DataFrame, str]:
    """Cut a text into fixed-length windows of character codes, one window per row.

    Row ``i`` holds the characters ``text[i * stride : i * stride + window]``; a tail shorter
    than ``window`` is dropped. A character's code is its index in ``vocabulary``.

    Parameters
    ----------
    text : str
    window : int
        Characters per row (the ``n_features`` of the result).
    stride : int or None, default=None
        Characters between the starts of consecutive windows; None means ``window``
        (non-overlapping windows).
    vocabulary : str, sequence of str or None, default=None
        The alphabet, one character per code; None takes the sorted distinct characters of
        ``text``. Pass the training text's vocabulary when cutting test text, so both use the
        same codes.
    as_frame : bool, default=False
        Return a DataFrame (columns ``"t0"``, ``"t1"``, ...) whose every column is a pandas
        categorical with the whole vocabulary as its categories (a
        :class:`pandas.CategoricalDtype`), holding the characters themselves. Models that
        learn each column's categories from the data (``RNNDensity``,
        ``ARTransformerDensity``) then know every character at every position.

    Returns
    -------
    X : ndarray of shape (n_windows, window), int64, or DataFrame
        Character codes, or (``as_frame=True``) the characters as categorical columns.
    vocabulary : str
        The alphabet used, ``vocabulary[code]`` being the character of ``code``.

    Raises
    ------
    ValueError
        When ``text`` holds a character that is not in ``vocabulary`` (the message names it
        and its offset), or when ``window`` or ``stride`` is not a positive integer or the
        text is shorter than one window.

    See Also
    --------
    decode_windows : The inverse: rows of codes or characters back to strings.
    skar.datasets.make_windows : The same for a numeric series.

    Examples
    --------
    >>> from skar.datasets._text import decode_windows, text_windows
    >>> X, vocabulary = text_windows("to be or not to be", window=6)
    >>> vocabulary
    ' benort'
    >>> X[0]
    array([6, 4, 0, 1, 2, 0])
    >>> decode_windows(X, vocabulary)
    ['to be ', 'or not', ' to be']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    stride = window if stride is None else stride
    for name, value in (("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    chars = sorted(set(text)) if vocabulary is None else _check_vocabulary(vocabulary)
    if not chars:
        raise ValueError("text is empty; there is nothing to cut into windows")
    lookup = np.full(max(map(ord, chars)) + 1, -1, dtype=np.int64)
    lookup[[ord(c) for c in chars]] = np.arange(len(chars))
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    codes = np.where(points < lookup.shape[0], lookup[np.minimum(points, lookup.shape[0] - 1)],
                     -1)
    if (codes < 0).any():
        at = int(np.argmax(codes < 0))
        raise ValueError(
            f"text holds the character {text[at]!r} at offset {at}, which is not in the "
            f"vocabulary ({len(chars)} characters: {''.join(chars)!r}); pass a vocabulary "
            "that includes it"
        )
    X = make_windows(codes, window, stride)
    vocab = "".join(chars)
    if not as_frame:
        return X, vocab
    dtype = pd.CategoricalDtype(categories=chars)
    frame = pd.DataFrame(
        {f"t{t}": pd.Categorical.from_codes(X[:, t], dtype=dtype) for t in range(window)}
    )
    return frame, vocab


def decode_windows(X: Any, vocabulary: Any) -> list[str]:
    """Turn rows of character codes (or of characters) back into strings.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_windows, window)
        Integer codes ``0 .. len(vocabulary) - 1`` (as :func:`text_windows` returns them, or
        as a model fitted on them samples them), or single characters (a DataFrame from
        ``text_windows(..., as_frame=True)`` or a model's sample of one).
    vocabulary : str or sequence of str
        The alphabet ``text_windows`` returned.

    Returns
    -------
    list of str
        One string per row.

    Raises
    ------
    ValueError
        On a code outside ``0 .. len(vocabulary) - 1``, a non-integer code, or a character
        that is not in the vocabulary; the message names the row, the position and the value.
    """
    chars = _check_vocabulary(vocabulary)
    A = X.to_numpy(dtype=object) if isinstance(X, pd.DataFrame) else np.asarray(X)
    if A.ndim != 2:
        raise ValueError(f"X must be 2-D, one window per row; got shape {A.shape}")
    known = set(chars)
    out = []
    for i, row in enumerate(A.tolist()):
        s = []
        for t, v in enumerate(row):
            if isinstance(v, str):
                if v not in known:
                    raise ValueError(
                        f"X holds {v!r} at row {i}, position {t}, which is not in the "
                        "vocabulary"
                    )
                s.append(v)
                continue
            try:
                code = int(v)
                ok = code == v and 0 <= code < len(chars)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(
                    f"X holds {v!r} at row {i}, position {t}, but codes must be integers "
                    f"0 .. {len(chars) - 1} (or characters of the vocabulary)"
                )
            s.append(chars[code])
        out.append("".join(s))
    return out
