"""Semi-supervised anomaly detection: density-based detectors against the usual baselines.

Protocol, for every data set: the normal rows are shuffled (seeded); 60% train every method
(normal rows only), the other 40% plus anomalous rows (at most as many as the test normals, so
that average precision has a base rate of at most 0.5) form the test set. Every method gives
an anomaly score on the test rows; the table reports AUROC and average precision (AP), and the
mean rank of every method across the data sets (1 = best; ties share the mean rank).

Data sets (all shipped with skar or scikit-learn; nothing is downloaded):

- ``ionosphere``: UCI ionosphere, RNADE columns (a03..a34); class ``g`` normal, ``b`` anomalous.
- ``red wine`` / ``white wine``: UCI wine quality; the rarest grades (each under 5% of the
  wines: 3, 4, 8 for red, 3, 4, 8, 9 for white) are the anomalies.
- ``digits``: binarized MNIST as shipped has no labels, so one-digit-against-the-rest uses
  scikit-learn's bundled 8x8 digits, binarized (pixel > 7), 64 binary columns; the score is the
  mean over the ten normal digits (``--quick``: digit 0 only).
- ``mixed wine``: both wine sets in one mixed-type frame: ``colour`` (category), ``acidity``
  (string: the tertile of fixed acidity), ``sweet`` (bool: residual sugar > 4 g/l) and the other
  8 numeric columns; rare grades (3, 4, 8, 9) are the anomalies. skar's models read the frame
  as it is; every other method gets it one-hot encoded and standardised.

Methods: :class:`skar.anomaly.DensityOutlierDetector` over MADEDensity, RNADEDensity and
ARTransformerDensity (defaults, when importable), KernelDensity (bandwidth by 3-fold CV) and
GaussianMixture (components and covariance by 3-fold CV); IsolationForest,
LocalOutlierFactor(novelty=True), OneClassSVM (defaults); pyod's ECOD and COPOD when pyod is
installed (``pip install "pyod>=2.0"``). Continuous columns are standardised with the training
rows for every non-skar method (skar standardises inside).

Run::

    .venv/bin/python benchmarks/anomaly/run.py            # full (tens of minutes on 2 cores)
    .venv/bin/python benchmarks/anomaly/run.py --quick    # small subsamples, a few minutes
    .venv/bin/python benchmarks/anomaly/run.py --ensemble # also DOD(MADE x5), about twice as long

With missing test cells: ``benchmarks/anomaly/missing.py`` writes ``results/anomaly_missing.md``
(``anomaly_missing_quick.md`` with ``--quick``).

Writes ``benchmarks/results/anomaly.md`` (``anomaly_quick.md`` with ``--quick``,
``anomaly_ensemble[_quick].md`` with ``--ensemble``) and a PNG plot next to it.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import torch
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.datasets import load_digits
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity, LocalOutlierFactor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.svm import OneClassSVM

from skar import DensityEnsemble, MADEDensity
from skar.anomaly import DensityOutlierDetector
from skar.datasets import load_ionosphere, load_wine_quality

RESULTS = Path(__file__).resolve().parents[1] / "results"
NOTES: list[str] = []
FDR_LEVEL = 0.1


# ---------------------------------------------------------------------------- data
@dataclass
class Task:
    """One train / test split: normal training rows, test rows and their labels (1 = anomaly)."""

    name: str
    X_train: Any
    X_test: Any
    y_test: np.ndarray
    kind: str  # "continuous", "binary" or "mixed": decides the baselines' preprocessing


def _split(name: str, normal: Any, anomalous: Any, kind: str, seed: int,
           max_train: int | None) -> Task:
    """60% of the normal rows train; the rest and at most as many anomalies test."""
    rng = np.random.RandomState(seed)
    take = _take
    normal = take(normal, rng.permutation(len(normal)))
    n_train = int(round(0.6 * len(normal)))
    train, test_normal = take(normal, np.arange(n_train)), take(normal, np.arange(n_train,
                                                                                len(normal)))
    if max_train is not None:
        train = take(train, np.arange(min(max_train, len(train))))
        test_normal = take(test_normal, np.arange(min(max_train, len(test_normal))))
    n_anom = min(len(anomalous), len(test_normal))
    anomalous = take(anomalous, rng.permutation(len(anomalous))[:n_anom])
    if isinstance(normal, pd.DataFrame):
        X_test = pd.concat([test_normal, anomalous], ignore_index=True)
    else:
        X_test = np.vstack([test_normal, anomalous])
    y = np.r_[np.zeros(len(test_normal), dtype=int), np.ones(n_anom, dtype=int)]
    return Task(name, train, X_test, y, kind)


def _take(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx].reset_index(drop=True) if isinstance(X, pd.DataFrame) else X[idx]


def ionosphere(seed: int, max_train: int | None) -> list[Task]:
    X, y = load_ionosphere(preprocess=True, return_X_y=True)
    return [_split("ionosphere", X[y == "g"], X[y == "b"], "continuous", seed, max_train)]


def _rare_grades(quality: pd.Series) -> np.ndarray:
    share = quality.value_counts(normalize=True)
    return quality.isin(share.index[share < 0.05]).to_numpy()


def wine(colour: str) -> Callable[[int, int | None], list[Task]]:
    def load(seed: int, max_train: int | None) -> list[Task]:
        X, q = load_wine_quality(color=colour, return_X_y=True, as_frame=True)
        rare = _rare_grades(q)
        X = X.to_numpy()
        return [_split(f"{colour} wine", X[~rare], X[rare], "continuous", seed, max_train)]

    return load


def digits(seed: int, max_train: int | None, which: list[int]) -> list[Task]:
    d = load_digits()
    X = (d.data > 7).astype(np.int64)
    return [_split(f"digits/{k}", X[d.target == k], X[d.target != k], "binary", seed,
                   max_train) for k in which]


def mixed_wine(seed: int, max_train: int | None) -> list[Task]:
    frames = []
    for colour in ("red", "white"):
        X, q = load_wine_quality(color=colour, return_X_y=True, as_frame=True)
        frames.append(X.assign(colour=colour, quality=q))
    df = pd.concat(frames, ignore_index=True)
    tertile = pd.qcut(df["fixed_acidity"], 3, labels=["low", "medium", "high"])
    mixed = pd.DataFrame({
        "colour": pd.Categorical(df["colour"], categories=["red", "white"]),
        "acidity": tertile.astype(str).astype(object),
        "sweet": df["residual_sugar"] > 4.0,
        **{c: df[c] for c in df.columns[:11] if c not in ("fixed_acidity", "residual_sugar")},
    })
    rare = _rare_grades(df["quality"])
    return [_split("mixed wine", mixed[~rare], mixed[rare], "mixed", seed, max_train)]


# ---------------------------------------------------------------------------- methods
def preprocessing(kind: str) -> Any:
    """What the non-skar methods get: standardised numbers (one-hot for categories)."""
    if kind == "binary":
        return FunctionTransformer(lambda X: np.asarray(X, dtype=np.float64))
    if kind == "continuous":
        return StandardScaler()
    return ColumnTransformer([
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         make_column_selector(dtype_exclude="number")),
        ("scale", StandardScaler(), make_column_selector(dtype_include="number")),
    ])


class PyODScorer:
    """pyod detector behind the fit / anomaly-score interface used here."""

    def __init__(self, make: Callable[[], Any], prep: Any) -> None:
        self.pipe = make_pipeline(prep, make())

    def fit(self, X: Any) -> PyODScorer:
        self.pipe.fit(X)
        return self

    def anomaly_score(self, X: Any) -> np.ndarray:
        return self.pipe[-1].decision_function(self.pipe[:-1].transform(X))


class SklearnScorer:
    """Anomaly score = -score_samples (every detector here: higher is more normal)."""

    def __init__(self, est: Any) -> None:
        self.est = est

    def fit(self, X: Any) -> SklearnScorer:
        self.est.fit(X)
        return self

    def anomaly_score(self, X: Any) -> np.ndarray:
        return -self.est.score_samples(X)


def optional_models() -> dict[str, Any]:
    """skar's other estimators, where this checkout has them."""
    found: dict[str, Any] = {}
    for module, name in [("skar.models.nade", "RNADEDensity"),
                         ("skar.models.transformer", "ARTransformerDensity")]:
        try:
            found[name] = getattr(__import__(module, fromlist=[name]), name)
        except Exception as exc:  # noqa: BLE001 - any import problem means "not available"
            NOTES.append(f"{name} skipped: not importable ({type(exc).__name__}: {exc}).")
    return found


