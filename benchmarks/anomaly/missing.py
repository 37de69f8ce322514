"""Anomaly detection with missing cells: skar's marginal scores against imputation.

Protocol (the splits of ``run.py``): the normal rows are shuffled (seeded); 60% train every
method (complete rows), the other 40% plus anomalous rows (at most as many as the test normals)
form the test set. Then each *test* cell is made missing completely at random (MCAR) with
probability 10% or 30% (a row keeps at least one observed cell). The training rows stay
complete, so every imputer learns from complete data and every density from the same rows.
Data sets: ionosphere, red wine and white wine (continuous columns); the binary digits and the
mixed-type frame of ``run.py`` are left out (a mean-imputed bit or category is no fair
baseline, and importance-sampled marginals over 64 columns are slow).

Methods:

- ``DOD(MADE) marginal, p-value``: :class:`skar.anomaly.DensityOutlierDetector` over
  ``MADEDensity`` at its defaults; a test row with missing cells is scored by the log marginal
  density of its observed cells, and ranked by its conformal p-value against the calibration
  rows scored with the same cells masked (anomaly score ``1 - p``; ties count half in AUROC).
- ``DOD(MADE) marginal, raw score``: the same marginal log densities ranked directly, across
  missing patterns (a marginal over fewer cells lives on another scale: this shows what the
  per-pattern calibration is for).
- ``DOD(MADE) + imputer``: the same detector over ``Pipeline(imputer, MADEDensity())``.
- ``IsolationForest``, ``LOF(novelty)`` and ``KDE`` (bandwidth by 3-fold CV) after
  ``SimpleImputer`` (mean) or ``IterativeImputer`` (scikit-learn's defaults), on standardised
  columns (the scaler fitted on the training rows).

Run::

    .venv/bin/python benchmarks/anomaly/missing.py            # full
    .venv/bin/python benchmarks/anomaly/missing.py --quick    # small subsamples

Writes ``benchmarks/results/anomaly_missing.md`` (``anomaly_missing_quick.md`` with
``--quick``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.base import clone
from sklearn.ensemble import IsolationForest
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity, LocalOutlierFactor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as base  # noqa: E402  (the data sets and splits of the main anomaly benchmark)

from skar import MADEDensity  # noqa: E402
from skar.anomaly import DensityOutlierDetector  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
NOTES: list[str] = []
RATES = (0.1, 0.3)


def mcar(X: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Each cell missing with probability ``rate``; a row keeps at least one observed cell."""
    rng = np.random.RandomState(seed)
    X = np.asarray(X, dtype=np.float64).copy()
    miss = rng.rand(*X.shape) < rate
    full = miss.all(axis=1)
    miss[full, rng.randint(X.shape[1], size=full.sum())] = False
    X[miss] = np.nan
    return X


class Scorer:
    """Fit on the training rows; anomaly score of test rows (higher = more anomalous)."""

    def __init__(self, est: Any, how: str = "score") -> None:
        self.est, self.how = est, how

    def fit(self, X: Any) -> Scorer:
        self.est.fit(X)
        return self

    def anomaly_score(self, X: Any) -> np.ndarray:
        if self.how == "pvalue":
            return 1.0 - self.est.pvalues(X)
        return -self.est.score_samples(X)


def imputers() -> dict[str, Callable[[], Any]]:
    return {"SimpleImputer": lambda: SimpleImputer(),
            "IterativeImputer": lambda: IterativeImputer(random_state=0)}


def methods(seed: int, quick: bool) -> dict[str, Callable[[], Scorer]]:
    neural = dict(random_state=seed)
    if quick:
        neural["max_iter"] = 30

    def dod(inner: Any) -> DensityOutlierDetector:
        return DensityOutlierDetector(inner, random_state=seed)

    kde = GridSearchCV(KernelDensity(), {"bandwidth": np.logspace(-1, 1, 9)}, cv=3)
    out: dict[str, Callable[[], Scorer]] = {
        "DOD(MADE) marginal, p-value": lambda: Scorer(dod(MADEDensity(**neural)), "pvalue"),
        "DOD(MADE) marginal, raw score": lambda: Scorer(dod(MADEDensity(**neural))),
    }
    for short, make_imp in [("Simple", imputers()["SimpleImputer"]),
                            ("Iterative", imputers()["IterativeImputer"])]:
        out[f"DOD(MADE) + {short}Imputer"] = (
            lambda m=make_imp: Scorer(dod(Pipeline([("impute", m()),
                                                    ("made", MADEDensity(**neural))]))))
        out[f"IsolationForest + {short}Imputer"] = lambda m=make_imp: Scorer(make_pipeline(
            m(), StandardScaler(), IsolationForest(random_state=seed)))
        out[f"LOF(novelty) + {short}Imputer"] = lambda m=make_imp: Scorer(make_pipeline(
            m(), StandardScaler(), LocalOutlierFactor(novelty=True)))
        out[f"KDE + {short}Imputer"] = lambda m=make_imp: Scorer(make_pipeline(
            m(), StandardScaler(), clone(kde)))
    return out


