"""Text data: tiny Shakespeare, windows of character codes and their decoding, and the three
sequence models (RNN, Transformer, WaveNet) fitting and scoring such windows."""

import hashlib
from importlib.resources import files

import numpy as np
import pandas as pd
import pytest

from skar.datasets._text import decode_windows, load_tiny_shakespeare, text_windows
from skar.models.rnn import RNNDensity
from skar.models.transformer import ARTransformerDensity
from skar.models.wavenet import WaveNetDensity


@pytest.fixture(scope="module")
def shakespeare():
    return load_tiny_shakespeare()


# ---------------------------------------------------------------------------- the data set
def test_tiny_shakespeare_is_the_char_rnn_file_with_nanogpts_split(shakespeare):
    raw = (files("skar.datasets") / "data" / "tinyshakespeare.txt").read_bytes()
    assert hashlib.md5(raw).hexdigest() == "6fb458f1232090904fb40fe944165e91"
    text = shakespeare.text
    assert text == raw.decode("utf-8") == load_tiny_shakespeare(return_text=True)
    assert len(text) == 1_115_394
    assert shakespeare.vocabulary == "".join(sorted(set(text)))
    assert len(shakespeare.vocabulary) == 65
    # nanoGPT's data/shakespeare_char/prepare.py: n = len(data); data[:int(n*0.9)], rest.
    assert len(shakespeare.train_text) == int(len(text) * 0.9) == 1_003_854
    assert len(shakespeare.test_text) == 111_540
    assert shakespeare.train_text + shakespeare.test_text == text
    assert shakespeare.train_text.startswith("First Citizen:\nBefore we proceed")
    assert "public domain" in shakespeare.licence.lower()


