"""SLC and SIC (``skar.models.cdf.CDFDensity``) against the Parzen window, on seed lecture 001's
kind of example: a smooth one-dimensional density, estimated from n = 100, 1,000 and 10,000
draws.

The true density is the two-Gaussian mixture ``0.4 N(-2, 0.5^2) + 0.6 N(1, 1.2^2)`` (one narrow
and one wide mode, so a single kernel width is a compromise). The estimators:

* ``SLC``: ``CDFDensity(method="slc")``, default settings;
* ``SIC``: ``CDFDensity(method="sic")``, default settings;
* ``KDE-CV``: :class:`sklearn.neighbors.KernelDensity` (Gaussian kernel) with the bandwidth
  chosen by 5-fold :class:`~sklearn.model_selection.GridSearchCV` over 30 log-spaced widths
  (held-out log-likelihood): what a user would run;
* ``Parzen-opt``: the Gaussian Parzen window with the width that minimises the asymptotic mean
  integrated squared error *for the true density*,
  ``h* = (R(K) / (R(f'') n))^(1/5)`` with ``R(K) = 1/(2 sqrt(pi))`` and ``R(f'') = int f''^2``
  computed from the true density (Silverman 1986, eq. 3.21): the lecture's "Parzen window
  with optimal kernel width", an oracle no user has.

Metrics, per seed: the integrated squared error ``int (p_hat - p)^2 dx`` (trapezoid on
[-8, 8], 8,001 points), the held-out mean log-likelihood of 20,000 fresh draws minus that of
the true density (the *gap*, nats; 0 is perfect), and the fit time in CPU seconds on one
thread (``time.process_time``, robust to other jobs on the machine; GridSearchCV included for
KDE-CV). Tables give the mean and the standard error over seeds.

Usage::

    nice -n 19 python benchmarks/cdf/run.py --quick   # 2 seeds
    nice -n 19 python benchmarks/cdf/run.py           # 5 seeds

Writes ``benchmarks/results/cdf.md`` (``cdf_quick.md`` with ``--quick``) and the lecture's
figure, ``benchmarks/results/cdf.png`` (``cdf_quick.png``): the true density and the four
estimates from one draw of n = 1,000.
"""

from __future__ import annotations

import argparse
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from scipy import stats
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from skar.models.cdf import CDFDensity

RESULTS = Path(__file__).resolve().parents[1] / "results"
WEIGHTS, MEANS, SDS = np.array([0.4, 0.6]), np.array([-2.0, 1.0]), np.array([0.5, 1.2])
GRID = np.linspace(-8.0, 8.0, 8001)
SIZES = (100, 1000, 10_000)
METHODS = ("SLC", "SIC", "KDE-CV", "Parzen-opt")


def draw(n: int, rng: np.random.RandomState) -> np.ndarray:
    k = rng.choice(2, n, p=WEIGHTS)
    return (MEANS[k] + SDS[k] * rng.randn(n))[:, None]


def true_density(x: np.ndarray) -> np.ndarray:
    return sum(w * stats.norm.pdf(x, m, s) for w, m, s in zip(WEIGHTS, MEANS, SDS))


def true_roughness_of_second_derivative() -> float:
    """``R(f'') = int f''(x)^2 dx`` of the true mixture (closed-form f'', trapezoid)."""
    x = GRID
    f2 = sum(
        w * stats.norm.pdf(x, m, s) * (((x - m) / s) ** 2 - 1) / s**2
        for w, m, s in zip(WEIGHTS, MEANS, SDS)
    )
    return float(np.trapezoid(f2**2, x))


def optimal_parzen_width(n: int) -> float:
    r_kernel = 1.0 / (2.0 * math.sqrt(math.pi))
    return (r_kernel / (true_roughness_of_second_derivative() * n)) ** 0.2


def fit(method: str, X: np.ndarray, seed: int):
    if method in ("SLC", "SIC"):
        return CDFDensity(method.lower(), random_state=seed, device="cpu").fit(X)
    if method == "KDE-CV":
        widths = np.logspace(-2, 0.5, 30) * X.std()
        search = GridSearchCV(KernelDensity(), {"bandwidth": widths}, cv=5).fit(X)
        return search.best_estimator_
    return KernelDensity(bandwidth=optimal_parzen_width(len(X))).fit(X)


def run_cell(method: str, n: int, seed: int, test: np.ndarray, truth_ll: float) -> dict:
    rng = np.random.RandomState(1000 * seed + n)
    X = draw(n, rng)
    start = time.process_time()
    est = fit(method, X, seed)
    seconds = time.process_time() - start
    density = np.exp(est.score_samples(GRID[:, None]))
    ise = float(np.trapezoid((density - true_density(GRID)) ** 2, GRID))
    gap = truth_ll - float(est.score_samples(test).mean())
    return {"method": method, "n": n, "seed": seed, "ise": ise, "gap": gap, "seconds": seconds}


