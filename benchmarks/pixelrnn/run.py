"""PixelRNNDensity benchmark: Row LSTM and Diagonal BiLSTM next to PixelCNN, MADE and NADE, test
negative log-likelihood on scikit-learn's 8 x 8 digits (and, with ``--mnist``, binarized MNIST),
in one run on one machine.

Digits (``sklearn.datasets.load_digits``, 1797 images): the stratified 80/20 split of
``benchmarks/pixelcnn/run.py`` (``train_test_split(..., test_size=0.2, stratify=y,
random_state=0)``), binarized at 8 (a pixel is on when its grey level is at least 8 of 16),
or with ``--levels 17`` the 17 grey levels as in the PixelCNN benchmark. Test NLL in nats per
image (log-probability of the pixels), bits per dimension and fit time; every model has the
same epoch budget with early stopping on 10% of the training images.

MNIST (``--mnist``, the fixed binarization and split of Larochelle & Murray): quick mode trains
small networks for a few epochs on a subset, far from the published numbers (PixelCNN 81.30,
Row LSTM 80.54, Diagonal BiLSTM 79.20 nats), which took the paper's 7-12 layer networks days of
GPU time; the full mode (no ``--quick``) is the script for a GPU.

Usage::

    python benchmarks/pixelrnn/run.py --quick --threads 1            # digits, minutes on a CPU
    python benchmarks/pixelrnn/run.py --threads 1                     # digits, larger and longer
    python benchmarks/pixelrnn/run.py --quick --mnist --threads 1     # adds a small MNIST run
    python benchmarks/pixelrnn/run.py --mnist --device cuda           # full MNIST: needs a GPU

Writes ``benchmarks/results/pixelrnn_quick.md`` (quick mode) or ``pixelrnn.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skar import MADEDensity, NADEDensity, PixelCNNDensity
from skar.base import sample_plain
from skar.datasets import BINARIZED_MNIST_PUBLISHED, load_binarized_mnist
from skar.models.pixelrnn import PixelRNNDensity, sample_diagonal, sample_row_lstm

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _table(rows: list[dict], columns: list[str]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        out.append("| " + " | ".join(str(r[c]) for c in columns) + " |")
    return "\n".join(out)


def digits_split(levels: int) -> tuple[np.ndarray, np.ndarray]:
    """The PixelCNN benchmark's split; binarized at 8 (``levels=2``) or 17 grey levels."""
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.int64)
    if levels == 2:
        X = (X >= 8).astype(np.int64)
    X_tr, X_te, _, _ = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    return X_tr, X_te


def models(quick: bool, n_levels: int, epochs: int, device: str, mnist: bool) -> dict:
    """Every model with the same training settings; sizes small in quick mode."""
    common = dict(max_iter=epochs, batch_size=64, n_iter_no_change=5, random_state=0,
                  device=device)
    image = dict(n_levels=n_levels, learning_rate_init=2e-3, **common)
    if quick:
        cnn = dict(n_filters=16, n_layers=4, head_filters=32)
        rnn = dict(n_filters=16, hidden_size=16, n_layers=2, kernel_size=5, head_filters=32)
    else:  # the paper's MNIST networks: 7 layers (PixelRNN), 12+ gated layers (PixelCNN)
        cnn = dict(n_filters=64, n_layers=12, head_filters=256)
        rnn = dict(n_filters=32, hidden_size=32, n_layers=7, kernel_size=7, head_filters=256)
        if not mnist:
            cnn = dict(n_filters=64, n_layers=6, head_filters=128)
            rnn = dict(n_filters=32, hidden_size=32, n_layers=4, kernel_size=7, head_filters=128)
    tabular = dict(learning_rate_init=1e-3, **common)
    return {
        f"PixelRNNDensity, Row LSTM ({rnn['n_layers']} layers x {rnn['hidden_size']})":
            PixelRNNDensity(layer="row_lstm", **rnn, **image),
        f"PixelRNNDensity, Diagonal BiLSTM ({rnn['n_layers']} layers x {rnn['hidden_size']})":
            PixelRNNDensity(layer="diagonal_bilstm", **rnn, **image),
        f"PixelCNNDensity ({cnn['n_layers']} gated layers x {cnn['n_filters']})":
            PixelCNNDensity(**cnn, **image),
        "MADEDensity (hidden 500)": MADEDensity(hidden_layer_sizes=(500,), **tabular),
        "NADEDensity (hidden 100)": NADEDensity(hidden_layer_sizes=(100,), **tabular),
    }


def _as_columns(X: np.ndarray, n_levels: int):
    """Binary pixels as they are; 17 levels as categorical columns for MADE and NADE."""
    if n_levels == 2:
        return X
    import pandas as pd

    dtype = pd.CategoricalDtype(list(range(n_levels)))
    return pd.DataFrame(X, columns=[f"p{i}" for i in range(X.shape[1])]).astype(dtype)


