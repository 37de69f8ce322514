"""Tiny Shakespeare: cross-entropy per character of RNNDensity, ARTransformerDensity and
WaveNetDensity on the last 10% of the characters (nanoGPT's split), under a wall-clock budget.

Every model reads windows of ``--window`` characters (one window per row) and is trained for
at most ``--budget-s`` seconds of wall-clock time (a skorch callback stops the fit at the
first minibatch past the budget), then scored on the non-overlapping windows of the held-out
text. Each position is predicted from the characters before it *in its window*
(``score_samples_per_feature``), so the table gives two figures:

* positions ``0 .. 63`` of each window: each character predicted from at most the 63 before
  it, which is exactly nanoGPT's evaluation with ``block_size=64`` (its small CPU
  configuration reaches about 1.88 nats per character; its GPU configuration 1.4697);
* all positions of the window (contexts up to ``window - 1`` characters).

Then 3 samples of 200 characters each are drawn (the first 200 characters of sampled
windows) and decoded.

The models (``--models``):

* ``rnn``: ``RNNDensity(tie_columns=True)``, an LSTM char-RNN (one embedding and one output
  head shared by every position);
* ``transformer``: ``ARTransformerDensity`` of nanoGPT's small CPU size (4 layers, 4 heads,
  128 channels); it has one value embedding and one output head *per position*, since it
  has no option to tie columns (see the note in the results);
* ``wavenet``: ``WaveNetDensity(quantization="integer")`` on the character codes, a
  receptive field of 256 characters.

Usage::

    # the full run: 15 minutes of training per model, two threads
    nice -n 19 python benchmarks/shakespeare/run.py --budget-s 900 --threads 2
    # quick: 60 s per model (120 s for the RNN), one thread
    nice -n 19 python benchmarks/shakespeare/run.py --quick --rnn-budget-s 120

Writes ``benchmarks/results/shakespeare.md`` (``shakespeare_quick.md`` with ``--quick``,
``shakespeare_<tag>.md`` with ``--tag``).
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
from skorch.callbacks import Callback

from skar.datasets._text import decode_windows, load_tiny_shakespeare, text_windows
from skar.models.rnn import RNNDensity
from skar.models.transformer import ARTransformerDensity
from skar.models.wavenet import WaveNetDensity

RESULTS = Path(__file__).resolve().parents[1] / "results"
NANOGPT_BLOCK = 64
NANOGPT_CPU = 1.88


class TimeBudget(Callback):
    """Stop training at the first minibatch past ``seconds`` of wall-clock time, printing
    progress every ``every`` seconds.

    It ends the loop as skorch's own stopping callbacks do (a KeyboardInterrupt, which
    ``NeuralNet.partial_fit`` catches), after setting ``max_epochs`` to the epochs completed:
    skar's ``RaiseOnInterrupt`` then sees a finished fit rather than a user's Ctrl-C.
    """

    def __init__(self, seconds: float, window: int, every: float = 60.0) -> None:
        self.seconds = seconds
        self.window = window
        self.every = every

    def on_train_begin(self, net, **kwargs) -> None:
        self.start_ = self.last_ = time.perf_counter()
        self.losses_: list[float] = []

    def on_batch_end(self, net, batch=None, training=False, **kwargs) -> None:
        if not training:
            return
        self.losses_.append(kwargs["loss"].item())
        now = time.perf_counter()
        if now - self.last_ > self.every:
            self.last_ = now
            recent = np.mean(self.losses_[-50:]) / self.window
            print(f"    {now - self.start_:6.0f} s, {len(self.losses_)} batches, train "
                  f"{recent:.3f} nats/char (last 50 batches)", flush=True)
        if now - self.start_ > self.seconds:
            net.max_epochs = len(net.history) - 1  # the epochs completed before this one
            raise KeyboardInterrupt


class _Budgeted:
    """Adds the :class:`TimeBudget` callback to the skorch net an estimator builds."""

    budget: TimeBudget | None = None

    def _make_net(self, module, **options):
        net = super()._make_net(module, **options)
        net.callbacks = [*(net.callbacks or []), ("time_budget", self.budget)]
        return net


class BudgetedRNN(_Budgeted, RNNDensity):
    pass


class BudgetedTransformer(_Budgeted, ARTransformerDensity):
    pass


class BudgetedWaveNet(_Budgeted, WaveNetDensity):
    pass


def make_model(name: str, args, vocabulary: str):
    common = dict(max_iter=10_000, early_stopping=False, random_state=0, device="cpu")
    if name == "rnn":
        est = BudgetedRNN(cell=args.rnn_cell, hidden_size=args.rnn_hidden,
                          n_layers=args.rnn_layers, tie_columns=True,
                          batch_size=args.rnn_batch, learning_rate_init=args.rnn_lr, **common)
    elif name == "transformer":
        est = BudgetedTransformer(n_layers=4, n_heads=4, d_model=128, batch_size=16,
                                  learning_rate_init=1e-3, **common)
    else:
        est = BudgetedWaveNet(n_layers_per_block=8, residual_channels=64,
                              dilation_channels=64, skip_channels=128, quantization="integer",
                              n_levels=len(vocabulary), batch_size=16,
                              learning_rate_init=2e-3, **common)
    return est


def describe(est) -> str:
    names = {"BudgetedRNN": "RNNDensity", "BudgetedTransformer": "ARTransformerDensity",
             "BudgetedWaveNet": "WaveNetDensity"}
    defaults = type(est).__mro__[2]().get_params()
    changed = {k: v for k, v in est.get_params().items()
               if v != defaults[k] and k not in ("max_iter", "early_stopping", "random_state",
                                                 "device")}
    return f"{names[type(est).__name__]}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"


def run_model(name: str, args, data) -> dict:
    vocab = data.vocabulary
    W = args.window
    as_frame = name != "wavenet"  # WaveNet reads codes; the others categorical columns
    stride = args.stride or W // 2
    train, _ = text_windows(data.train_text, W, stride, vocab, as_frame=as_frame)
    test, _ = text_windows(data.test_text, W, W, vocab, as_frame=as_frame)
    est = make_model(name, args, vocab)
    est.budget = TimeBudget(args.rnn_budget_s if name == "rnn" else args.budget_s, W)
    print(f"{name}: {describe(est)}, {len(train)} training windows", flush=True)
    t0 = time.perf_counter()
    est.fit(train)
    train_s = time.perf_counter() - t0
    seen = sum(b.get("train_batch_size", 0) for h in est.net_.history for b in h["batches"])
    t0 = time.perf_counter()
    per = est.score_samples_per_feature(test)  # (n_windows, W), nats
    score_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    samples = decode_windows(est.sample(args.n_samples, random_state=0), vocab)
    sample_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in est.net_.module_.parameters())
    out = dict(
        name=name, model=describe(est), params=n_params, train_s=train_s, score_s=score_s,
        sample_s=sample_s, epochs=seen / len(train), chars=seen * W,
        ce64=float(-per[:, :NANOGPT_BLOCK].mean()), ce_all=float(-per.mean()),
        test_windows=len(test), samples=[s[: args.sample_length] for s in samples],
    )
    print(f"  {name}: {out['ce64']:.3f} nats/char (positions 0..63), {out['ce_all']:.3f} "
          f"(all {W}), trained {train_s:.0f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="60 s of training per model")
    ap.add_argument("--models", nargs="+", default=["rnn", "transformer", "wavenet"],
                    choices=["rnn", "transformer", "wavenet"])
    ap.add_argument("--budget-s", type=float, default=None,
                    help="training seconds per model (default 900, 60 with --quick)")
    ap.add_argument("--window", type=int, default=256, help="characters per window (row)")
    ap.add_argument("--stride", type=int, default=None,
                    help="characters between training windows (default window // 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--rnn-cell", default="lstm", choices=["lstm", "gru"])
    ap.add_argument("--rnn-budget-s", type=float, default=None,
                    help="training seconds for the RNN (default: --budget-s)")
    ap.add_argument("--rnn-hidden", type=int, default=None,
                    help="LSTM width (default 256, 128 with --quick)")
    ap.add_argument("--rnn-layers", type=int, default=1)
    ap.add_argument("--rnn-batch", type=int, default=16)
    ap.add_argument("--rnn-lr", type=float, default=3e-3)
    ap.add_argument("--n-samples", type=int, default=3)
    ap.add_argument("--sample-length", type=int, default=200)
    ap.add_argument("--tag", default=None,
                    help="results file suffix (default: 'quick' with --quick, none otherwise)")
    args = ap.parse_args()
    if args.budget_s is None:
        args.budget_s = 60.0 if args.quick else 900.0
    if args.rnn_budget_s is None:
        args.rnn_budget_s = args.budget_s
    if args.rnn_hidden is None:
        args.rnn_hidden = 128 if args.quick else 256
    if args.window < max(NANOGPT_BLOCK, args.sample_length):
        ap.error(f"--window must be at least {max(NANOGPT_BLOCK, args.sample_length)}")
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start = time.perf_counter()
    data = load_tiny_shakespeare()
    results = [run_model(name, args, data) for name in args.models]

    command = " ".join(["python", "benchmarks/shakespeare/run.py",
                        *map(shlex.quote, sys.argv[1:])])
    W = args.window
    tag = args.tag or ("quick" if args.quick else "")
    lines = [f"# Tiny Shakespeare ({tag or 'full'})", "",
             f"Command: `nice -n 19 {command}`", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
             f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
             f"load average at start {load:.1f} (the machine was shared with other jobs)", "",
             f"Train on the first 90% of the characters ({len(data.train_text):,}), windows of "
             f"{W} characters every {args.stride or W // 2}; test on the last 10% "
             f"({len(data.test_text):,}), {results[0]['test_windows']} non-overlapping windows. "
             f"Training stops at the first minibatch past {args.budget_s:.0f} s of wall-clock "
             f"time ({args.rnn_budget_s:.0f} s for the RNN). Cross-entropy in nats per "
             "character, each position predicted from the characters before it in its "
             "window.", "",
             "| model | parameters | training s | characters seen (epochs) "
             f"| nats/char, positions 0..63 (nanoGPT: {NANOGPT_CPU}) | nats/char, all {W} "
             "| scoring s | sampling s (3 windows) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| `{r['model']}` | {r['params']:,} | {r['train_s']:.0f} | "
                     f"{r['chars']:,} ({r['epochs']:.2f}) | {r['ce64']:.3f} | "
                     f"{r['ce_all']:.3f} | {r['score_s']:.1f} | {r['sample_s']:.1f} |")
    best = min(results, key=lambda r: r["ce64"])
    reached = "reaches" if best["ce64"] <= NANOGPT_CPU else "does not reach"
    lines += ["", f"Best: {best['name']}, {best['ce64']:.3f} nats per character on positions "
              f"0..63; it {reached} nanoGPT's small CPU configuration ({NANOGPT_CPU}) within "
              f"this budget. A unigram model scores about 3.3.", ""]
    for r in results:
        lines += [f"### Samples: {r['name']} ({args.sample_length} characters each)", ""]
        for s in r["samples"]:
            lines += ["```", s, "```", ""]
    lines += [f"Total time {(time.perf_counter() - start) / 60:.1f} min."]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"shakespeare{'_' + tag if tag else ''}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
