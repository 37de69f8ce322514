"""Documents bundled with skar: the speeches of tiny Shakespeare, and a word-id helper.

A document model in skar (:class:`skar.models.docnade.DocNADEDensity`) reads documents as
sequences of word ids. :func:`load_shakespeare_speeches` returns the 7,222 speeches of tiny
Shakespeare as text, and :func:`words_to_ids` turns texts into id sequences over a vocabulary
cut at a frequency, with the rare and unseen words mapped to ``<unk>``. The text file ships
inside the package (``skar/datasets/data/tinyshakespeare.txt``); nothing is downloaded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib.resources import files
from numbers import Integral

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_shakespeare_speeches", "words_to_ids"]

_PACKAGE = "skar.datasets"

# Lower-case letter runs with inner apostrophes ("know't", "o'", "'tis" keep theirs): a word
# is what a reader of the plays would call one; punctuation and digits are dropped.
WORD_PATTERN = r"[a-z]+(?:'[a-z]+)*'?|'[a-z]+"

_SHAKESPEARE_CITATION = (
    "tiny Shakespeare, Andrej Karpathy's char-rnn data set (data/tinyshakespeare/input.txt), "
    "a 1,115,394-character extract of the works of William Shakespeare; provenance in "
    "skar/datasets/data/README.md."
)

_SHAKESPEARE_LICENCE = "Public domain (the text of Shakespeare's plays)."


def load_shakespeare_speeches(*, return_X_y: bool = False) -> Bunch | tuple[list[str], None]:
    """Load the 7,097 speeches of tiny Shakespeare, one document per speech.

    The file is a sequence of 7,222 blocks separated by blank lines; each block is one speech,
    a speaker line (``"First Citizen:"``) followed by the spoken lines. The document is the
    spoken text (the speaker's name is kept apart, in ``speaker``), in file order. The 125
    blocks that hold a speaker line and nothing else (cuts of the extract) are left out.

    =================  =====================================================
    Documents          7,097 speeches
    Words              194,022 in all (as :func:`words_to_ids` splits them);
                       mean 27.3 per speech, median 14, 90th percentile 64,
                       shortest 1, longest 581
    Vocabulary         12,595 distinct words, 6,892 of them seen at least twice
    Speakers           the ``speaker`` field, as written (upper or title case)
    =================  =====================================================

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(texts, None)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (list of 7,097 str: the spoken lines of every speech, joined by newlines),
        ``speaker`` (list of str, same length), ``DESCR``, ``citation`` and ``licence``.
    (texts, None) : tuple
        When ``return_X_y`` is True.

    Examples
    --------
    >>> from skar.datasets import load_shakespeare_speeches
    >>> speeches = load_shakespeare_speeches()
    >>> len(speeches.data)
    7097
    >>> speeches.speaker[0], speeches.data[0]
    ('First Citizen', 'Before we proceed any further, hear me speak.')
    """
    text = (files(_PACKAGE) / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    speakers, texts = [], []
    # Blocks are separated by one or more blank lines (a few have two).
    for block in re.split(r"\n\s*\n", text):
        block = block.strip("\n")
        if not block.strip():
            continue
        head, _, body = block.partition("\n")
        if not head.endswith(":"):
            raise ValueError(  # a damaged file, not user input
                f"tinyshakespeare.txt: the block starting {head[:40]!r} has no speaker line"
            )
        if not body.strip():
            continue
        speakers.append(head[:-1].strip())
        texts.append(body)
    if return_X_y:
        return texts, None
    return Bunch(
        data=texts,
        speaker=speakers,
        DESCR=load_shakespeare_speeches.__doc__,
        citation=_SHAKESPEARE_CITATION,
        licence=_SHAKESPEARE_LICENCE,
    )


def words_to_ids(
    texts: Iterable[str],
    *,
    vocabulary: Sequence[str] | None = None,
    min_count: int = 2,
    unk: str = "<unk>",
) -> tuple[list[np.ndarray], list[str]]:
    """Tokenise texts into words and map them to integer ids.

    A word is a lower-cased run of letters with inner apostrophes (:data:`WORD_PATTERN`);
    punctuation, digits and line breaks are dropped, the order of the words is kept. Without
    a ``vocabulary``, one is learned from ``texts``: id 0 is ``unk``, then every word that
    occurs at least ``min_count`` times, most frequent first (ties in alphabetical order).
    Every other word -- rarer in ``texts``, or absent from the given ``vocabulary`` -- becomes
    id 0. Learn the vocabulary on the training texts and pass it for the test texts, so the
    test words the training never saw are ``<unk>``.

    Parameters
    ----------
    texts : iterable of str
        The documents.
    vocabulary : sequence of str, default=None
        The words of ids ``0, 1, ...`` (as returned by a previous call); ``None`` learns it.
    min_count : int, default=2
        Frequency cut when learning the vocabulary.
    unk : str, default="<unk>"
        The out-of-vocabulary token, id 0 of a learned vocabulary; a given ``vocabulary``
        must contain it.

    Returns
    -------
    ids : list of ndarray of int64
        One 1-D array of word ids per text (possibly empty).
    vocabulary : list of str
        The words of the ids.

    Examples
    --------
    >>> from skar.datasets import words_to_ids
    >>> ids, vocab = words_to_ids(["To be, or not to be", "to sleep"], min_count=2)
    >>> vocab
    ['<unk>', 'to', 'be']
    >>> [list(map(int, d)) for d in ids]
    [[1, 2, 0, 0, 1, 2], [1, 0]]
    """
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of documents (str), not one str; wrap it in [ ]")
    if isinstance(min_count, bool) or not isinstance(min_count, Integral) or min_count < 1:
        raise ValueError(f"min_count must be a positive integer; got {min_count!r}")
    pattern = re.compile(WORD_PATTERN)
    tokens = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] must be a str; got {type(t).__name__}")
        tokens.append(pattern.findall(t.lower()))
    if vocabulary is None:
        counts = Counter(w for doc in tokens for w in doc)
        kept = sorted((w for w, c in counts.items() if c >= min_count and w != unk),
                      key=lambda w: (-counts[w], w))
        vocabulary = [unk, *kept]
    else:
        vocabulary = list(vocabulary)
        if unk not in vocabulary:
            raise ValueError(f"vocabulary must contain the unknown-word token {unk!r}")
    index = {w: i for i, w in enumerate(vocabulary)}
    unk_id = index[unk]
    ids = [np.array([index.get(w, unk_id) for w in doc], dtype=np.int64) for doc in tokens]
    return ids, vocabulary