def sampling_speed(est: PixelRNNDensity, n_images: int) -> dict:
    """Seconds to draw ``n_images`` with the plain loop and with the state-carrying sampler
    (same network, same generator; the draws are checked to be identical)."""
    module = est.net_.module_.eval()
    fast_sampler = sample_row_lstm if est.layer_ == "row_lstm" else sample_diagonal
    t0 = time.perf_counter()
    plain = sample_plain(module, n_images, torch.Generator().manual_seed(0))
    plain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = fast_sampler(module, n_images, torch.Generator().manual_seed(0))
    fast_s = time.perf_counter() - t0
    return dict(layer=est.layer_, images=n_images, plain_s=f"{plain_s:.2f}",
                fast_s=f"{fast_s:.2f}", ratio=f"{plain_s / fast_s:.1f}x",
                identical=bool(torch.equal(plain, fast)))


def run(X_tr, X_te, n_levels, estimators, speed: list | None = None) -> list[dict]:
    D = X_tr.shape[1]
    rows = []
    for name, est in estimators.items():
        tabular = not isinstance(est, (PixelCNNDensity, PixelRNNDensity))
        A, B = (_as_columns(X_tr, n_levels), _as_columns(X_te, n_levels)) if tabular else (
            X_tr, X_te)
        t0 = time.perf_counter()
        est.fit(A)
        fit_s = time.perf_counter() - t0
        nll = -est.score_samples(B).mean()
        rows.append(dict(model=name, epochs=est.n_iter_, test_nll=f"{nll:.2f}",
                         bits_per_dim=f"{nll / (D * np.log(2)):.4f}",
                         fit_s=f"{fit_s:.0f}", s_per_epoch=f"{fit_s / est.n_iter_:.1f}"))
        print(rows[-1], flush=True)
        if speed is not None and isinstance(est, PixelRNNDensity):
            speed.append(sampling_speed(est, 20))
            print(speed[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small networks, few epochs")
    parser.add_argument("--levels", type=int, choices=(2, 17), default=2,
                        help="digits binarized at 8 (2) or with their 17 grey levels")
    parser.add_argument("--mnist", action="store_true", help="also binarized MNIST")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    X_tr, X_te = digits_split(args.levels)
    epochs = 15 if args.quick else 200
    speed: list[dict] = []
    digit_rows = run(X_tr, X_te, args.levels,
                     models(args.quick, args.levels, epochs, args.device, mnist=False), speed)
    what = "binarized at 8" if args.levels == 2 else "17 grey levels"
    sections = [f"""## 8x8 digits ({what}), test NLL (nats per image, lower is better)

Stratified 80/20 split (1437 / 360 images, the PixelCNN benchmark's), at most {epochs} epochs
with early stopping (patience 5) on 10% of the training images.

{_table(digit_rows, list(digit_rows[0]))}

Sampling 8 x 8 images from the two PixelRNNs above: the plain loop (one full network pass per
pixel, ``skar.base.sample_plain``) against the samplers that carry the LSTM states
(``sample_row_lstm``, ``sample_diagonal``), same network and generator:

{_table(speed, list(speed[0]))}
"""]
    if args.mnist:
        X = np.vstack([load_binarized_mnist(split="train"), load_binarized_mnist(split="valid")])
        Xt = load_binarized_mnist(split="test")
        n_train, n_test, m_epochs = (3000, 1000, 3) if args.quick else (len(X), len(Xt), 100)
        mnist_rows = run(X[:n_train], Xt[:n_test], 2,
                         models(args.quick, 2, m_epochs, args.device, mnist=True))
        for name in ("Row LSTM", "Diagonal BiLSTM (PixelRNN)", "PixelCNN", "NADE",
                     "MADE 1 hidden layer, 32 masks"):
            mnist_rows.append(dict(model=f"{name} (published)", epochs="",
                                   test_nll=f"{BINARIZED_MNIST_PUBLISHED[name]:.2f}",
                                   bits_per_dim="", fit_s="", s_per_epoch=""))
        verdict = ("this quick run is an undertrained small model, not a reproduction"
                   if args.quick else "a full run needs a GPU")
        sections.append(f"""## Binarized MNIST, test NLL (nats per image)

{n_train} training images, {n_test} test images, at most {m_epochs} epochs. The published
numbers come from the paper's networks (7 LSTM layers of 16 to 128 units for PixelRNN) trained
to convergence on a GPU; {verdict}.

{_table(mnist_rows, list(mnist_rows[0]))}
""")
    cmd = "python benchmarks/pixelrnn/run.py" + (" --quick" if args.quick else "") + (
        f" --levels {args.levels}" if args.levels != 2 else "") + (
        " --mnist" if args.mnist else "") + (f" --threads {args.threads}" if args.threads else "")
    text = f"""# PixelRNNDensity benchmark

Command: `{cmd}` ({'quick' if args.quick else 'full'} mode), total wall time
{time.perf_counter() - t_start:.0f} s on {platform.processor() or platform.machine()},
{os.cpu_count()} CPU cores (shared with other jobs: wall times are inflated, compare them only
within this table), torch {torch.__version__} with {torch.get_num_threads()} thread(s).

""" + "\n".join(sections)
    name = "pixelrnn_quick.md" if args.quick else "pixelrnn.md"
    (RESULTS / name).write_text(text)
    print(text)
    print(f"wrote {RESULTS / name}")


if __name__ == "__main__":
    main()
