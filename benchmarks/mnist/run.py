"""Binarized MNIST: test NLL (nats) of NADE, MADE and order-agnostic NADE, with wall times.

(The speed of NADE's incremental sampler against the generic loop is in
``benchmarks/nade/run.py``.)

Published (test NLL, nats): NADE 500 hidden 88.86 (Larochelle & Murray 2011); MADE 1 hidden
layer 32 masks 88.04, 2 layers 86.64 (Germain et al. 2015); EoNADE 2 hidden layers, 128
orderings 85.10 (Uria et al. 2014).

Usage::

    python benchmarks/mnist/run.py --quick     # train subset, few epochs, test subset (CPU)
    python benchmarks/mnist/run.py             # 500 epochs, early stopping (a GPU run)
    python benchmarks/mnist/run.py --models MADE --max-iter 50   # one model, bounded epochs
    # all 50,000 training and 10,000 test rows, 20 epochs, on the CPU (about 1.5 hours):
    python benchmarks/mnist/run.py --models "NADE, 500 hidden" MADE --max-iter 20 --out mnist_cpu

Writes ``benchmarks/results/mnist.md`` and ``mnist.png`` (``mnist_quick.*`` with
``--quick``; the CPU run above, ``benchmarks/results/mnist_cpu.md``). Nothing is
downloaded: the data ship with skar (:func:`skar.datasets.load_binarized_mnist`).
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import matplotlib
import torch

from skar import ARTransformerDensity, MADEDensity, NADEDensity
from skar.base import resolve_device
from skar.datasets import BINARIZED_MNIST_PUBLISHED, load_binarized_mnist

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"


def models(quick: bool, device: str, max_iter: int | None) -> list[tuple[str, object, str]]:
    """(name, estimator, published key); the quick mode keeps the sizes but trains briefly,
    except the order-agnostic MLP, whose exact scoring costs 784 passes per ordering."""
    epochs = max_iter or (3 if quick else 500)
    common = dict(batch_size=100, device=device, random_state=0,
                  max_iter=epochs, early_stopping=not quick, n_iter_no_change=10)
    oa_hidden = (256, 256) if quick else (500, 500)
    return [
        ("NADE, 500 hidden", NADEDensity(hidden_layer_sizes=(500,), learning_rate_init=5e-3,
                                         **common), "NADE"),
        ("MADE, 500 hidden, 32 masks", MADEDensity(hidden_layer_sizes=(500,), n_orderings=32,
                                                   **common), "MADE 1 hidden layer, 32 masks"),
        (f"order-agnostic NADE {oa_hidden}, {2 if quick else 16} orderings",
         NADEDensity(hidden_layer_sizes=oa_hidden, order_agnostic=True,
                     n_orderings=2 if quick else 16, **{**common, "early_stopping": False}),
         "EoNADE 2 hidden layers, 128 orderings"),
        # The 784 pixels as a sequence of binary tokens; no published number to compare with.
        ("ARTransformer, d_model 64, 2 layers, 4 heads",
         ARTransformerDensity(d_model=64, n_layers=2, n_heads=4, **common),
         "ARTransformerDensity"),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--n-train", type=int, help="training rows (default 2000 quick, 50000 full)")
    p.add_argument("--n-test", type=int, help="test rows (default 500 quick, 10000 full)")
    p.add_argument("--max-iter", type=int, help="epochs (default 3 quick, 500 full)")
    p.add_argument("--models", nargs="+", help="only the models whose name contains one of these")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="results file stem (default mnist_quick or mnist)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    n_train = args.n_train or (2000 if args.quick else 50_000)
    n_test = args.n_test or (500 if args.quick else 10_000)
    X = load_binarized_mnist(split="train")[:n_train]
    X_test = load_binarized_mnist(split="test")[:n_test]
    rows = []
    for name, est, pub in models(args.quick, args.device, args.max_iter):
        if args.models and not any(m in name for m in args.models):
            continue
        t0 = time.perf_counter()
        est.fit(X)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        nll = -est.score_samples(X_test).mean()
        t_score = time.perf_counter() - t0
        rows.append((name, nll, BINARIZED_MNIST_PUBLISHED.get(pub), est.n_iter_, t_fit, t_score))
        print(f"{name:45s} NLL {nll:8.2f}  fit {t_fit:7.0f} s  score {t_score:6.0f} s",
              flush=True)

    command = "python benchmarks/mnist/run.py " + shlex.join(sys.argv[1:])
    md = [f"Command: `{command.strip()}`  ",
          f"Machine: {platform.machine()}, torch {torch.__version__}, device "
          f"{resolve_device(args.device)}, torch threads: {args.threads}.  ",
          f"Train rows: {len(X)} of 50000; test rows: {len(X_test)} of 10000.", "",
          "| model | test NLL (nats) | published | epochs | fit (s) | score (s) |",
          "|---|---|---|---|---|---|"]
    for name, nll, pub, ep, tf, ts in rows:
        md.append(f"| {name} | {nll:.2f} | {pub if pub is not None else '—'} | {ep} | "
                  f"{tf:.0f} | {ts:.0f} |")
    text = "\n".join(md)
    print(text)
    out = args.out or ("mnist_quick" if args.quick else "mnist")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{out}.md").write_text("# Binarized MNIST\n\n" + text + "\n")
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.barh([r[0] for r in rows], [r[1] for r in rows], color="tab:blue", label="skar")
    pubs = [(i, r[2]) for i, r in enumerate(rows) if r[2] is not None]
    ax.scatter([v for _, v in pubs], [i for i, _ in pubs], color="tab:red", zorder=3,
               label="published")
    ax.set_xlabel("test NLL (nats, lower is better)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{out}.png", dpi=110)


if __name__ == "__main__":
    main()