# ---------------------------------------------------------------------------- windows
def test_windows_hold_the_codes_of_the_characters_and_decode_back():
    text = "to be, or not to be: that is the question"
    X, vocab = text_windows(text, window=5, stride=3)
    assert vocab == "".join(sorted(set(text)))
    assert X.dtype == np.int64 and X.shape == (1 + (len(text) - 5) // 3, 5)
    for i, row in enumerate(X):
        assert "".join(vocab[c] for c in row) == text[3 * i : 3 * i + 5]
    assert decode_windows(X, vocab) == [text[3 * i : 3 * i + 5] for i in range(len(X))]
    X2, _ = text_windows(text, window=5)  # stride defaults to the window: no overlap
    assert "".join(decode_windows(X2, vocab)) == text[: 5 * (len(text) // 5)]


def test_frame_windows_give_every_position_the_whole_vocabulary():
    text = "abcabcabcabd"
    frame, vocab = text_windows(text, window=3, as_frame=True)
    assert list(frame.columns) == ["t0", "t1", "t2"]
    for col in frame.columns:
        # "d" occurs only at the last position, yet every column knows it.
        assert isinstance(frame[col].dtype, pd.CategoricalDtype)
        assert list(frame[col].cat.categories) == list(vocab) == list("abcd")
    assert decode_windows(frame, vocab) == ["abc", "abc", "abc", "abd"]
    codes, _ = text_windows(text, window=3)
    np.testing.assert_array_equal(
        np.column_stack([frame[c].cat.codes for c in frame.columns]), codes)


def test_a_given_vocabulary_fixes_the_codes():
    X, vocab = text_windows("ba", window=2, vocabulary="abc")
    assert vocab == "abc"
    np.testing.assert_array_equal(X, [[1, 0]])


@pytest.mark.parametrize(
    "call,pattern",
    [
        (lambda: text_windows("abcz", 2, vocabulary="abc"),
         r"character 'z' at offset 3, which is not in the vocabulary"),
        (lambda: text_windows("abc", 0), "window must be a positive integer"),
        (lambda: text_windows("abc", 2, stride=0), "stride must be a positive integer"),
        (lambda: text_windows("abc", 4), "window=4 is longer than the series"),
        (lambda: text_windows("", 1), "text is empty"),
        (lambda: text_windows("abc", 2, vocabulary="aab"), "'a' twice"),
        (lambda: text_windows("abc", 2, vocabulary=["ab", "c"]), "single characters"),
        (lambda: decode_windows([[0, 3]], "abc"), r"3 at row 0, position 1"),
        (lambda: decode_windows([[0.5]], "abc"), r"0.5 at row 0, position 0"),
        (lambda: decode_windows(np.array([["a", "z"]], dtype=object), "abc"),
         r"'z' at row 0, position 1, which is not in the vocabulary"),
        (lambda: decode_windows([0, 1], "abc"), "must be 2-D"),
    ],
)
def test_bad_input_is_named(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_text_must_be_a_string():
    with pytest.raises(TypeError, match="text must be a str"):
        text_windows(["a", "b"], 1)


# ---------------------------------------------------------------------------- the models
FIT = dict(max_iter=3, batch_size=50, learning_rate_init=1e-2, early_stopping=False,
           random_state=0)


@pytest.fixture(scope="module")
def windows(shakespeare):
    """200 training windows of 16 characters and 40 test windows, from the two halves of
    nanoGPT's split, with the vocabulary of the whole text."""
    vocab = shakespeare.vocabulary
    train, _ = text_windows(shakespeare.train_text[:3200], 16, vocabulary=vocab, as_frame=True)
    test, _ = text_windows(shakespeare.test_text[:640], 16, vocabulary=vocab, as_frame=True)
    return train, test, vocab


def _unseen_at_its_position(train, test):
    """A (row, position) of the test windows whose character never occurs at that position
    in the training windows."""
    for t, col in enumerate(train.columns):
        seen = set(train[col])
        for i, c in enumerate(test[col]):
            if c not in seen:
                return i, t
    raise AssertionError("every test character occurs at its position in training")


@pytest.mark.parametrize(
    "make",
    [
        lambda: RNNDensity(hidden_size=16, tie_columns=True, **FIT),
        lambda: ARTransformerDensity(d_model=16, n_heads=2, n_layers=1, **FIT),
    ],
    ids=["rnn", "transformer"],
)
def test_rnn_and_transformer_fit_score_and_sample_character_windows(windows, make):
    train, test, vocab = windows
    est = make().fit(train)
    i, t = _unseen_at_its_position(train, test)
    scores = est.score_samples(test)
    assert np.isfinite(scores).all() and (scores < 0).all()
    # Every window is a log-probability over the 65^16 strings: above the uniform bound
    # -16 log 65 on average once fitted a little, and a character never seen at its
    # position is still possible.
    assert scores.mean() > -16 * np.log(65)
    assert np.isfinite(est.score_samples_per_feature(test)[i, t])
    samples = est.sample(3, random_state=0)
    strings = decode_windows(samples, vocab)
    assert len(strings) == 3 and all(len(s) == 16 and set(s) <= set(vocab) for s in strings)


def test_wavenet_fits_score_and_samples_character_codes(shakespeare):
    vocab = shakespeare.vocabulary
    train, _ = text_windows(shakespeare.train_text[:3200], 16, vocabulary=vocab)
    test, _ = text_windows(shakespeare.test_text[:640], 16, vocabulary=vocab)
    est = WaveNetDensity(n_layers_per_block=3, residual_channels=8, dilation_channels=8,
                         skip_channels=8, quantization="integer", n_levels=len(vocab),
                         **FIT).fit(train)
    scores = est.score_samples(test)
    assert np.isfinite(scores).all() and scores.mean() > -16 * np.log(65)
    strings = decode_windows(est.sample(3, random_state=0), vocab)
    assert all(len(s) == 16 and set(s) <= set(vocab) for s in strings)


def test_rnn_on_text_windows_is_a_distribution_over_strings():
    """On a 3-letter alphabet and windows of 4, the probabilities of all 3^4 strings sum to
    one, including strings whose letters never occur at some position in training."""
    frame, vocab = text_windows("aabacabaab" * 20, window=4, stride=2, as_frame=True)
    frame.iloc[:, 0] = "a"  # position 0 only ever holds "a" in training
    est = RNNDensity(hidden_size=8, tie_columns=True, max_iter=3, early_stopping=False,
                     random_state=0).fit(frame)
    space, _ = text_windows("".join(
        a + b + c + d for a in vocab for b in vocab for c in vocab for d in vocab), window=4,
        vocabulary=vocab, as_frame=True)
    assert len(space) == 81
    assert np.exp(est.score_samples(space)).sum() == pytest.approx(1.0, abs=1e-5)
