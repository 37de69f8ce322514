"""The RNADE UCI benchmark (Uria, Murray & Larochelle 2013, Table 1), side by side.

Protocol, as published: the RNADE-preprocessed matrices (:func:`skar.datasets.load_rnade_uci`),
10 folds of 90% train / 10% test, every dimension z-scored with the training fold's mean and
standard deviation, the mean test log-likelihood per datapoint on the z-scored data (higher is
better), reported as the mean over folds +- the standard error over folds. Hyper-parameters are
chosen on a validation part of each training fold: GaussianMixture's ``n_components`` and
KernelDensity's ``bandwidth`` by a grid on a 10% hold-out (then refitted on the whole training
fold); the neural models stop early on their own 10% hold-out (``early_stopping=True``), with
fixed architectures (a grid over them did not fit this CPU's budget).

Usage::

    python benchmarks/uci/run.py                       # full protocol, all five data sets
    python benchmarks/uci/run.py --quick               # 2 folds, red wine + Boston, short runs
    python benchmarks/uci/run.py --datasets red_wine boston --folds 3

Writes ``benchmarks/results/uci.md`` and ``benchmarks/results/uci.png``. Nothing is downloaded.
To add a model, append one :class:`Entry` to :func:`model_entries`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold, train_test_split
from sklearn.neighbors import KernelDensity

from skar import ARTransformerDensity, MADEDensity, RNADEDensity
from skar.datasets import RNADE_UCI_PUBLISHED, load_rnade_uci

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DATASETS = ["red_wine", "white_wine", "parkinsons", "ionosphere", "boston"]
RESULTS = Path(__file__).resolve().parents[1] / "results"


class FullGaussian:
    """Closed-form maximum-likelihood Gaussian with full covariance (the paper's baseline)."""

    def fit(self, X: np.ndarray) -> FullGaussian:
        self.mean_ = X.mean(0)
        self.cov_ = np.cov(X, rowvar=False, bias=True) + 1e-9 * np.eye(X.shape[1])
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        from scipy.stats import multivariate_normal

        return multivariate_normal(self.mean_, self.cov_, allow_singular=True).logpdf(X)


class HoldoutSelect:
    """Pick one hyper-parameter value on a 10% hold-out of the training fold, then refit."""

    def __init__(self, make: Callable[[Any], Any], grid: list[Any], seed: int) -> None:
        self.make, self.grid, self.seed = make, grid, seed

    def fit(self, X: np.ndarray) -> HoldoutSelect:
        tr, va = train_test_split(X, test_size=0.1, random_state=self.seed)
        scores = [self.make(v).fit(tr).score_samples(va).mean() for v in self.grid]
        self.best_ = self.grid[int(np.argmax(scores))]
        self.model_ = self.make(self.best_).fit(X)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return self.model_.score_samples(X)


@dataclass
class Entry:
    """One row of the table: a name, a factory ``(seed, quick) -> estimator``, and the name of
    the published number to print beside it (``None`` when the paper has none)."""

    name: str
    make: Callable[[int, bool], Any]
    published: str | None = None


def _nn(quick: bool) -> dict[str, Any]:
    return dict(max_iter=60 if quick else 1000, n_iter_no_change=8 if quick else 30,
                learning_rate_init=1e-3, batch_size=100, device="cpu")


def model_entries() -> list[Entry]:
    """The models compared; a new model is one more Entry."""
    return [
        Entry("Gaussian (full cov.)", lambda s, q: FullGaussian(), "Gaussian"),
        Entry("GaussianMixture (CV)", lambda s, q: HoldoutSelect(
            lambda k: GaussianMixture(k, covariance_type="full", reg_covar=1e-4,
                                      n_init=1, random_state=s),
            [1, 2, 4, 8, 16] if q else [1, 2, 4, 8, 16, 32], s), "MFA"),
        Entry("KernelDensity (CV)", lambda s, q: HoldoutSelect(
            lambda b: KernelDensity(bandwidth=b), list(np.geomspace(0.05, 1.0, 10)), s)),
        Entry("MADE MoG", lambda s, q: MADEDensity(
            hidden_layer_sizes=(100,), n_components=10, random_state=s, **_nn(q))),
        Entry("RNADE MoG", lambda s, q: RNADEDensity(
            hidden_layer_sizes=(100,), n_components=10, random_state=s, **_nn(q)),
            "RNADE-MoG"),
        Entry("RNADE MoL", lambda s, q: RNADEDensity(
            hidden_layer_sizes=(100,), n_components=10, component="laplace", random_state=s,
            **_nn(q)), "RNADE-MoL"),
        Entry("EoRNADE MoG (order-agnostic, 2x100, 8 orderings)", lambda s, q: RNADEDensity(
            hidden_layer_sizes=(100, 100), order_agnostic=True, n_orderings=8,
            n_components=10, random_state=s, **_nn(q)), "EoNADE"),
        Entry("ARTransformer MoG (d64, 2 layers, 8 orderings)", lambda s, q: ARTransformerDensity(
            d_model=64, n_layers=2, n_heads=4, dropout=0.1, n_components=10, n_orderings=8,
            order="random", random_state=s, **{**_nn(q), "learning_rate_init": 3e-3})),
    ]


def run(datasets: list[str], n_folds: int, quick: bool, models: list[str] | None) -> dict:
    entries = [e for e in model_entries() if models is None or e.name in models]
    results: dict[str, dict[str, list[float]]] = {}
    times: dict[str, dict[str, float]] = {}
    for ds in datasets:
        X = np.asarray(load_rnade_uci(ds), dtype=np.float64)
        folds = list(KFold(10, shuffle=True, random_state=0).split(X))[:n_folds]
        results[ds], times[ds] = {}, {}
        for e in entries:
            lls, t0 = [], time.perf_counter()
            for f, (tr, te) in enumerate(folds):
                mu, sd = X[tr].mean(0), X[tr].std(0)
                sd[sd == 0] = 1.0
                Xtr, Xte = (X[tr] - mu) / sd, (X[te] - mu) / sd
                lls.append(float(e.make(f, quick).fit(Xtr).score_samples(Xte).mean()))
            results[ds][e.name] = lls
            times[ds][e.name] = time.perf_counter() - t0
            print(f"{ds:11s} {e.name:50s} {np.mean(lls):9.3f} "
                  f"({times[ds][e.name]:.0f} s, {len(lls)} folds)", flush=True)
    return {"results": results, "times": times, "entries": entries}


def table(out: dict, n_folds: int, command: str) -> str:
    results, entries = out["results"], out["entries"]
    ds_list = list(results)
    lines = [f"Command: `{command}`  ", f"Folds: {n_folds} of 10 (90/10); mean test "
             "log-likelihood per datapoint on z-scored data, +- standard error over folds; "
             "in brackets the published number (RNADE paper Table 1; EoNADE from Uria et al. "
             "2014). Higher is better. GaussianMixture is shown beside the paper's MFA "
             "(mixture of factor analysers), its closest published baseline.", "",
             "| model | " + " | ".join(ds_list) + " |",
             "|---|" + "---|" * len(ds_list)]
    for e in entries:
        cells = []
        for ds in ds_list:
            v = np.array(results[ds].get(e.name, []))
            se = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
            cell = f"{v.mean():.2f} ± {se:.2f}" if v.size else "—"
            pub = RNADE_UCI_PUBLISHED.get(ds, {}).get(e.published) if e.published else None
            if pub is not None:
                cell += f" [{pub:.2f}]"
            cells.append(cell)
        lines.append(f"| {e.name} | " + " | ".join(cells) + " |")
    lines += ["", "Wall time per model (s, all folds): " + "; ".join(
        f"{ds}: " + ", ".join(f"{k.split(' (')[0]} {t:.0f}" for k, t in out["times"][ds].items())
        for ds in ds_list)]
    return "\n".join(lines)


def plot(out: dict, path: Path) -> None:
    results, entries = out["results"], out["entries"]
    ds_list = list(results)
    fig, axes = plt.subplots(1, len(ds_list), figsize=(4 * len(ds_list), 4), squeeze=False)
    for ax, ds in zip(axes[0], ds_list):
        names = [e.name.split(" (")[0] for e in entries]
        means = [np.mean(results[ds][e.name]) for e in entries]
        ax.barh(names, means, color="tab:blue")
        pub = RNADE_UCI_PUBLISHED[ds]["RNADE-MoG"]
        ax.axvline(pub, color="tab:red", ls="--", label=f"published RNADE-MoG {pub}")
        ax.set_xlim(min(means + [pub]) - 2, max(means + [pub]) + 1)
        ax.set_title(ds)
        ax.set_xlabel("test log-likelihood / datapoint")
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 folds, red wine + Boston, short runs")
    p.add_argument("--datasets", nargs="+", choices=DATASETS)
    p.add_argument("--folds", type=int, help="number of the 10 folds to run")
    p.add_argument("--models", nargs="+", help="only these entries (by name)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", default="uci", help="results file stem in benchmarks/results/")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    datasets = args.datasets or (["red_wine", "boston"] if args.quick else DATASETS)
    n_folds = args.folds or (2 if args.quick else 10)
    import sys

    command = "python benchmarks/uci/run.py " + " ".join(sys.argv[1:])
    out = run(datasets, n_folds, args.quick, args.models)
    md = table(out, n_folds, command.strip())
    print(md)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.md").write_text("# RNADE UCI benchmark\n\n" + md + "\n")
    plot(out, RESULTS / f"{args.out}.png")


if __name__ == "__main__":
    main()