def mean_se(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values)
    se = a.std(ddof=1) / math.sqrt(len(a)) if len(a) > 1 else float("nan")
    return float(a.mean()), float(se)


def table(cells: list[dict], key: str, fmt: str) -> list[str]:
    lines = ["| method | " + " | ".join(f"n = {n:,}" for n in SIZES) + " |"]
    lines.append("|---" * (len(SIZES) + 1) + "|")
    for method in METHODS:
        row = [method]
        for n in SIZES:
            vals = [c[key] for c in cells if c["method"] == method and c["n"] == n]
            m, se = mean_se(vals)
            row.append(f"{m:{fmt}} ± {se:{fmt}}")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def comparison(cells: list[dict]) -> list[str]:
    """Where SLC/SIC do not beat KDE-CV, and by how much (mean over seeds)."""
    out = []
    for method in ("SLC", "SIC"):
        for n in SIZES:
            for key, name, unit in (("ise", "ISE", ""), ("gap", "log-likelihood", " nats")):
                mine = np.mean([c[key] for c in cells if c["method"] == method and c["n"] == n])
                kde = np.mean([c[key] for c in cells if c["method"] == "KDE-CV" and c["n"] == n])
                if mine > kde:
                    if key == "ise":
                        how = f"{mine:.2e} against {kde:.2e} ({mine / kde:.1f}x)"
                    else:
                        how = f"{mine - kde:.4f}{unit} worse ({-mine:+.4f} against {-kde:+.4f})"
                    out.append(f"- {method} at n = {n:,}: {name} {how}")
    return out or ["- none: SLC and SIC beat KDE-CV on both metrics at every n"]


def figure(path: Path, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X = draw(1000, np.random.RandomState(1000 * seed + 1000))
    x = np.linspace(-5, 6, 1101)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, true_density(x), "k-", lw=2.5, label="true density")
    styles = {"SLC": "C0-", "SIC": "C1--", "KDE-CV": "C3:", "Parzen-opt": "C2-."}
    for method in METHODS:
        est = fit(method, X, seed)
        ax.plot(x, np.exp(est.score_samples(x[:, None])), styles[method], lw=1.5, label=method)
    ax.plot(X[:, 0], np.full(len(X), -0.01), "|", color="0.5", ms=6, alpha=0.3)
    ax.set(xlabel="x", ylabel="density", title="n = 1,000: neural CDF estimators and Parzen")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds instead of 5")
    parser.add_argument("--seeds", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    n_seeds = args.seeds or (2 if args.quick else 5)
    suffix = "_quick" if args.quick else ""
    start = time.perf_counter()
    test = draw(20_000, np.random.RandomState(12345))
    truth_ll = float(np.log(true_density(test[:, 0])).mean())
    cells = []
    for n in SIZES:
        for seed in range(n_seeds):
            for method in METHODS:
                cell = run_cell(method, n, seed, test, truth_ll)
                cells.append(cell)
                print(
                    f"n={n:>6} seed={seed} {method:<10} ISE={cell['ise']:.2e} "
                    f"gap={cell['gap']:.4f} {cell['seconds']:.1f}s",
                    flush=True,
                )
    png = RESULTS / f"cdf{suffix}.png"
    figure(png, seed=0)
    minutes = (time.perf_counter() - start) / 60
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/cdf/run.py", *sys.argv[1:]])
    lines = [
        "# SLC and SIC against the Parzen window (seed lecture 001)",
        "",
        f"Command: `{command}` ({n_seeds} seeds), {minutes:.1f} min in total.",
        f"Machine: {platform.machine()}, 1 torch thread, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, Python {platform.python_version()}.",
        "",
        "True density: `0.4 N(-2, 0.5^2) + 0.6 N(1, 1.2^2)`. SLC, SIC: `CDFDensity` defaults. "
        "KDE-CV: Gaussian KernelDensity, bandwidth by 5-fold GridSearchCV (30 widths). "
        "Parzen-opt: the AMISE-optimal width for the true density (an oracle). "
        "Mean ± standard error over seeds.",
        "",
        "## Integrated squared error (lower is better)",
        "",
        *table(cells, "ise", ".2e"),
        "",
        "## Held-out log-likelihood gap to the true density, nats (lower is better)",
        "",
        *table(cells, "gap", ".4f"),
        "",
        "## Fit time, CPU seconds on one thread (KDE-CV includes its grid search)",
        "",
        *table(cells, "seconds", ".2f"),
        "",
        "## Where SLC/SIC do not beat KDE-CV",
        "",
        *comparison(cells),
        "",
        f"![true density, SLC, SIC, KDE-CV and optimal Parzen at n = 1,000]({png.name})",
        "",
    ]
    out = RESULTS / f"cdf{suffix}.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out} and {png}")


if __name__ == "__main__":
    main()