def methods(kind: str, seed: int, quick: bool,
            ensemble: bool = False) -> dict[str, Callable[[], Any]]:
    """Name -> factory of a fresh scorer, for one data-set kind (``ensemble``: also a
    DensityOutlierDetector over a :class:`skar.DensityEnsemble` of five MADEs)."""
    neural = dict(random_state=seed)
    if quick:
        neural["max_iter"] = 30

    def detector(inner: Any) -> SklearnScorer:
        return SklearnScorer(DensityOutlierDetector(inner, random_state=seed))

    kde = GridSearchCV(KernelDensity(), {"bandwidth": np.logspace(-1, 1, 9)}, cv=3)
    gmm = GridSearchCV(
        GaussianMixture(reg_covar=1e-2, random_state=seed),
        {"n_components": [1, 2, 4], "covariance_type": ["full", "diag"]}, cv=3)
    out: dict[str, Callable[[], Any]] = {
        "DOD(MADE)": lambda: detector(MADEDensity(**neural)),
    }
    if ensemble:
        members = {k: v for k, v in neural.items() if k != "random_state"}
        out["DOD(MADE x5)"] = lambda: detector(DensityEnsemble(MADEDensity(**members),
                                                               random_state=seed))
    for name, cls in OPTIONAL.items():
        short = name.removesuffix("Density")
        out[f"DOD({short})"] = lambda cls=cls: detector(cls(**neural))
    out.update({
        "DOD(KDE)": lambda: detector(Pipeline([("prep", preprocessing(kind)),
                                               ("kde", clone(kde))])),
        "DOD(GMM)": lambda: detector(Pipeline([("prep", preprocessing(kind)),
                                               ("gmm", clone(gmm))])),
        "IsolationForest": lambda: SklearnScorer(make_pipeline(
            preprocessing(kind), IsolationForest(random_state=seed))),
        "LOF(novelty)": lambda: SklearnScorer(make_pipeline(
            preprocessing(kind), LocalOutlierFactor(novelty=True))),
        "OneClassSVM": lambda: SklearnScorer(make_pipeline(preprocessing(kind), OneClassSVM())),
    })
    if PYOD:
        from pyod.models.copod import COPOD
        from pyod.models.ecod import ECOD

        out["ECOD"] = lambda: PyODScorer(ECOD, preprocessing(kind))
        out["COPOD"] = lambda: PyODScorer(COPOD, preprocessing(kind))
    return out


