"""DocNADE on the speeches of tiny Shakespeare: held-out perplexity against a unigram model
and a recurrent network over words.

The data: the 7,097 speeches of :func:`skar.datasets.load_shakespeare_speeches`, one document
each, split once into 90% training and 10% test speeches by a seeded permutation (seed 0, the
same in every run). Words by :func:`skar.datasets.words_to_ids`: lower-cased letter runs with
inner apostrophes; the vocabulary is every word seen at least ``--min-count`` (default 3)
times in the training speeches, plus ``<unk>`` (id 0) for every other word, in both splits.

The models, all scored on the same test word ids:

* a unigram model, computed here independently of skar: add-one (Laplace) smoothed word
  frequencies of the training speeches, :math:`\\log p(v) = \\sum_i \\log q(v_i)`;
* ``DocNADEDensity`` with the full softmax, and with the binary-tree softmax over a balanced
  tree and over a Huffman (frequency) tree; the same hidden size, learning rate, epochs and
  seed. Early stopping holds out 10% of the training speeches.

Perplexity is given both ways (see :meth:`DocNADEDensity.perplexity`): the paper's, the
mean per-word NLL of each document averaged over documents, and the corpus one, every word
weighing the same. Fit time is wall-clock on this machine, one torch thread.

**Against a recurrent network over words** (``--part words``). ``RNNDensity`` is a tabular
model with a fixed number of columns, so this part compares the models on fixed-length
documents: the first ``L`` words (``--length``, default 20) of every speech that has at least
``L`` words; shorter speeches are left out of both splits, none is padded. Each row is one
such document, ``L`` categorical columns whose categories are all the same full vocabulary
(a :class:`pandas.CategoricalDtype`, as :func:`skar.datasets.text_windows` builds for
characters), so ``tie_columns=True`` gives one word embedding and one softmax head shared by
every position (a word-level char-RNN), and a test word is never a new category. The
vocabulary and the split are the ones above. Every model is trained on the same training rows
(``--train-rows first``: the first ``L`` words of each long-enough training speech;
``all``: every non-overlapping ``L``-word window of every training speech) and scored on the
same test rows, so the numbers are comparable:

* the add-one unigram of the training rows' words;
* ``DocNADEDensity`` (full softmax, and Huffman-tree softmax) on the rows as documents of
  length ``L``;
* ``RNNDensity`` (LSTM, ``tie_columns=True``, hidden size = DocNADE's, so the two have about
  the same number of weights: a V x H embedding and an H x V softmax each);
* with ``--transformer``, ``ARTransformerDensity``, which has no tied columns: a separate
  embedding and softmax per position;
* for reference, DocNADE (Huffman tree) trained on the whole training speeches (about 3.6
  times more words, its natural protocol), scored on the same test rows.

DocNADE's score is :math:`\\log p(v \\mid \\text{length } L)` and the RNN's is the joint of
``L`` fixed columns; neither has an end-of-document symbol, and both are products of the
conditionals :math:`p(v_i \\mid v_{<i})` of the first ``L`` words, so both are the probability
of a speech's first ``L`` words. All documents have ``L`` words, so per-document and
corpus perplexities coincide: :math:`\\exp(-\\sum \\log p / (n L))`.

Usage::

    nice -n 19 python benchmarks/docnade/run.py --quick --part speeches  # 3 epochs
    nice -n 19 python benchmarks/docnade/run.py --part speeches  # up to 100, early stopping
    nice -n 19 python benchmarks/docnade/run.py --quick --part words  # at most 8 epochs
    nice -n 19 python benchmarks/docnade/run.py --part words --transformer

The speeches part writes ``benchmarks/results/docnade_quick.md`` (quick) or ``docnade.md``,
the words part ``results/docnade_words_quick.md`` or ``results/docnade_words.md``;
``--part all`` (the default) runs both.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from skar.datasets._documents import load_shakespeare_speeches, words_to_ids
from skar.models.docnade import DocNADEDensity
from skar.models.rnn import RNNDensity
from skar.models.transformer import ARTransformerDensity

RESULTS = Path(__file__).resolve().parents[1] / "results"


def split_speeches(texts: list[str], test_fraction: float = 0.1, seed: int = 0):
    """The fixed 90/10 split of speeches (a seeded permutation; ``seed`` never changes)."""
    order = np.random.RandomState(seed).permutation(len(texts))
    n_test = int(round(test_fraction * len(texts)))
    return [texts[i] for i in order[n_test:]], [texts[i] for i in order[:n_test]]


def unigram_scores(train: list[np.ndarray], test: list[np.ndarray], V: int) -> np.ndarray:
    """log p(document) under the add-one smoothed unigram model of the training words."""
    counts = np.bincount(np.concatenate(train), minlength=V).astype(np.float64) + 1.0
    log_q = np.log(counts / counts.sum())
    return np.array([log_q[d].sum() for d in test])


def perplexities(scores: np.ndarray, lengths: np.ndarray) -> tuple[float, float]:
    """(paper's per-document-averaged perplexity, corpus perplexity)."""
    return (float(np.exp(-np.mean(scores / lengths))),
            float(np.exp(-scores.sum() / lengths.sum())))


def fixed_length_rows(docs: list[np.ndarray], L: int, rows: str = "first") -> np.ndarray:
    """``(n, L)`` word ids: the first ``L`` words of every document with at least ``L``
    (``rows="first"``), or every non-overlapping ``L``-word window (``rows="all"``)."""
    if rows == "first":
        kept = [d[:L] for d in docs if len(d) >= L]
    else:
        kept = [d[k * L:(k + 1) * L] for d in docs for k in range(len(d) // L)]
    return np.stack(kept).astype(np.int64)


def word_frame(X: np.ndarray, V: int) -> pd.DataFrame:
    """Rows of word ids as ``L`` categorical columns sharing the whole vocabulary ``0..V-1`` as
    categories, so tied columns share one embedding and head and no test id is a new
    category."""
    dtype = pd.CategoricalDtype(np.arange(V))
    return pd.DataFrame({f"w{i}": pd.Categorical(X[:, i], dtype=dtype)
                         for i in range(X.shape[1])})


def n_weights(model) -> int:
    return sum(p.numel() for p in model.net_.module_.parameters())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="speeches: 3 epochs, no early stopping; words: at most 8 epochs, "
                             "early stopping with patience 3")
    parser.add_argument("--part", choices=["speeches", "words", "all"], default="all")
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--n-hidden", type=int, default=50)
    parser.add_argument("--max-iter", type=int, default=None)
    parser.add_argument("--length", type=int, default=20,
                        help="words part: words per document (the first L of each speech)")
    parser.add_argument("--train-rows", choices=["first", "all"], default="first",
                        help="words part: the first L words of each training speech, or every "
                             "non-overlapping L-word window")
    parser.add_argument("--transformer", action="store_true",
                        help="words part: add an ARTransformerDensity row")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None,
                        help="output file (with --part all, of the speeches part)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    print(f"load average {load:.1f}", flush=True)

    train_texts, test_texts = split_speeches(load_shakespeare_speeches().data)
    train, vocab = words_to_ids(train_texts, min_count=args.min_count)
    test, _ = words_to_ids(test_texts, vocabulary=vocab)
    if args.part in ("speeches", "all"):
        run_speeches(args, train, test, vocab, load)
    if args.part in ("words", "all"):
        run_words(args, train, test, vocab, load)


def machine_line(args: argparse.Namespace, load: float) -> str:
    return (f"Machine: {platform.machine()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch thread(s), device {args.device}; 1-minute load "
            f"average at the start {load:.1f} (above 0 means other work shared the cores).")


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in ["benchmarks/docnade/run.py",
                                                          *sys.argv[1:]])


def run_speeches(args: argparse.Namespace, train: list[np.ndarray], test: list[np.ndarray],
                 vocab: list[str], load: float) -> None:
    """DocNADE's three outputs against the unigram, on whole speeches."""
    max_iter = args.max_iter or (3 if args.quick else 100)
    out = args.out or RESULTS / ("docnade_quick.md" if args.quick else "docnade.md")
    V = len(vocab)
    lengths = np.array([len(d) for d in test])
    keep = lengths > 0  # a test speech may hold no word (only punctuation); none here
    test, lengths = [d for d, k in zip(test, keep) if k], lengths[keep]
    n_words_train = sum(len(d) for d in train)
    unk_rate = float(np.mean(np.concatenate(test) == 0))
    print(f"V={V}, {len(train)} train / {len(test)} test speeches, "
          f"{n_words_train} / {lengths.sum()} words, <unk> rate in test {unk_rate:.3f}",
          flush=True)

    rows = []
    uni = unigram_scores(train, test, V)
    rows.append(("unigram (add-one)", "-", "-", *perplexities(uni, lengths), "-", "-"))
    configs = [("softmax", "balanced", "DocNADE, full softmax"),
               ("tree", "balanced", "DocNADE, tree softmax (balanced)"),
               ("tree", "frequency", "DocNADE, tree softmax (Huffman)")]
    for output, tree, name in configs:
        model = DocNADEDensity(
            args.n_hidden, output=output, tree=tree, vocabulary_size=V, max_iter=max_iter,
            learning_rate_init=3e-3, batch_size=64, early_stopping=not args.quick,
            n_iter_no_change=5, tol=0.01, random_state=0, device=args.device)
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores = model.score_samples(test)
        score_s = time.perf_counter() - t0
        ppl = perplexities(scores, lengths)
        assert np.isclose(ppl[0], model.perplexity(test))
        assert np.isclose(ppl[1], model.perplexity(test, average="words"))
        # Nodes visited per test word: the tree's cost per word, in units of H.
        depth = (f"{model.net_.module_.path_mask.sum(1).numpy()[np.concatenate(test)].mean():.1f}"
                 if output == "tree" else "-")
        rows.append((name, model.n_iter_, depth, *ppl, f"{fit_s:.1f}",
                     f"{1e6 * score_s / lengths.sum():.1f}"))
        print(rows[-1], flush=True)

    lines = [
        "# DocNADE: held-out perplexity on the speeches of tiny Shakespeare",
        "",
        f"Command: `{command_line()}`  ",
        machine_line(args, load),
        "",
        f"Data: {len(train)} training and {len(test)} test speeches (fixed seeded 90/10 split),"
        f" {n_words_train:,} and {int(lengths.sum()):,} words; vocabulary: the {V - 1:,} words "
        f"seen at least {args.min_count} times in the training speeches plus `<unk>` "
        f"({100 * unk_rate:.1f}% of the test words are `<unk>`).",
        "",
        f"DocNADE: {args.n_hidden} sigmoid hidden units, Adam 3e-3, batches of 64 speeches, "
        + (f"{max_iter} epochs" if args.quick else
           f"at most {max_iter} epochs with early stopping (10% of the training speeches, "
           "patience 5)") + ", seed 0.",
        "",
        "| model | epochs | tree nodes per test word | perplexity (per document, paper) "
        "| perplexity (per word, corpus) | fit (s) | scoring (us/word) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ep, depth, p_doc, p_word, fit_s, score_us in rows:
        lines.append(f"| {name} | {ep} | {depth} | {p_doc:.1f} | {p_word:.1f} | {fit_s} "
                     f"| {score_us} |")
    lines += [
        "",
        "Perplexity per document: exp of minus the mean over test speeches of each speech's "
        "mean per-word log-probability (Larochelle & Lauly 2012); per word: exp of minus the "
        "total log-probability over the total number of words. The unigram model is computed "
        "in this script (add-one smoothed training counts), not by skar. With early "
        "stopping, *epochs* counts every epoch run; the weights of the best validation epoch "
        "(5 earlier when the patience ran out) are the ones scored. *Tree nodes per test "
        "word* is the tree's cost per word in units of H (the full softmax's is V).",
    ]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def run_words(args: argparse.Namespace, train: list[np.ndarray], test: list[np.ndarray],
              vocab: list[str], load: float) -> None:
    """Unigram, DocNADE, RNNDensity (and ARTransformerDensity) on the same fixed-length rows."""
    L = args.length
    max_iter = args.max_iter or (8 if args.quick else 100)
    patience = 3 if args.quick else 5
    out = args.out if args.part == "words" and args.out else RESULTS / (
        "docnade_words_quick.md" if args.quick else "docnade_words.md")
    V = len(vocab)
    Xtr = fixed_length_rows(train, L, args.train_rows)
    Xte = fixed_length_rows(test, L, "first")
    n_words = Xte.size
    unk_rate = float(np.mean(Xte == 0))
    n_long = sum(len(d) >= L for d in train)
    print(f"L={L}: {len(Xtr)} training rows ({args.train_rows}), {len(Xte)} test rows, "
          f"<unk> rate in test {unk_rate:.3f}", flush=True)
    Ftr, Fte = word_frame(Xtr, V), word_frame(Xte, V)
    H = args.n_hidden
    common = dict(max_iter=max_iter, learning_rate_init=3e-3, batch_size=64,
                  early_stopping=True, n_iter_no_change=patience, tol=0.01, random_state=0,
                  device=args.device)

    # (name, training rows, factory, fit data, score data)
    uni = unigram_scores(list(Xtr), list(Xte), V)
    results = [("unigram (add-one)", args.train_rows, V - 1, "-", uni, "-", "-")]
    runs = [
        ("DocNADE, full softmax", args.train_rows,
         lambda: DocNADEDensity(H, output="softmax", vocabulary_size=V, **common),
         list(Xtr), list(Xte)),
        ("DocNADE, tree softmax (Huffman)", args.train_rows,
         lambda: DocNADEDensity(H, output="tree", tree="frequency", vocabulary_size=V,
                                **common),
         list(Xtr), list(Xte)),
        ("RNNDensity, LSTM, tie_columns=True", args.train_rows,
         lambda: RNNDensity("lstm", H, tie_columns=True, **common), Ftr, Fte),
    ]
    if args.transformer:
        # No tie_columns: one embedding and one softmax per position. n_heads must divide
        # d_model (2 divides the default 50).
        runs.append(("ARTransformerDensity, 1 block (untied)", args.train_rows,
                     lambda: ARTransformerDensity(n_layers=1, n_heads=2, d_model=H,
                                                  patience_fraction=0.0, refit=False,
                                                  average_weights=0.0, lr_schedule=None,
                                                  **common),
                     Ftr, Fte))
    runs.append(("DocNADE, tree softmax (Huffman)", "whole speeches",
                 lambda: DocNADEDensity(H, output="tree", tree="frequency", vocabulary_size=V,
                                        **common),
                 train, list(Xte)))
    for name, rows, make, fit_X, score_X in runs:
        model = make()
        t0 = time.perf_counter()
        model.fit(fit_X)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores = np.asarray(model.score_samples(score_X), dtype=np.float64)
        score_s = time.perf_counter() - t0
        if not np.all(np.isfinite(scores)):
            raise RuntimeError(f"{name}: non-finite test log-probabilities")
        valid = model.history_["valid_nll"].to_numpy(dtype=float)
        best = int(np.nanargmin(valid)) + 1 if np.isfinite(valid).any() else model.n_iter_
        results.append((name, rows, n_weights(model), f"{model.n_iter_} ({best})", scores,
                        f"{fit_s:.1f}", f"{1e6 * score_s / n_words:.1f}"))
        print(name, rows, model.n_iter_, float(np.exp(-scores.sum() / n_words)),
              f"{fit_s:.1f}s", flush=True)

    rows_text = ("the first {L} words of each of the {n:,} training speeches with at least {L} "
                 "words" if args.train_rows == "first" else
                 "every non-overlapping {L}-word window of the {n_all:,} training speeches "
                 "(a tail shorter than {L} dropped)")
    lines = [
        "# DocNADE against a word-level RNN: held-out perplexity on the first "
        f"{L} words of tiny Shakespeare speeches",
        "",
        f"Command: `{command_line()}`  ",
        machine_line(args, load),
        "",
        f"Data: the fixed seeded 90/10 split of speeches and the vocabulary of the speeches "
        f"benchmark ({V - 1:,} words seen at least {args.min_count} times in the training "
        f"speeches, plus `<unk>`). Test rows: the first {L} words of each of the {len(Xte)} "
        f"test speeches with at least {L} words ({n_words:,} words, {100 * unk_rate:.1f}% "
        "`<unk>`); shorter speeches are left out, nothing is padded. Training rows: "
        + rows_text.format(L=L, n=n_long, n_all=len(train))
        + f" ({len(Xtr):,} rows, {Xtr.size:,} words); every model but the last row's is "
        "trained on exactly these rows and all are scored on exactly these test rows.",
        "",
        f"Models: hidden width {H} for all (DocNADE's sigmoid layer, the LSTM's state"
        + (", the transformer's d_model" if args.transformer else "")
        + f"), Adam 3e-3, batches of 64 rows, at most {max_iter} epochs with early stopping "
        f"(10% of the training rows held out, patience {patience}, tol 0.01 nats per row), "
        "seed 0. The RNN's rows are "
        f"{L} categorical columns that all have the whole vocabulary as categories, with "
        "`tie_columns=True`: one word embedding and one softmax head for every position.",
        "",
        "| model | trained on | weights | epochs (best) | perplexity per word | nats/word better "
        "than the unigram (± s.e. over test rows) | fit (s) | scoring (us/word) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows, weights, ep, scores, fit_s, score_us in results:
        ppl = float(np.exp(-scores.sum() / n_words))
        gain = (scores - uni) / L  # per-row, per-word gain over the unigram: paired
        gain_text = ("-" if scores is uni else
                     f"{gain.mean():+.3f} ± {gain.std(ddof=1) / np.sqrt(len(gain)):.3f}")
        rows_name = ("whole speeches" if rows == "whole speeches" else
                     f"{len(Xtr):,} rows ({rows})")
        lines.append(f"| {name} | {rows_name} | {weights:,} | {ep} | {ppl:.1f} | {gain_text} "
                     f"| {fit_s} | {score_us} |")
    lines += [
        "",
        "Perplexity per word: exp of minus the total test log-probability over the "
        f"{n_words:,} test words (every row has {L} words, so the per-document average of the "
        "DocNADE paper gives the same number). *Nats/word better than the unigram*: the mean "
        "over test rows of (log p(row) - log p_unigram(row)) / L, with its standard error; the "
        "rows are paired, so this tells whether two models differ by more than the noise of "
        f"{len(Xte)} test rows. The unigram is the add-one smoothed word frequencies of the "
        "training rows, computed in this script. *Epochs* counts every epoch run; the best "
        "validation epoch's weights (in brackets) are the ones scored; a best epoch equal to "
        "the epochs run means the budget, not early stopping, ended the training.",
        "",
        "What each score is. DocNADE's `score_samples` is log p(v | length L); the RNN's is "
        f"the joint of {L} fixed columns. Neither models where a speech ends (no end symbol), "
        "and DocNADE's conditionals p(v_i | v_<i) do not depend on the length, so both are "
        f"the probability of a speech's first {L} words, and the comparison is like for like. "
        "DocNADE sees the words before i only as a bag (a sum of embeddings); the RNN reads "
        "them in order, with an embedding of the position it predicts. "
        "The last row trains DocNADE on the whole training speeches (all "
        f"{sum(len(d) for d in train):,} words, its protocol in `docnade.md`), for reference: "
        "it is not trained on the same rows as the others.",
    ]
    if args.transformer:
        lines += [
            "",
            "`ARTransformerDensity` has no `tie_columns`: it learns a separate embedding and "
            f"softmax for each of the {L} positions (hence its weight count), each from the "
            "training rows' words at that position only. It is trained with the others' "
            "recipe, not its own defaults (which add a refit on all rows, weight averaging and "
            "a cosine schedule).",
        ]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
