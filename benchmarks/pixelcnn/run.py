"""PixelCNNDensity benchmark: binarized MNIST, scikit-learn's 8x8 digits against other density
estimators, and sampling speed with and without the row cache, in one run on one machine.

Part 1 (binarized MNIST, the fixed Larochelle & Murray split): test negative log-likelihood in
nats per image and wall time. Published: PixelCNN 81.30, PixelRNN (Diagonal BiLSTM) 79.20.

Part 2 (``sklearn.datasets.load_digits``: 1797 images of 8 x 8 pixels with 17 grey levels,
a stratified 80/20 split): test NLL in nats per image (log-probability of the integer pixels)
for PixelCNNDensity (unconditional; class-conditional scored by its class mixture
``p(x) = sum_y p(y) p(x | y)`` and by ``p(x | y)``), MADEDensity and NADEDensity (every pixel a
17-level categorical column) and KernelDensity. KDE is a continuous density: it is fitted on
uniformly dequantized pixels ``x + u``, and ``E_u log q(x + u)`` (one draw of ``u``) is a lower
bound on the log-probability of the discrete model it induces (Theis et al. 2016), so the
numbers are in the same units. Then a figure of samples per class from the conditional model.

Part 3 (sampling speed at 28 x 28): images per second of :func:`skar.base.sample_plain` (one
full network pass per pixel) and :func:`skar.models.pixelcnn.sample_cached` on the same network
and generator; the two draws are checked to be identical before the ratio is reported.

Usage::

    python benchmarks/pixelcnn/run.py --quick --threads 1   # minutes on a laptop CPU
    python benchmarks/pixelcnn/run.py                        # full MNIST: needs a GPU

Writes ``benchmarks/results/pixelcnn.md``, ``benchmarks/results/pixelcnn_digits_samples.png``
and ``benchmarks/results/pixelcnn_mnist_samples.png``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KernelDensity

from skar import MADEDensity
from skar.base import sample_plain
from skar.datasets import BINARIZED_MNIST_PUBLISHED, load_binarized_mnist
from skar.models.pixelcnn import PixelCNNDensity, sample_cached

try:  # another engineer's model; compared when present
    from skar.models.nade import NADEDensity
except ImportError:  # pragma: no cover
    NADEDensity = None

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _table(rows: list[dict], columns: list[str]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        out.append("| " + " | ".join(str(r[c]) for c in columns) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------------------- part 1
def mnist(quick: bool, device: str) -> tuple[list[dict], PixelCNNDensity, dict]:
    X_train = load_binarized_mnist(split="train")
    X_valid = load_binarized_mnist(split="valid")
    X_test = load_binarized_mnist(split="test")
    if quick:
        cfg = dict(n_train=3000, n_test=2000, max_iter=3, n_filters=16, n_layers=5,
                   head_filters=32)
    else:
        cfg = dict(n_train=len(X_train) + len(X_valid), n_test=len(X_test), max_iter=100,
                   n_filters=64, n_layers=12, head_filters=256)
    X = np.vstack([X_train, X_valid])[: cfg["n_train"]]
    Xt = X_test[: cfg["n_test"]]
    est = PixelCNNDensity(
        n_filters=cfg["n_filters"], n_layers=cfg["n_layers"], head_filters=cfg["head_filters"],
        max_iter=cfg["max_iter"], batch_size=64, learning_rate_init=1e-3,
        early_stopping=not quick, validation_fraction=1 / 6, n_iter_no_change=5,
        random_state=0, device=device,
    )
    t0 = time.perf_counter()
    est.fit(X)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    nll = -est.score_samples(Xt).mean()
    score_s = time.perf_counter() - t0
    epoch_s = float(est.history_["duration"].median())
    rows = [
        dict(model=f"PixelCNNDensity (skar, {est.n_layers} layers x {est.n_filters} maps)",
             train_images=len(X), epochs=est.n_iter_, test_images=len(Xt),
             test_nll=f"{nll:.2f}", bits_per_dim=f"{nll / (784 * np.log(2)):.4f}",
             fit_s=f"{fit_s:.0f}", score_s=f"{score_s:.1f}"),
    ]
    for name in ("PixelCNN", "Diagonal BiLSTM (PixelRNN)"):
        rows.append(dict(model=f"{name} (published)", train_images=50000, epochs="",
                         test_images=10000, test_nll=f"{BINARIZED_MNIST_PUBLISHED[name]:.2f}",
                         bits_per_dim="", fit_s="", score_s=""))
    extra = {**cfg, "epoch_s": epoch_s, "n_train": len(X)}
    return rows, est, extra


# ---------------------------------------------------------------------------- part 2
def digits(quick: bool, device: str) -> tuple[list[dict], PixelCNNDensity]:
    """Part 2; ``quick`` trains smaller networks for fewer epochs."""
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    epochs = 20 if quick else 200
    rows = []

    def record(name, fit, score):
        t0 = time.perf_counter()
        fitted = fit()
        fit_s = time.perf_counter() - t0
        nll = -np.mean(score(fitted))
        rows.append(dict(model=name, test_nll=f"{nll:.2f}",
                         bits_per_dim=f"{nll / (64 * np.log(2)):.3f}", fit_s=f"{fit_s:.1f}"))
        return fitted

    size = dict(n_filters=16, n_layers=4, head_filters=32) if quick else dict(
        n_filters=64, n_layers=6, head_filters=128)
    pix = dict(**size, max_iter=epochs, batch_size=64,
               learning_rate_init=2e-3, n_iter_no_change=10, random_state=0, device=device)
    record("PixelCNNDensity (Categorical over 17 levels)",
           lambda: PixelCNNDensity(n_levels=17, **pix).fit(X_tr),
           lambda e: e.score_samples(X_te))
    cond = record("PixelCNNDensity, class-conditional: mixture p(x) = sum_y p(y) p(x|y)",
                  lambda: PixelCNNDensity(n_levels=17, **pix).fit(X_tr, y_tr),
                  lambda e: e.score_samples(X_te))
    nll_given = -cond.score_samples(X_te, y_te).mean()
    rows.append(dict(model="  same model, p(x | y) with the true label",
                     test_nll=f"{nll_given:.2f}",
                     bits_per_dim=f"{nll_given / (64 * np.log(2)):.3f}", fit_s="(same)"))
    record("PixelCNNDensity (discretized logistic mixture, 5 components)",
           lambda: PixelCNNDensity(n_levels=17, output="logistic_mixture", **pix).fit(X_tr),
           lambda e: e.score_samples(X_te))

    levels = pd.CategoricalDtype(list(range(17)))

    def frame(A):  # every pixel a categorical column with the same 17 levels
        return pd.DataFrame(A, columns=[f"p{i}" for i in range(64)]).astype(levels)

    record("MADEDensity (hidden 500, categorical pixels)",
           lambda: MADEDensity(hidden_layer_sizes=(500,), max_iter=epochs, batch_size=64,
                               random_state=0, device=device).fit(frame(X_tr)),
           lambda e: e.score_samples(frame(X_te)))
    if NADEDensity is not None:
        nade_epochs = 5 if quick else epochs  # slow per epoch on 17-level categorical pixels
        record(f"NADEDensity (hidden 100, categorical pixels, {nade_epochs} epochs max)",
               lambda: NADEDensity(hidden_layer_sizes=(100,), max_iter=nade_epochs, batch_size=64,
                                   random_state=0, device=device).fit(frame(X_tr)),
               lambda e: e.score_samples(frame(X_te)))
    rng = np.random.RandomState(0)

    def fit_kde():
        grid = GridSearchCV(KernelDensity(), {"bandwidth": np.logspace(-0.3, 0.7, 11)}, cv=3)
        return grid.fit(X_tr + rng.rand(*X_tr.shape)).best_estimator_

    kde = record("KernelDensity (dequantized, CV bandwidth; lower bound)", fit_kde,
                 lambda e: e.score_samples(X_te + rng.rand(*X_te.shape)))
    rows[-1]["model"] += f", h={kde.bandwidth:.2f}"
    return rows, cond


def digits_figure(est: PixelCNNDensity, path: Path, n_per_class: int = 8) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = est.classes_
    fig, axes = plt.subplots(len(classes), n_per_class,
                             figsize=(n_per_class * 0.8, len(classes) * 0.8))
    for r, label in enumerate(classes):
        imgs = est.sample(n_per_class, random_state=int(label), y=label).reshape(-1, 8, 8)
        for c in range(n_per_class):
            ax = axes[r, c]
            ax.imshow(imgs[c], cmap="gray_r", vmin=0, vmax=16)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(str(label), rotation=0, labelpad=10)
    fig.suptitle("PixelCNNDensity.sample(y=class), 8x8 digits", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def mnist_figure(est: PixelCNNDensity, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    imgs = est.sample(16, random_state=0).reshape(-1, 28, 28)
    fig, axes = plt.subplots(2, 8, figsize=(8, 2.2))
    for ax, img in zip(axes.ravel(), imgs):
        ax.imshow(img, cmap="gray_r")
        ax.axis("off")
    fig.suptitle("PixelCNNDensity samples, binarized MNIST (quick model)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------- part 3
def sampling_speed(est: PixelCNNDensity, n_images: int) -> list[dict]:
    module = est.net_.module_.eval()
    t0 = time.perf_counter()
    plain = sample_plain(module, n_images, torch.Generator().manual_seed(0))
    plain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cached = sample_cached(module, n_images, torch.Generator().manual_seed(0))
    cached_s = time.perf_counter() - t0
    same = bool(torch.equal(plain, cached))
    return [
        dict(sampler="plain (skar.base.sample_plain: 784 full passes)", images=n_images,
             seconds=f"{plain_s:.2f}", images_per_s=f"{n_images / plain_s:.2f}",
             identical=same),
        dict(sampler="cached (row cache, sample_cached)", images=n_images,
             seconds=f"{cached_s:.2f}", images_per_s=f"{n_images / cached_s:.2f}",
             identical=same),
        dict(sampler="ratio plain / cached", images="", seconds=f"{plain_s / cached_s:.1f}x",
             images_per_s="", identical=""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="subset and few epochs")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    mnist_rows, mnist_est, info = mnist(args.quick, args.device)
    print(_table(mnist_rows, list(mnist_rows[0])), flush=True)
    mnist_figure(mnist_est, RESULTS / "pixelcnn_mnist_samples.png")
    speed_rows = sampling_speed(mnist_est, 8 if args.quick else 64)
    print(_table(speed_rows, list(speed_rows[0])), flush=True)
    digit_rows, cond = digits(args.quick, args.device)
    print(_table(digit_rows, list(digit_rows[0])), flush=True)
    digits_figure(cond, RESULTS / "pixelcnn_digits_samples.png")

    per_image_s = info["epoch_s"] / info["n_train"]
    full_epoch_min = per_image_s * 60000 / 60
    cmd = "python benchmarks/pixelcnn/run.py" + (" --quick" if args.quick else "") + (
        f" --threads {args.threads}" if args.threads else "")
    text = f"""# PixelCNNDensity benchmark