def run(quick: bool, seed: int) -> pd.DataFrame:
    max_train = 300 if quick else None
    loaders = [
        ("ionosphere", lambda: base.ionosphere(seed, max_train)),
        ("red wine", lambda: base.wine("red")(seed, max_train)),
        ("white wine", lambda: base.wine("white")(seed, max_train)),
    ]
    rows = []
    for dataset, load in loaders:
        for task in load():
            X_test, y = np.asarray(task.X_test, dtype=np.float64), task.y_test
            if quick:  # at most 150 test normals and 150 anomalies: scoring is per pattern
                rng = np.random.RandomState(seed)
                keep = np.r_[rng.permutation(np.flatnonzero(y == 0))[:150],
                             rng.permutation(np.flatnonzero(y == 1))[:150]]
                X_test, y = X_test[np.sort(keep)], y[np.sort(keep)]
            fitted: dict[str, Any] = {}
            for rate in RATES:
                X_miss = mcar(X_test, rate, seed)
                for method, make in methods(seed, quick).items():
                    t0 = time.perf_counter()
                    try:
                        # one fit per method and data set; the two "marginal" rows share it
                        key = "marginal" if "marginal" in method else method
                        if key not in fitted:
                            fitted[key] = make().fit(task.X_train)
                        scorer = fitted[key]
                        scorer.how = "pvalue" if method.endswith("p-value") else "score"
                        score = scorer.anomaly_score(X_miss)
                    except Exception as exc:  # noqa: BLE001 - one failure must not stop the run
                        NOTES.append(f"{method} failed on {task.name} at {rate:.0%}: "
                                     f"{type(exc).__name__}: {exc}")
                        traceback.print_exc()
                        continue
                    seconds = time.perf_counter() - t0
                    if not np.all(np.isfinite(score)):
                        NOTES.append(f"{method} gave non-finite scores on {task.name}; "
                                     "they rank as the most anomalous.")
                        score = np.nan_to_num(score, nan=np.inf, posinf=np.inf, neginf=-np.inf)
                    rows.append(dict(dataset=dataset, rate=rate, method=method,
                                     auroc=roc_auc_score(y, score), seconds=seconds,
                                     n_train=len(task.X_train), n_test=len(y),
                                     complete_rows=float((~np.isnan(X_miss).any(1)).mean())))
                    print(f"{task.name:11s} {rate:4.0%} {method:34s} AUROC "
                          f"{rows[-1]['auroc']:.3f} ({seconds:.1f} s)", flush=True)
    return pd.DataFrame(rows)


def table(res: pd.DataFrame) -> pd.DataFrame:
    res = res.assign(column=[f"{d} {r:.0%}" for d, r in zip(res.dataset, res.rate)])
    wide = res.pivot(index="method", columns="column", values="auroc")
    wide = wide[res["column"].unique()].reindex(res["method"].unique())
    complete = wide.dropna(axis=1)
    ranks = complete.rank(ascending=False, method="average")
    out = wide.map(lambda v: f"{v:.3f}" if pd.notna(v) else "n/a")
    for rate in RATES:
        cols = [c for c in complete.columns if c.endswith(f"{rate:.0%}")]
        out[f"mean rank {rate:.0%}"] = ranks[cols].mean(axis=1).map(lambda v: f"{v:.2f}")
    out["mean rank"] = ranks.mean(axis=1).map(lambda v: f"{v:.2f}")
    out["time (s)"] = res.groupby("method", sort=False)["seconds"].sum().map(lambda v: f"{v:.0f}")
    return out.loc[ranks.mean(axis=1).sort_values(kind="stable").index]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="at most 300 training rows, 150 + 150 test rows, 30 epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    res = run(args.quick, args.seed)
    total = time.perf_counter() - t0
    sizes = res.groupby(["dataset", "rate"], sort=False)[
        ["n_train", "n_test", "complete_rows"]].first().reset_index()
    sizes["rate"] = sizes["rate"].map(lambda v: f"{v:.0%}")
    sizes["complete_rows"] = sizes["complete_rows"].map(lambda v: f"{v:.2f}")
    cmd = "python benchmarks/anomaly/missing.py" + (" --quick" if args.quick else "")
    text = [
        "# Anomaly detection with missing cells (MCAR in the test rows)",
        "",
        f"Command: `{cmd}` (seed {args.seed}), {total / 60:.1f} min in total.",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch thread, "
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, Python "
        f"{platform.python_version()}.",
        "",
        "Protocol: the splits of `benchmarks/anomaly/run.py` (fit on 60% of the normal rows, "
        "complete; test on the other 40% plus anomalies), then every test cell missing "
        "completely at random with probability 10% or 30%. DOD = "
        "`skar.anomaly.DensityOutlierDetector` at its defaults over `MADEDensity()` (its "
        "density sees 80% of the training rows). AUROC; mean rank over the columns (1 = best).",
        "",
        "## AUROC",
        "",
        base.markdown(table(res), "method"),
        "",
        "## Data",
        "",
        base.markdown(sizes.set_index("dataset"), "dataset"),
        "",
        "(complete_rows: share of test rows with no missing cell.)",
        "",
        "## Notes",
        "",
        *[f"- {n}" for n in dict.fromkeys(NOTES)],
        "- `marginal, p-value` ranks each row by its conformal p-value among the calibration "
        "rows scored with the same cells masked; `marginal, raw score` ranks the marginal log "
        "densities across patterns, which have different scales.",
        "- time (s): fit (once per data set) plus scoring at both rates; the two `marginal` "
        "rows share one fitted detector, whose fit is counted in the p-value row. The p-value "
        "row's time is the per-pattern calibration: every distinct missing pattern scores the "
        "calibration rows masked alike, and skar.missing estimates most of these marginals by "
        "importance sampling (256 draws).",
        "- --quick: MADEDensity(max_iter=30) (run.py's quick setting), at most 300 training "
        "rows, so 27-60 calibration rows: coarse p-values (ties count half in AUROC).",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("anomaly_missing_quick.md" if args.quick else "anomaly_missing.md")
    out.write_text("\n".join(text) + "\n")
    print("\n".join(text))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
