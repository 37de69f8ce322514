"""The RNADE UCI benchmark (Uria, Murray & Larochelle 2013, Table 1), side by side.

Protocol, as published: the RNADE-preprocessed matrices (:func:`skar.datasets.load_rnade_uci`),
10 folds of 90% train / 10% test, every dimension z-scored with the training fold's mean and
standard deviation, the mean test log-likelihood per datapoint on the z-scored data (higher is
better), reported as the mean over folds +- the standard error over folds.

Hyper-parameters are chosen on a validation part of each training fold, never on its test
fold. GaussianMixture's ``n_components`` and KernelDensity's ``bandwidth`` are chosen on a
10% hold-out, then refitted on the whole training fold. Each neural model holds out 10% of the
training fold (its seeded ``early_stopping`` split, the same rows for every candidate), trains
every candidate of its grid on the other 90% with early stopping on the hold-out, and keeps
the candidate with the best hold-out log-likelihood; that fitted model is scored on the test
fold.

Each (data set, model, fold) cell is written to ``benchmarks/results/<out>_cells.jsonl`` as it
finishes, and a rerun with the same ``--out`` skips the cells already there (``--fresh``
starts over), so a long run can be stopped and resumed.

Usage::

    python benchmarks/uci/run.py --jobs 2              # full protocol, all five data sets
    python benchmarks/uci/run.py --quick               # 2 folds, red wine + Boston, short runs
    python benchmarks/uci/run.py --datasets red_wine boston --folds 3
    python benchmarks/uci/run.py --table-only          # tabulate the cells run so far

Writes ``benchmarks/results/<out>.md`` and ``<out>.png`` (default ``uci``). Every cell also scores
the test rows moved within half of each column's grid step; the run under the current column
semantics (3 folds, quick training) is ``results/uci_v2.md``::

    python benchmarks/uci/run.py --quick --datasets red_wine white_wine parkinsons ionosphere \
        boston --folds 3 --out uci_v2 --models "Gaussian (full cov.)" "GaussianMixture (CV)" \
        "KernelDensity (CV)" "MADE MoG (100, 10 comp.)" "RNADE MoG (100, 10 comp.)" \
        "RNADE MoG, min_scale/10 (100, 10 comp.)"

``benchmarks/uci/min_scale.py`` separates a floor-set score from training noise over several
seeds and floors (``results/uci_min_scale.md``). Nothing is downloaded. To add a model,
append one :class:`Entry` to :func:`model_entries`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import sklearn
import torch
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold, train_test_split
from sklearn.neighbors import KernelDensity

from skar import ARTransformerDensity, MADEDensity, RNADEDensity
from skar.datasets import RNADE_UCI_PUBLISHED, load_rnade_uci
from skar.schema import TabularSchema

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
        self.best_params_ = {"value": float(self.best_)}
        self.valid_ll_ = float(np.max(scores))
        self.model_ = self.make(self.best_).fit(X)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return self.model_.score_samples(X)


class ValidationSelect:
    """Fit every candidate of ``grid`` with early stopping; keep the best on the hold-out.

    All candidates share ``estimator``'s ``random_state``, hence the same seeded
    ``validation_fraction`` hold-out; the selection score is the best epoch's hold-out NLL,
    which is the NLL of the weights early stopping restores.
    """

    def __init__(self, estimator: Any, grid: list[dict[str, Any]]) -> None:
        self.estimator, self.grid = estimator, grid

    def fit(self, X: np.ndarray) -> ValidationSelect:
        best = None
        self.valid_lls_ = []
        for params in self.grid:
            est = clone(self.estimator).set_params(**params).fit(X)
            # With ``refit`` the hold-out curve is the selection run's (``history_`` is the
            # refit's, on all rows).
            ll = -float(getattr(est, "selection_history_", est.history_)["valid_nll"].min())
            self.valid_lls_.append(ll)
            if best is None or ll > best[0]:
                best = (ll, params, est)
        self.valid_ll_, self.best_params_, self.model_ = best
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return self.model_.score_samples(X)


@dataclass
class Entry:
    """One row of the table: a name, a factory ``(seed, quick, n_train) -> estimator``
    (anything with ``fit`` and ``score_samples``), and the published number beside it."""

    name: str
    make: Callable[[int, bool, int], Any]
    published: str | None = None


def _nn(quick: bool) -> dict[str, Any]:
    return dict(max_iter=60 if quick else 3000, n_iter_no_change=8 if quick else 30,
                batch_size=100, device="cpu")


def _lr_grid(quick: bool, n_train: int) -> list[dict[str, Any]]:
    """The neural models' grid: Adam's step size, with the patience it needs.

    The small step (which keeps narrow components on repeated values, but needs several
    times the epochs) is tried on the data sets under 2,000 training rows only; on the two
    large ones it did not win on a trial fold and would have tripled the run."""
    if quick:
        return [{"learning_rate_init": 1e-3}]
    grid = [{"learning_rate_init": 1e-3, "n_iter_no_change": 30}]
    if n_train < 2000:
        grid.append({"learning_rate_init": 1e-4, "n_iter_no_change": 60})
    return grid


def model_entries() -> list[Entry]:
    """The models compared; a new model is one more Entry."""
    return [
        Entry("Gaussian (full cov.)", lambda s, q, n: FullGaussian(), "Gaussian"),
        Entry("GaussianMixture (CV)", lambda s, q, n: HoldoutSelect(
            lambda k: GaussianMixture(k, covariance_type="full", reg_covar=1e-4,
                                      n_init=1, random_state=s),
            [1, 2, 4, 8, 16] if q else [1, 2, 4, 8, 16, 32], s), "MFA"),
        Entry("KernelDensity (CV)", lambda s, q, n: HoldoutSelect(
            lambda b: KernelDensity(bandwidth=b), list(np.geomspace(0.01, 1.0, 12)), s)),
        Entry("MADE MoG (100, 10 comp.)", lambda s, q, n: ValidationSelect(MADEDensity(
            hidden_layer_sizes=(100,), n_components=10, random_state=s, **_nn(q)), _lr_grid(q, n))),
        Entry("RNADE MoG, random init (100, 10 comp.)", lambda s, q, n: ValidationSelect(
            RNADEDensity(hidden_layer_sizes=(100,), n_components=10, init_params="random",
                         random_state=s, **_nn(q)), _lr_grid(q, n)), "RNADE-MoG"),
        Entry("RNADE MoG (100, 10 comp.)", lambda s, q, n: ValidationSelect(RNADEDensity(
            hidden_layer_sizes=(100,), n_components=10, random_state=s, **_nn(q)),
            _lr_grid(q, n)), "RNADE-MoG"),
        Entry("RNADE MoG, ReLU (300, 10 comp.)", lambda s, q, n: ValidationSelect(RNADEDensity(
            hidden_layer_sizes=(300,), n_components=10, activation="relu", random_state=s,
            **_nn(q)), _lr_grid(q, n)), "RNADE-MoG"),
        Entry("EoRNADE MoG, ReLU (tied 300, 8 orderings)", lambda s, q, n: ValidationSelect(
            RNADEDensity(hidden_layer_sizes=(300,), n_components=10, activation="relu",
                         n_orderings=8, random_state=s, **_nn(q)), _lr_grid(q, n)),
            "RNADE-MoG"),
        Entry("RNADE MoG, min_scale/10 (100, 10 comp.)", lambda s, q, n: ValidationSelect(
            RNADEDensity(hidden_layer_sizes=(100,), n_components=10, min_scale=1e-4,
                         random_state=s, **_nn(q)), _lr_grid(q, n)), "RNADE-MoG"),
        Entry("RNADE MoL (100, 10 comp.)", lambda s, q, n: ValidationSelect(RNADEDensity(
            hidden_layer_sizes=(100,), n_components=10, component="laplace", random_state=s,
            **_nn(q)), _lr_grid(q, n)), "RNADE-MoL"),
        Entry("EoRNADE MoG (order-agnostic 2x100, 8 orderings)", lambda s, q, n: ValidationSelect(
            RNADEDensity(hidden_layer_sizes=(100, 100), order_agnostic=True, n_orderings=8,
                         n_components=10, random_state=s, **_nn(q)), _lr_grid(q, n)), "EoNADE"),
        Entry("ARTransformer MoG (d64, 2 layers, 8 orderings)", lambda s, q, n:
              ARTransformerDensity(d_model=64, n_layers=2, n_heads=4, dropout=0.1,
                                   n_components=10, n_orderings=8, order="random",
                                   random_state=s,
                                   **{**_nn(q), "learning_rate_init": 3e-3})),
    ]


def _cell(ds: str, entry: Entry, fold: int, quick: bool, threads: int,
          command: str = "") -> dict[str, Any]:
    """Fit one model on one training fold and score its test fold."""
    torch.set_num_threads(threads)
    X = np.asarray(load_rnade_uci(ds), dtype=np.float64)
    tr, te = list(KFold(10, shuffle=True, random_state=0).split(X))[fold]
    mu, sd = X[tr].mean(0), X[tr].std(0)
    sd[sd == 0] = 1.0
    Xtr, Xte = (X[tr] - mu) / sd, (X[te] - mu) / sd
    t0 = time.perf_counter()
    model = entry.make(fold, quick, len(Xtr)).fit(Xtr)
    test_ll = float(model.score_samples(Xte).mean())
    # The same test rows moved uniformly within half a grid step (the columns' recording
    # resolution, found on the training fold as skar's schema finds it): a score that
    # measures the rounding rather than the data moves; a density of the data does not.
    steps = np.array([c.step or 0.0 for c in TabularSchema.from_data(Xtr).columns])
    u = np.random.default_rng(1000 + fold).uniform(-0.499, 0.499, Xte.shape)
    test_ll_jitter = float(model.score_samples(Xte + u * steps).mean())
    return {"dataset": ds, "model": entry.name, "fold": fold, "test_ll": test_ll,
            "test_ll_jitter": test_ll_jitter, "columns": "v2",
            "valid_ll": getattr(model, "valid_ll_", None),
            "params": getattr(model, "best_params_", None),
            "seconds": time.perf_counter() - t0, "command": command,
            "load_average": os.getloadavg()[0]}


def run(datasets: list[str], n_folds: int, quick: bool, models: list[str] | None,
        cells_path: Path, jobs: int, threads: int,
        table_only: bool = False, command: str = "") -> list[dict[str, Any]]:
    entries = [e for e in model_entries() if models is None or e.name in models]
    done: list[dict[str, Any]] = []
    if cells_path.exists():
        done = [json.loads(line) for line in cells_path.read_text().splitlines() if line]
    have = {(c["dataset"], c["model"], c["fold"]) for c in done}
    todo = [(ds, e, f) for ds in datasets for e in entries for f in range(n_folds)
            if (ds, e.name, f) not in have and not table_only]
    print(f"{len(have)} cells found in {cells_path.name}, {len(todo)} to run", flush=True)
    tasks = (delayed(_cell)(ds, e, f, quick, threads, command) for ds, e, f in todo)
    with cells_path.open("a") as sink:
        for cell in Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks):
            sink.write(json.dumps(cell) + "\n")
            sink.flush()
            done.append(cell)
            print(f"{cell['dataset']:11s} {cell['model']:50s} fold {cell['fold']} "
                  f"{cell['test_ll']:9.3f} ({cell['seconds']:.0f} s) {cell['params'] or ''}",
                  flush=True)
    names = [e.name for e in entries]
    return [c for c in done if c["dataset"] in datasets and c["model"] in names
            and c["fold"] < n_folds]


# The runs that made the cells of ``uci_cells.jsonl`` written before each cell recorded its
# own command; kept so that a regenerated table still says where those numbers came from.
EARLIER_RUNS = (
    "they were made by `run.py --jobs 2 --datasets boston ionosphere red_wine white_wine "
    "parkinsons --models <all but ARTransformer>` (stopped after red wine's RNADE MoL), then "
    "`run.py --jobs 2 --datasets white_wine parkinsons --models \"Gaussian (full cov.)\" "
    "\"GaussianMixture (CV)\" \"KernelDensity (CV)\" \"RNADE MoG (100, 10 comp.)\"`, then the "
    "other neural rows on red wine, white wine and parkinsons with `--folds 3`, `--folds 5`, "
    "and last `--jobs 1` without `--folds` for MADE and the random-init RNADE, one torch "
    "thread per job on 2 cores shared with other work at times (wall times are upper bounds). "
    "A cell marked \"(k folds: ...)\" holds the folds listed only: CPU time ran out."
)


def table(cells: list[dict[str, Any]], datasets: list[str], n_folds: int,
          command: str) -> str:
    entries = [e for e in model_entries() if any(c["model"] == e.name for c in cells)]
    ds_list = [ds for ds in datasets if any(c["dataset"] == ds for c in cells)]

    def of(ds: str, name: str) -> list[dict[str, Any]]:
        """One model's cells on one data set, in fold order."""
        return sorted((c for c in cells if c["dataset"] == ds and c["model"] == name),
                      key=lambda c: c["fold"])

    # Each cell records the run that made it, so a table of cached cells says where its
    # numbers came from (older cells are covered by EARLIER_RUNS).
    made_by = sorted({c["command"] for c in cells if c.get("command")})
    unrecorded = sum(not c.get("command") for c in cells)
    lines = [f"Command: `{command}`  ",
             *([f"Cells made by: {', '.join(f'`{m}`' for m in made_by)}.  "] if made_by else []),
             *([f"{unrecorded} cells predate that record; {EARLIER_RUNS}  "] if unrecorded else []),
             f"Machine: {platform.machine()}, torch {torch.__version__}, scikit-learn "
             f"{sklearn.__version__}, Python {platform.python_version()}.  ",
             f"Folds: {n_folds} of 10 (90/10); mean test log-likelihood per datapoint on "
             "z-scored data, +- standard error over folds; in brackets the published number "
             "(RNADE paper Table 1; EoNADE from Uria et al. 2014). Higher is better. "
             "GaussianMixture is shown beside the paper's MFA (mixture of factor analysers), "
             "its closest published baseline. Neural models: the learning rate chosen per fold "
             "on the training fold's hold-out. Where a cell shows `a / b`, `b` is the same "
             "models' mean on the test rows moved uniformly within half of each column's grid "
             "step (columns typed by skar's current rules, `columns: v2` in the cells).", "",
             *([f"**{sum(c.get('columns') != 'v2' for c in cells)} cells predate skar's current "
                "column semantics** (issue 18: rounded columns scored by their cell, point "
                "masses): in those, a mixture component could collapse onto a value the rounding "
                "repeats, so the neural rows measure the rounding as much as the data (RNADE's "
                "red wine -4.23 drops to about -12 when the test values move within half a "
                "step). `benchmarks/results/uci_v2.md` is the comparison under the current "
                "semantics, raw and jittered side by side.", ""]
               if any(c.get("columns") != "v2" for c in cells) else []),
             "| model | " + " | ".join(ds_list) + " |",
             "|---|" + "---|" * len(ds_list)]
    for e in entries:
        cells_row = []
        for ds in ds_list:
            row = of(ds, e.name)
            v = np.array([c["test_ll"] for c in row])
            se = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
            cell = f"{v.mean():.2f} ± {se:.2f}" if v.size else "—"
            if v.size and all("test_ll_jitter" in c for c in row):
                cell += f" / {np.mean([c['test_ll_jitter'] for c in row]):.2f}"
            if 0 < v.size < n_folds:
                cell += f" ({v.size} folds: {','.join(str(c['fold']) for c in row)})"
            pub = RNADE_UCI_PUBLISHED.get(ds, {}).get(e.published) if e.published else None
            if pub is not None and v.size:
                cell += f" [{pub:.2f}]"
            cells_row.append(cell)
        lines.append(f"| {e.name} | " + " | ".join(cells_row) + " |")
    lines += ["", "Wall time per model, all folds of one data set, one CPU thread per job (s): "
              + "; ".join(f"{ds}: " + ", ".join(
                  f"{e.name.split(' (')[0]} {sum(c['seconds'] for c in of(ds, e.name)):.0f}"
                  for e in entries if of(ds, e.name)) for ds in ds_list)]
    return "\n".join(lines)


