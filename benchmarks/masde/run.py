"""MASDE against MADE and the tuned classics, against the training-set size, on two known
structured distributions (issue 22's benchmark).

The question MASDE answers is the small-data one: when the graph of the variables is known,
does building it into the masks buy accuracy where data are scarce? Two known distributions,
whose log density is exact:

- ``bayes_net``: a sparse binary Bayesian network on 10 columns (at most 2 parents each, 11
  edges), conditional probability tables drawn once (seed 123) and pushed away from 1/2 so
  that the dependencies matter. The held-out log-likelihood per row is the *exact*
  expectation under the true distribution, by enumeration of all 1,024 rows (no test-set
  noise): ``sum_x p(x) log q(x)``; the truth's is ``-H(p)``.
- ``gaussian_dag``: a linear-Gaussian DAG on 8 columns (9 edges),
  ``x_d = sum_j W_jd x_j + s_d e_d``. Held out: 20,000 fresh draws (the same for every cell),
  scored by each model and by the true density (closed form); the difference is paired.

Models, each fitted on ``n`` rows for ``n`` in 50, 100, 300, 1,000, 2,000:

- ``MASDE (true DAG)``: :class:`skar.models.masde.MASDEDensity` given the true DAG;
- ``MASDE (Chow-Liu)``: the same with ``structure="chow-liu"`` (a tree learned from the rows,
  which cannot hold the true graph: the two-parent columns lose a parent);
- ``MADE``: :class:`skar.MADEDensity`, the same network without structure;

  all three with the same settings: one hidden layer of 64 units, Adam at 1e-2, early stopping
  on 20 % of the rows with patience 20, at most 300 epochs (150 with ``--quick``), 2 mixture
  components for continuous columns;
- ``KDE-CV`` and ``GMM-CV`` (continuous data only): :class:`~sklearn.neighbors.KernelDensity`
  with the bandwidth, and :class:`~sklearn.mixture.GaussianMixture` (full covariances) with
  ``n_components``, chosen by 5-fold ``GridSearchCV``, both on columns standardised with the
  training rows' mean and deviation, with the log|Jacobian| ``-sum_d log s_d`` added back so
  their numbers are log densities in the data's units, like skar's.

The table gives, per cell, the *gap*: the model's held-out log-likelihood per row minus the
true distribution's (nats; 0 is perfect, a Kullback-Leibler divergence up to the test-set
noise of ``gaussian_dag``), mean and standard error over seeds; and fit seconds (CPU time,
one thread). The figure draws the learning curves.

Usage::

    nice -n 19 python benchmarks/masde/run.py --quick   # 2 seeds, 150 epochs at most
    nice -n 19 python benchmarks/masde/run.py           # 5 seeds
    python benchmarks/masde/run.py --from-log run.log  # tabulate an interrupted run's output

Writes ``benchmarks/results/masde.md`` and ``masde.png`` (``masde_quick.*`` with ``--quick``).
Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from scipy import stats
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from skar.models.made import MADEDensity
from skar.models.masde import MASDEDensity

RESULTS = Path(__file__).resolve().parents[1] / "results"
SIZES = (50, 100, 300, 1000, 2000)
KDE_GRID = np.geomspace(0.05, 3.0, 25)
GMM_GRID = [1, 2, 3, 4, 6, 8, 12, 16]
MODELS = ("MASDE (true DAG)", "MASDE (Chow-Liu)", "MADE", "KDE-CV", "GMM-CV")

# ---------------------------------------------------------------------------- problems
BN_PARENTS = [[], [0], [0], [1], [1, 2], [3], [4], [5, 6], [2], [8, 7]]
GAUSS_EDGES = {(0, 1): 0.9, (0, 2): -0.8, (1, 3): 1.2, (2, 4): 0.7, (3, 4): -0.6,
               (4, 5): 1.0, (2, 6): 0.8, (5, 7): -0.9, (6, 7): 0.7}
GAUSS_SD = np.array([1.0, 0.5, 0.6, 0.4, 0.5, 0.3, 0.5, 0.4])


class BayesNet:
    """The binary Bayesian network: exact log-probabilities, sampling, enumeration."""

    name = "bayes_net"
    continuous = False

    def __init__(self) -> None:
        rng = np.random.RandomState(123)
        cpts = [rng.uniform(0.05, 0.95, size=2 ** len(p)) for p in BN_PARENTS]
        self.cpts = [np.where(c < 0.5, 0.4 * c, 1 - 0.4 * (1 - c)) for c in cpts]
        D = len(BN_PARENTS)
        self.adjacency = np.zeros((D, D), dtype=int)
        for i, par in enumerate(BN_PARENTS):
            self.adjacency[par, i] = 1
        self.rows = np.array(list(itertools.product([0, 1], repeat=D)))
        self.probs = np.exp(self.logpdf(self.rows))
        assert abs(self.probs.sum() - 1) < 1e-9

    def logpdf(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros(len(X))
        for i, par in enumerate(BN_PARENTS):
            idx = np.zeros(len(X), dtype=int)
            for j in par:
                idx = 2 * idx + X[:, j]
            q = self.cpts[i][idx]
            out += np.log(np.where(X[:, i] == 1, q, 1 - q))
        return out

    def draw(self, n: int, rng: np.random.RandomState) -> np.ndarray:
        return self.rows[rng.choice(len(self.rows), n, p=self.probs)]

    def truth(self) -> float:
        return float(self.probs @ np.log(self.probs))  # -H(p)

    def heldout(self, score_samples) -> float:
        return float(self.probs @ score_samples(self.rows))


class GaussianDAG:
    """The linear-Gaussian DAG: exact log density, sampling, a fixed test set."""

    name = "gaussian_dag"
    continuous = True

    def __init__(self) -> None:
        D = len(GAUSS_SD)
        self.W = np.zeros((D, D))
        for (j, i), w in GAUSS_EDGES.items():
            self.W[j, i] = w
        self.adjacency = (self.W != 0).astype(int)
        self.test = self.draw(20_000, np.random.RandomState(999))

    def logpdf(self, X: np.ndarray) -> np.ndarray:
        return stats.norm.logpdf(X, X @ self.W, GAUSS_SD).sum(1)

    def draw(self, n: int, rng: np.random.RandomState) -> np.ndarray:
        X = np.zeros((n, len(GAUSS_SD)))
        for d in range(len(GAUSS_SD)):  # columns are in a topological order
            X[:, d] = X @ self.W[:, d] + GAUSS_SD[d] * rng.normal(size=n)
        return X

    def truth(self) -> float:
        return float(self.logpdf(self.test).mean())

    def heldout(self, score_samples) -> float:
        return float(score_samples(self.test).mean())


# ---------------------------------------------------------------------------- models
class Standardised:
    """A scikit-learn density fitted on z-scored columns, scored in the data's units."""

    def __init__(self, search: GridSearchCV) -> None:
        self.search = search

    def fit(self, X: np.ndarray) -> Standardised:
        self.mean_, self.scale_ = X.mean(0), X.std(0)
        self.search.fit((X - self.mean_) / self.scale_)
        self.chosen_ = self.search.best_params_
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        z = (X - self.mean_) / self.scale_
        return self.search.best_estimator_.score_samples(z) - np.log(self.scale_).sum()