Command: `{cmd}` ({'quick' if args.quick else 'full'} mode), total wall time
{time.perf_counter() - t_start:.0f} s on {platform.processor() or platform.machine()},
{os.cpu_count()} CPU cores, torch {torch.__version__} with {torch.get_num_threads()} thread(s),
device {mnist_est.net_.device}.

## Binarized MNIST, test NLL (nats per image, lower is better)

{_table(mnist_rows, list(mnist_rows[0]))}

One epoch took {info['epoch_s']:.1f} s for {info['n_train']} images here, i.e. about
{full_epoch_min:.0f} min per epoch over 60000 images with this small network; the paper's
network (15 gated layers) trained for many epochs is out of reach on this CPU. A full run
(`python benchmarks/pixelcnn/run.py`: 12 layers x 64 maps, 60000 images, up to 100 epochs
with early stopping) needs a GPU. The quick number is an undertrained small model, not a
reproduction of 81.30.

![MNIST samples](pixelcnn_mnist_samples.png)

## Sampling 28 x 28 images: cached vs plain (same network, same generator)

{_table(speed_rows, list(speed_rows[0]))}

## scikit-learn 8x8 digits (17 grey levels), test NLL (nats per image)

Stratified 80/20 split (1437 / 360 images), {20 if args.quick else 200} epochs at most with
early stopping. All numbers are log-probabilities of the integer pixels; KernelDensity's is a
lower bound (dequantized, see the module docstring).

{_table(digit_rows, list(digit_rows[0]))}

Samples from the class-conditional model, one row per class:

![digits samples](pixelcnn_digits_samples.png)
"""
    (RESULTS / "pixelcnn.md").write_text(text)
    print(f"wrote {RESULTS / 'pixelcnn.md'}")


if __name__ == "__main__":
    main()