# ---------------------------------------------------------------------------- run
def run(quick: bool, seed: int, ensemble: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    max_train = 300 if quick else None
    loaders: list[tuple[str, Callable[[], list[Task]]]] = [
        ("ionosphere", lambda: ionosphere(seed, max_train)),
        ("red wine", lambda: wine("red")(seed, max_train)),
        ("white wine", lambda: wine("white")(seed, max_train)),
        ("digits", lambda: digits(seed, max_train, [0] if quick else list(range(10)))),
        ("mixed wine", lambda: mixed_wine(seed, max_train)),
    ]
    rows, calib = [], []
    for dataset, load in loaders:
        for task in load():
            for method, make in methods(task.kind, seed, quick, ensemble).items():
                t0 = time.perf_counter()
                try:
                    scorer = make().fit(task.X_train)
                    score = scorer.anomaly_score(task.X_test)
                except Exception as exc:  # noqa: BLE001 - one failure must not stop the run
                    NOTES.append(f"{method} failed on {task.name}: {type(exc).__name__}: {exc}")
                    traceback.print_exc()
                    continue
                seconds = time.perf_counter() - t0
                if not np.all(np.isfinite(score)):
                    NOTES.append(f"{method} gave non-finite scores on {task.name}; "
                                 "they rank as the most anomalous.")
                    score = np.nan_to_num(score, nan=np.inf, posinf=np.inf, neginf=-np.inf)
                rows.append(dict(dataset=dataset, task=task.name, method=method,
                                 auroc=roc_auc_score(task.y_test, score),
                                 ap=average_precision_score(task.y_test, score),
                                 base_rate=task.y_test.mean(), seconds=seconds,
                                 n_train=len(task.X_train), n_test=len(task.y_test)))
                det = getattr(scorer, "est", None)
                if isinstance(det, DensityOutlierDetector):
                    p_normal = det.pvalues(_rows(task.X_test, task.y_test == 0))
                    p_anom = det.pvalues(_rows(task.X_test, task.y_test == 1))
                    # Benjamini-Hochberg at FDR_LEVEL over the whole test set at once.
                    flagged = det.set_params(fdr=FDR_LEVEL).predict(task.X_test) == -1
                    det.set_params(fdr=None)
                    anomalous = task.y_test == 1
                    calib.append(dict(dataset=dataset, method=method,
                                      false_alarms=np.mean(p_normal <= 0.05),
                                      detected=np.mean(p_anom <= 0.05),
                                      fdp=(flagged & ~anomalous).sum() / max(flagged.sum(), 1),
                                      bh_power=(flagged & anomalous).sum() / anomalous.sum(),
                                      fdr_bound=FDR_LEVEL * np.mean(~anomalous)))
                print(f"{task.name:12s} {method:18s} AUROC {rows[-1]['auroc']:.3f} "
                      f"AP {rows[-1]['ap']:.3f} ({seconds:.1f} s)", flush=True)
    res = pd.DataFrame(rows)
    # digits: one row per data set, the mean over its one-digit tasks.
    per_dataset = res.groupby(["dataset", "method"], sort=False).agg(
        auroc=("auroc", "mean"), ap=("ap", "mean"), seconds=("seconds", "sum"),
        base_rate=("base_rate", "mean"), n_train=("n_train", "mean"),
        n_test=("n_test", "mean")).reset_index()
    cal = pd.DataFrame(calib).groupby(["dataset", "method"], sort=False).mean().reset_index()
    return per_dataset, cal


def _rows(X: Any, mask: np.ndarray) -> Any:
    return X[mask] if not isinstance(X, pd.DataFrame) else X[mask].reset_index(drop=True)


def table(res: pd.DataFrame, metric: str, with_time: bool) -> pd.DataFrame:
    """Methods as rows, data sets as columns, plus the mean rank (over the data sets every
    method finished)."""
    wide = res.pivot(index="method", columns="dataset", values=metric)
    wide = wide[res["dataset"].unique()].reindex(res["method"].unique())
    complete = wide.dropna(axis=1)
    ranks = complete.apply(lambda col: pd.Series(rankdata(-col.to_numpy()), index=col.index))
    out = wide.map(lambda v: f"{v:.3f}" if pd.notna(v) else "n/a")
    out["mean rank"] = ranks.mean(axis=1).map(lambda v: f"{v:.2f}")
    if with_time:
        out["time (s)"] = res.groupby("method", sort=False)["seconds"].sum().map(
            lambda v: f"{v:.0f}")
    order = ranks.mean(axis=1).sort_values(kind="stable").index
    return out.loc[order]


def plot(res: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wide = res.pivot(index="dataset", columns="method", values="auroc")
    wide = wide.reindex(res["dataset"].unique())[res["method"].unique()]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    n = wide.shape[1]
    width = 0.8 / n
    x = np.arange(len(wide))
    cmap = plt.get_cmap("tab20")
    for j, method in enumerate(wide.columns):
        hatch = None if method.startswith("DOD") else "//"
        ax.bar(x + (j - n / 2 + 0.5) * width, wide[method], width, label=method,
               color=cmap(j), hatch=hatch, edgecolor="white", linewidth=0.3)
    ax.set_xticks(x, wide.index)
    ax.set_ylabel("AUROC (test: held-out normals + anomalies)")
    ax.set_ylim(0.3, 1.0)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_title("Semi-supervised anomaly detection: DensityOutlierDetector (DOD) and baselines")
    ax.legend(ncol=1, fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(df: pd.DataFrame, index_name: str) -> str:
    cols = [index_name, *df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx), *map(str, row.to_numpy())]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="at most 300 training rows, 30 epochs, digit 0 only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ensemble", action="store_true",
                        help="add DOD(MADE x5), a DensityEnsemble of five MADEs; writes "
                             "anomaly_ensemble[_quick].md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # several methods, small models: threads only contend here

    t0 = time.perf_counter()
    res, cal = run(args.quick, args.seed, args.ensemble)
    total = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = ("anomaly_ensemble" if args.ensemble else "anomaly") + ("_quick" if args.quick else "")
    png = RESULTS / f"{stem}.png"
    plot(res, png)
    sizes = res.groupby("dataset", sort=False)[["n_train", "n_test", "base_rate"]].first()
    sizes = sizes.assign(n_train=sizes.n_train.round().astype(int),
                         n_test=sizes.n_test.round().astype(int),
                         base_rate=sizes.base_rate.map(lambda v: f"{v:.2f}"))
    cal_wide = cal.assign(cell=[f"{a:.3f} / {d:.3f}" for a, d in
                                zip(cal.false_alarms, cal.detected)]).pivot(
        index="method", columns="dataset", values="cell")
    cal_wide = cal_wide[cal["dataset"].unique()].reindex(cal["method"].unique())
    fdr_wide = cal.assign(cell=[f"{f:.3f} / {d:.3f}" for f, d in
                                zip(cal.fdp, cal.bh_power)]).pivot(
        index="method", columns="dataset", values="cell")
    fdr_wide = fdr_wide[cal["dataset"].unique()].reindex(cal["method"].unique())
    bounds = cal.groupby("dataset", sort=False)["fdr_bound"].first()
    fdr_wide.loc["bound q m0/m"] = [f"{bounds[d]:.3f}" for d in fdr_wide.columns]
    cmd = ("python benchmarks/anomaly/run.py" + (" --quick" if args.quick else "")
           + (" --ensemble" if args.ensemble else ""))
    if args.seed:
        cmd += f" --seed {args.seed}"
    text = [
        "# Anomaly detection benchmark (semi-supervised)",
        "",
        f"Command: `{cmd}` (seed {args.seed}), {total / 60:.1f} min in total.",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch thread, "
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, Python "
        f"{platform.python_version()}"
        + (f", pyod {PYOD_VERSION}" if PYOD else "") + ".",
        "",
        "Protocol: fit on 60% of the normal rows; test on the other 40% plus anomalies (at most "
        "as many as the test normals). DOD = `skar.anomaly.DensityOutlierDetector`, default "
        "settings (20% of its training rows calibrate, so its density sees 80%). digits is the "
        "mean over one-digit-against-the-rest tasks. Mean rank over the data sets (1 = best).",
        "",
        "## AUROC",
        "",
        markdown(table(res, "auroc", with_time=True), "method"),
        "",
        "## Average precision",
        "",
        markdown(table(res, "ap", with_time=False), "method"),
        "",
        "## Data",
        "",
        markdown(sizes, "dataset"),
        "",
        "(n_train, n_test per task; base_rate = share of anomalies in the test set, the AP of a "
        "random ranking.)",
        "",
        "## Calibration of the conformal p-values",
        "",
        "Share of held-out *normal* test rows with p <= 0.05 (should be at most about 0.05) / "
        "share of anomalies with p <= 0.05 (power).",
        "",
        markdown(cal_wide, "detector"),
        "",
        f"## False discovery rate (Benjamini-Hochberg at {FDR_LEVEL})",
        "",
        f"`DensityOutlierDetector(fdr={FDR_LEVEL}).predict` on each whole test set: share of "
        "the flagged rows that are normal (the false discovery proportion of this one split) / "
        "share of the anomalies flagged. The guarantee bounds the *expected* proportion over "
        "splits by q m0/m (last row); one split can exceed it. digits: mean over its tasks. "
        "With n calibration rows the smallest p-value is 1/(n+1), and BH flags k of m rows only "
        "if 1/(n+1) <= k q / m: with --quick's 27-60 calibration rows against 180-600 test "
        "rows that needs dozens of anomalies scored below every calibration row, so little or "
        "nothing is flagged (power 0 is then the procedure doing its job).",
        "",
        markdown(fdr_wide, "detector"),
        "",
        f"![AUROC per data set]({png.name})",
        "",
        "## Notes",
        "",
        *[f"- {n}" for n in dict.fromkeys(NOTES)],
        "- Binarized MNIST as shipped (`skar.datasets.load_binarized_mnist`) has no labels, so "
        "one-digit-against-the-rest uses scikit-learn's 8x8 digits.",
    ]
    out = RESULTS / f"{stem}.md"
    out.write_text("\n".join(text) + "\n")
    print("\n".join(text))
    print(f"\nwrote {out} and {png}")


try:
    import pyod

    PYOD, PYOD_VERSION = True, pyod.__version__
except ImportError:
    PYOD, PYOD_VERSION = False, ""
    NOTES.append("pyod is not installed: the ECOD and COPOD columns are skipped "
                 "(pip install \"pyod>=2.0\", the `bench` extra).")
OPTIONAL = optional_models()

if __name__ == "__main__":
    main(sys.argv[1:])