def make_model(name: str, problem, n: int, seed: int, quick: bool):
    neural = dict(hidden_layer_sizes=(64,), learning_rate_init=1e-2,
                  max_iter=150 if quick else 300, validation_fraction=0.2,
                  n_iter_no_change=20, random_state=seed, n_components=2)
    if name == "MASDE (true DAG)":
        return MASDEDensity(problem.adjacency, **neural)
    if name == "MASDE (Chow-Liu)":
        return MASDEDensity("chow-liu", **neural)
    if name == "MADE":
        return MADEDensity(**neural)
    if name == "KDE-CV":
        return Standardised(GridSearchCV(KernelDensity(), {"bandwidth": KDE_GRID}, cv=5))
    if name == "GMM-CV":
        # every CV training part (4/5 of n) needs at least 2 rows per component
        grid = [k for k in GMM_GRID if k <= max(1, (n * 4 // 5) // 2)]
        return Standardised(GridSearchCV(
            GaussianMixture(covariance_type="full", random_state=seed),
            {"n_components": grid}, cv=5))
    raise ValueError(name)


# ---------------------------------------------------------------------------- run
def run(quick: bool) -> dict:
    seeds = range(2 if quick else 5)
    cells: dict = {}
    for problem in (BayesNet(), GaussianDAG()):
        truth = problem.truth()
        models = [m for m in MODELS if problem.continuous or m not in ("KDE-CV", "GMM-CV")]
        for n in SIZES:
            for seed in seeds:
                X = problem.draw(n, np.random.RandomState(1000 * seed + n))
                for name in models:
                    t0 = time.process_time()
                    est = make_model(name, problem, n, seed, quick).fit(X)
                    fit_s = time.process_time() - t0
                    gap = problem.heldout(est.score_samples) - truth
                    cells.setdefault((problem.name, name, n), []).append((gap, fit_s))
                    print(f"{problem.name:13s} n={n:5d} seed={seed} {name:17s} "
                          f"gap={gap:+.4f} fit={fit_s:.1f}s", flush=True)
        cells[(problem.name, "truth")] = truth
    return cells


def cells_from_log(path: Path) -> dict:
    """The cells of the lines ``run`` printed (an interrupted run keeps those it finished)."""
    cells: dict = {}
    pattern = re.compile(r"^(\S+)\s+n=\s*(\d+) seed=\d+ (.+?)\s+gap=(\S+) fit=(\S+)s$")
    for line in path.read_text().splitlines():
        m = pattern.match(line)
        if m:
            problem, n, name, gap, fit = m.groups()
            cells.setdefault((problem, name, int(n)), []).append((float(gap), float(fit)))
    cells[("bayes_net", "truth")] = BayesNet().truth()
    cells[("gaussian_dag", "truth")] = GaussianDAG().truth()
    return cells


def table(cells: dict, quick: bool, command: str) -> str:
    lines = [
        "# MASDE vs MADE vs KDE-CV / GMM-CV against the training-set size",
        "",
        f"Command: `{command}`  ",
        f"Python {platform.python_version()}, torch {torch.__version__}, scikit-learn "
        f"{sklearn.__version__}, one torch thread, {platform.machine()}.",
        "",
        "Held-out log-likelihood per row minus the true distribution's (nats; 0 is perfect, "
        "closer to 0 is better), mean ± standard error over "
        f"{2 if quick else 5} seeds; `bayes_net` exact by enumeration, `gaussian_dag` on 20,000 "
        "fresh draws (paired). Fit time: mean CPU seconds.",
    ]
    for problem in ("bayes_net", "gaussian_dag"):
        truth = cells[(problem, "truth")]
        label = "-H(p)" if problem == "bayes_net" else "true mean log-density on the test rows"
        lines += ["", f"## {problem} ({label}: {truth:.4f})", "",
                  "| model | " + " | ".join(f"n={n}" for n in SIZES) + " | fit s (n=2000) |",
                  "|---|" + "---|" * (len(SIZES) + 1)]
        for name in MODELS:
            if (problem, name, SIZES[0]) not in cells:
                continue
            row = []
            for n in SIZES:
                if (problem, name, n) not in cells:
                    row.append("not run")
                    continue
                gaps = np.array([g for g, _ in cells[(problem, name, n)]])
                se = gaps.std(ddof=1) / np.sqrt(len(gaps)) if len(gaps) > 1 else float("nan")
                row.append(f"{gaps.mean():+.3f} ± {se:.3f}")
            last = cells.get((problem, name, SIZES[-1]))
            fit = f"{np.mean([f for _, f in last]):.1f}" if last else "not run"
            lines.append(f"| {name} | " + " | ".join(row) + f" | {fit} |")
    return "\n".join(lines) + "\n"


def figure(cells: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"MASDE (true DAG)": "C0o-", "MASDE (Chow-Liu)": "C2s--", "MADE": "C1^-",
              "KDE-CV": "C3v:", "GMM-CV": "C4d:"}
    for ax, problem in zip(axes, ("bayes_net", "gaussian_dag")):
        for name in MODELS:
            if (problem, name, SIZES[0]) not in cells:
                continue
            sizes = [n for n in SIZES if (problem, name, n) in cells]
            # truth minus model: a KL divergence (>= 0 up to test-set noise)
            kl = [np.maximum(-np.array([g for g, _ in cells[(problem, name, n)]]), 1e-3)
                  for n in sizes]
            mean = [k.mean() for k in kl]
            se = [k.std(ddof=1) / np.sqrt(len(k)) if len(k) > 1 else 0.0 for k in kl]
            ax.errorbar(sizes, mean, yerr=se, fmt=styles[name], label=name, capsize=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training rows n")
        ax.set_ylabel("held-out NLL minus the truth's (nats per row)")
        ax.set_title(problem)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 150 epochs at most")
    parser.add_argument("--from-log", type=Path, default=None,
                        help="tabulate the cell lines an interrupted run printed (its stdout)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    cells = run(args.quick) if args.from_log is None else cells_from_log(args.from_log)
    stem = "masde_quick" if args.quick else "masde"
    RESULTS.mkdir(exist_ok=True)
    text = table(cells, args.quick, command)
    (RESULTS / f"{stem}.md").write_text(text)
    figure(cells, RESULTS / f"{stem}.png")
    print(text)


if __name__ == "__main__":
    main()
