"""DocNADE on the speeches of tiny Shakespeare: held-out perplexity against a unigram model.

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

Usage::

    nice -n 19 python benchmarks/docnade/run.py --quick   # 3 epochs
    nice -n 19 python benchmarks/docnade/run.py           # up to 100, early stopping

The quick run writes ``benchmarks/results/docnade_quick.md``, the others ``docnade.md``.
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
import torch

from skar.datasets._documents import load_shakespeare_speeches, words_to_ids
from skar.models.docnade import DocNADEDensity

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs, no early stopping")
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--n-hidden", type=int, default=50)
    parser.add_argument("--max-iter", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    max_iter = args.max_iter or (3 if args.quick else 100)
    out = args.out or RESULTS / ("docnade_quick.md" if args.quick else "docnade.md")
    load = os.getloadavg()[0]
    print(f"load average {load:.1f}", flush=True)

    train_texts, test_texts = split_speeches(load_shakespeare_speeches().data)
    train, vocab = words_to_ids(train_texts, min_count=args.min_count)
    test, _ = words_to_ids(test_texts, vocabulary=vocab)
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

    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/docnade/run.py",
                                                             *sys.argv[1:]])
    lines = [
        "# DocNADE: held-out perplexity on the speeches of tiny Shakespeare",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s), device {args.device}; 1-minute load "
        f"average at the start {load:.1f} (above 0 means other work shared the cores).",
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


if __name__ == "__main__":
    main()
