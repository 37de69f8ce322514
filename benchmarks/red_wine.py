"""Foundation benchmark: MADEDensity against KernelDensity-CV and GaussianMixture-CV.

Part 1 (quality): mean test log-likelihood per row on UCI red wine (11 physico-chemical
columns, data units) over several random 80/20 splits, with fit time, all in one run.
KernelDensity is fitted on standardised columns and corrected by the log|Jacobian| of the
standardisation, so every number is in the same units (see examples/demo_red_wine.py).

Part 2 (speed): ``score_samples`` rows per second of a fitted MADEDensity and of
``KernelDensity.score_samples`` (bandwidth chosen on red wine), at n_train = 1,599 (red wine)
and n_train = 100,000 synthetic rows (red wine resampled with Gaussian jitter), scoring the
same query rows; the ratio is printed side by side. Scoring cost of a KDE grows with n_train,
an autoregressive model's does not.

Usage::

    python benchmarks/red_wine.py            # 5 splits, full speed test
    python benchmarks/red_wine.py --quick    # 2 splits, 20,000 synthetic rows
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KernelDensity
from sklearn.preprocessing import StandardScaler

from skar import MADEDensity
from skar.datasets import load_wine_quality

RESULTS = Path(__file__).parent / "results"


def made(random_state: int, **kw) -> MADEDensity:
    params = dict(hidden_layer_sizes=(128, 128), n_components=10, n_orderings=8, order="random",
                  random_state=random_state)
    return MADEDensity(**{**params, **kw})


def quality(X: np.ndarray, n_splits: int) -> list[str]:
    rows: dict[str, list[tuple[float, float]]] = {"MADEDensity": [], "KernelDensity (CV)": [],
                                                  "GaussianMixture (CV)": []}
    for seed in range(n_splits):
        X_train, X_test = train_test_split(X, test_size=0.2, random_state=seed)
        t = time.perf_counter()
        m = made(seed).fit(X_train)
        rows["MADEDensity"].append((m.score_samples(X_test).mean(), time.perf_counter() - t))

        t = time.perf_counter()
        sc = StandardScaler().fit(X_train)
        kde = GridSearchCV(KernelDensity(), {"bandwidth": np.logspace(-1.5, 0.5, 21)}, cv=5)
        kde.fit(sc.transform(X_train))
        ll = kde.best_estimator_.score_samples(sc.transform(X_test)).mean() - np.log(
            sc.scale_).sum()
        rows["KernelDensity (CV)"].append((ll, time.perf_counter() - t))

        t = time.perf_counter()
        gmm = GridSearchCV(GaussianMixture(random_state=seed),
                           {"n_components": [1, 2, 4, 6, 8, 12]}, cv=5).fit(X_train)
        rows["GaussianMixture (CV)"].append(
            (gmm.best_estimator_.score_samples(X_test).mean(), time.perf_counter() - t))
    out = [f"### Red wine: mean test log-likelihood per row (nats, data units), "
           f"{n_splits} random 80/20 splits", "",
           "| model | test log-likelihood (mean ± std) | fit time (s, mean) |", "|---|---:|---:|"]
    for name, vals in rows.items():
        ll = np.array([v[0] for v in vals])
        sec = np.mean([v[1] for v in vals])
        out.append(f"| {name} | {ll.mean():.3f} ± {ll.std():.3f} | {sec:.1f} |")
    return out


def speed(X: np.ndarray, n_synthetic: int, n_query: int) -> list[str]:
    rng = np.random.RandomState(0)
    sc = StandardScaler().fit(X)
    synth = X[rng.randint(len(X), size=n_synthetic)] + 0.05 * sc.scale_ * rng.normal(
        size=(n_synthetic, X.shape[1]))
    out = ["### `score_samples` throughput (rows per second, one run, same query rows)", "",
           "| n_train | KernelDensity rows/s | MADEDensity rows/s | MADE / KDE |",
           "|---:|---:|---:|---:|"]
    for train in (X, synth):
        query = train[rng.randint(len(train), size=n_query)]
        kde = KernelDensity(bandwidth=0.4).fit(sc.transform(train))
        t = time.perf_counter()
        kde.score_samples(sc.transform(query))
        kde_rate = n_query / (time.perf_counter() - t)
        # Scoring cost does not depend on how long the model trained: a few epochs suffice.
        m = made(0, max_iter=3, early_stopping=False, batch_size=512).fit(train)
        m.score_samples(query[:10])  # warm-up
        t = time.perf_counter()
        m.score_samples(query)
        made_rate = n_query / (time.perf_counter() - t)
        out.append(f"| {len(train):,} | {kde_rate:,.0f} | {made_rate:,.0f} | "
                   f"{made_rate / kde_rate:.1f}x |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 splits, 20,000 synthetic rows")
    args = ap.parse_args()
    X, _ = load_wine_quality(color="red", return_X_y=True)
    n_splits, n_synth = (2, 20_000) if args.quick else (5, 100_000)
    lines = [f"# Foundation benchmark ({'quick' if args.quick else 'full'})", "",
             f"Machine: {platform.processor() or platform.machine()}, "
             f"{torch.get_num_threads()} torch threads, torch {torch.__version__}", ""]
    lines += quality(X, n_splits) + [""] + speed(X, n_synth, n_query=10_000)
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "red_wine.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