def plot(cells: list[dict[str, Any]], datasets: list[str], path: Path) -> None:
    entries = [e for e in model_entries() if any(c["model"] == e.name for c in cells)]
    ds_list = [ds for ds in datasets if any(c["dataset"] == ds for c in cells)]
    fig, axes = plt.subplots(1, len(ds_list), figsize=(4.5 * len(ds_list), 4.5), squeeze=False)
    for ax, ds in zip(axes[0], ds_list):
        names, means = [], []
        for e in entries:
            v = [c["test_ll"] for c in cells if c["dataset"] == ds and c["model"] == e.name]
            if v:
                names.append(e.name.split(" (")[0])
                means.append(float(np.mean(v)))
        ax.barh(names, means, color="tab:blue")
        pub = RNADE_UCI_PUBLISHED[ds]["RNADE-MoG"]
        ax.axvline(pub, color="tab:red", ls="--", label=f"published RNADE-MoG {pub}")
        lo = max(min(means + [pub]), pub - 40)
        ax.set_xlim(lo - 2, max(means + [pub]) + 2)
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
    p.add_argument("--jobs", type=int, default=1, help="cells run in parallel (processes)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per job")
    p.add_argument("--out", default=None, help="results file stem in benchmarks/results/")
    p.add_argument("--fresh", action="store_true", help="ignore the cells of an earlier run")
    p.add_argument("--table-only", action="store_true",
                   help="run nothing: tabulate the cells already there (a partial row says "
                        "how many folds it holds)")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    torch.set_num_threads(args.threads)
    datasets = args.datasets or (["red_wine", "boston"] if args.quick else DATASETS)
    n_folds = args.folds or (2 if args.quick else 10)
    out = args.out or ("uci_quick" if args.quick else "uci")
    RESULTS.mkdir(exist_ok=True)
    cells_path = RESULTS / f"{out}_cells.jsonl"
    if args.fresh and cells_path.exists():
        cells_path.unlink()
    command = ("python benchmarks/uci/run.py " + shlex.join(sys.argv[1:])).strip()
    cells = run(datasets, n_folds, args.quick, args.models, cells_path, args.jobs,
                args.threads, args.table_only, command)
    md = table(cells, datasets, n_folds, command)
    print(md)
    (RESULTS / f"{out}.md").write_text("# RNADE UCI benchmark\n\n" + md + "\n")
    plot(cells, datasets, RESULTS / f"{out}.png")


if __name__ == "__main__":
    main()
