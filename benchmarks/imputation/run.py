"""Imputation of missing cells: skar's conditional densities against scikit-learn's imputers.

Protocol, for every data set and seed: the rows are shuffled (seeded) and split 70% train /
30% test; every method is fitted on the complete training rows; 20% of the test cells are
removed completely at random (MCAR; a row keeps at least one observed cell), and every method
fills them. Reported:

- ``RMSE``: root mean squared error of the filled cells in units of each column's training
  standard deviation (so columns weigh alike), over all removed cells;
- ``NLL``: the held-out negative log-likelihood of the true values under the method's
  conditional distribution of the missing cells given the observed ones, in nats per missing
  cell, in the units of the data: ``-(log p(x) - log p(x_observed)) / n_missing`` per row. For
  skar this is ``score_samples`` of the complete row minus ``score_samples`` of the masked row
  (the marginal of the observed cells: exact when the ordering puts the missing columns last,
  otherwise an importance estimate with 256 draws, see ``skar.missing``). For the Gaussian and
  the Gaussian mixture it is the closed-form conditional. scikit-learn's imputers give point
  values only (no NLL).

Methods: ``SimpleImputer`` (mean), ``KNNImputer`` (5 neighbours), ``IterativeImputer``
(BayesianRidge, 10 rounds), all on standardised columns; the multivariate Gaussian and a
``GaussianMixture`` (5 full components) conditioned in closed form (conditional mean as the
point value); ``SkarImputer`` over ``MADEDensity`` and ``RNADEDensity`` (conditional mean of 100
conditional draws; ``skar.missing``).

Data sets (shipped; nothing is downloaded): the RNADE paper's UCI matrices
(``skar.datasets.load_rnade_uci``): ``red_wine`` (1,599 x 11), ``parkinsons`` (5,875 x 15;
``--quick`` uses 2,000 rows) and ``boston`` (506 x 10).

Run::

    nice -n 19 .venv/bin/python benchmarks/imputation/run.py --quick   # one seed, short fits
    nice -n 19 .venv/bin/python benchmarks/imputation/run.py           # three seeds, full fits

Writes ``benchmarks/results/imputation_quick.md`` (``imputation.md`` without ``--quick``).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.mixture import GaussianMixture

from skar.datasets import load_rnade_uci
from skar.missing import SkarImputer, marginal_score_samples
from skar.models.made import MADEDensity
from skar.models.nade import RNADEDensity

RESULTS = Path(__file__).resolve().parents[1] / "results"
DATASETS = ("red_wine", "parkinsons", "boston")
MISSING_RATE = 0.2


def mcar(shape: tuple[int, int], rate: float, rng: np.random.Generator) -> np.ndarray:
    """A mask of missing cells, each with probability ``rate``, every row keeping one cell."""
    mask = rng.random(shape) < rate
    full = mask.all(1)
    mask[full, rng.integers(0, shape[1], full.sum())] = False
    return mask


def gaussian_conditional(mu, cov, x, miss):
    """Conditional means of the missing cells and log p(x_m | x_o) of every row, closed form."""
    fill = x.copy()
    logp = np.zeros(x.shape[0])
    for r in range(x.shape[0]):
        m, o = miss[r], ~miss[r]
        if not m.any():
            continue
        gain = np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, m)]).T  # (|m|, |o|)
        mean = mu[m] + gain @ (x[r, o] - mu[o])
        c = cov[np.ix_(m, m)] - gain @ cov[np.ix_(o, m)]
        fill[r, m] = mean
        logp[r] = multivariate_normal(mean, c, allow_singular=True).logpdf(x[r, m])
    return fill, logp


def mixture_conditional(gmm, x_true, x, miss):
    """Conditional means and log p(x_m | x_o) of a full-covariance GaussianMixture."""
    fill = x.copy()
    logp = np.zeros(x.shape[0])
    for r in range(x.shape[0]):
        m, o = miss[r], ~miss[r]
        if not m.any():
            continue
        logw, means, logs = [], [], []
        for k in range(gmm.n_components):
            mu, cov = gmm.means_[k], gmm.covariances_[k]
            gain = np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, m)]).T
            cm = mu[m] + gain @ (x[r, o] - mu[o])
            cc = cov[np.ix_(m, m)] - gain @ cov[np.ix_(o, m)]
            logw.append(np.log(gmm.weights_[k])
                        + multivariate_normal(mu[o], cov[np.ix_(o, o)]).logpdf(x[r, o]))
            means.append(cm)
            logs.append(multivariate_normal(cm, cc, allow_singular=True).logpdf(x_true[r, m]))
        logw = np.array(logw) - logsumexp(logw)
        fill[r, m] = np.exp(logw) @ np.array(means)
        logp[r] = logsumexp(logw + np.array(logs))
    return fill, logp


def run_one(name: str, seed: int, quick: bool) -> list[dict]:
    X = load_rnade_uci(name)
    rng = np.random.default_rng(seed)
    X = X[rng.permutation(len(X))]
    if quick and len(X) > 2000:
        X = X[:2000]
    n_train = int(0.7 * len(X))
    train, test = X[:n_train], X[n_train:]
    mean, std = train.mean(0), train.std(0)
    miss = mcar(test.shape, MISSING_RATE, rng)
    masked = np.where(miss, np.nan, test)
    z_train, z_masked, z_test = (train - mean) / std, (masked - mean) / std, (test - mean) / std
    log_units = np.where(miss, np.log(std), 0.0).sum(1)  # standardised -> data units
    n_miss = miss.sum(1)
    rows = n_miss > 0
    out = []

    def record(method, filled_z, seconds, logp=None, estimated=np.nan, se=np.nan):
        err = (filled_z - z_test)[miss]
        nll = np.nan
        if logp is not None:
            nll = float(-(logp[rows]).sum() / n_miss[rows].sum())
        out.append({"data": name, "seed": seed, "method": method,
                    "RMSE": float(np.sqrt(np.mean(err ** 2))), "NLL": nll,
                    "estimated": estimated, "se": se, "seconds": seconds})

    for method, imputer in (
        ("SimpleImputer(mean)", SimpleImputer()),
        ("KNNImputer(5)", KNNImputer(n_neighbors=5)),
        ("IterativeImputer", IterativeImputer(max_iter=10, random_state=seed)),
    ):
        t = time.perf_counter()
        filled = imputer.fit(z_train).transform(z_masked)
        record(method, filled, time.perf_counter() - t)

    t = time.perf_counter()
    cov = np.cov(z_train, rowvar=False) + 1e-6 * np.eye(z_train.shape[1])
    # The conditional means read only the observed cells; log p(x_m | x_o) (standardised
    # units, converted by log_units) reads the true missing values.
    filled, logp = gaussian_conditional(z_train.mean(0), cov, z_test, miss)
    record("Gaussian (closed form)", filled, time.perf_counter() - t, logp - log_units)

    t = time.perf_counter()
    gmm = GaussianMixture(5, covariance_type="full", reg_covar=1e-4, n_init=2,
                          random_state=seed).fit(z_train)
    filled, logp = mixture_conditional(gmm, z_test, z_test, miss)
    record("GaussianMixture(5) (closed form)", filled, time.perf_counter() - t,
           logp - log_units)

    max_iter = 60 if quick else 300
    for method, est in (
        ("skar MADEDensity", MADEDensity(max_iter=max_iter, random_state=seed)),
        ("skar RNADEDensity", RNADEDensity(max_iter=max_iter, random_state=seed)),
    ):
        t = time.perf_counter()
        imp = SkarImputer(est, n_draws=100, random_state=seed).fit(train)
        filled = (imp.transform(masked) - mean) / std
        model = imp.estimator_
        # score_samples(masked) with its method and standard error (the same defaults).
        observed, se, how = marginal_score_samples(model, masked)
        logp = model.score_samples(test) - observed
        estimated = how[rows] == "importance"
        record(method, filled, time.perf_counter() - t, logp,
               estimated=float(estimated.mean()),
               se=float(se[rows].sum() / n_miss[rows].sum()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, short fits")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [0] if args.quick else [0, 1, 2]
    rows = []
    for name in args.datasets:
        for seed in seeds:
            t = time.perf_counter()
            rows.extend(run_one(name, seed, args.quick))
            print(f"{name} seed {seed}: {time.perf_counter() - t:.0f} s", flush=True)
    frame = pd.DataFrame(rows)
    table = frame.groupby(["data", "method"], sort=False)[
        ["RMSE", "NLL", "estimated", "se", "seconds"]].mean()
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / ("imputation_quick.md" if args.quick else "imputation.md")
    lines = [
        "# Imputation: 20% MCAR test cells" + (" (quick)" if args.quick else ""),
        "",
        f"Command: `nice -n 19 .venv/bin/python benchmarks/imputation/run.py"
        f"{' --quick' if args.quick else ''}` (one torch thread). Seeds {seeds}; mean over "
        "seeds. RMSE in training standard deviations over the removed cells (lower is "
        "better); NLL in nats per missing cell, data units, of the true values under the "
        "method's conditional distribution (lower is better; point imputers have none). "
        "Every method is fitted on the complete training rows (70%); the test rows (30%) "
        "lose 20% of their cells. seconds: fit + imputation (+ scoring for NLL). skar's NLL "
        "is `-(score_samples(x) - score_samples(x_masked))`: `estimated` is the share of "
        "masked rows whose marginal `log p(x_observed)` is an importance estimate (256 "
        "draws; the others are exact by ordering), `se` its mean standard error in nats per "
        "missing cell. The estimate of a log is biased low (Jensen, about se^2/2 per row), "
        "which makes skar's NLL slightly optimistic on estimated rows.",
        "",
        f"python {platform.python_version()}, torch {torch.__version__}, scikit-learn "
        f"{sklearn.__version__}, {platform.machine()}",
        "",
        "| data | method | RMSE | NLL | estimated | se | seconds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]

    def cell(v, fmt):
        return "" if np.isnan(v) else format(v, fmt)

    for (data, method), r in table.iterrows():
        lines.append(f"| {data} | {method} | {r['RMSE']:.3f} | {cell(r['NLL'], '.3f')} | "
                     f"{cell(r['estimated'], '.0%')} | {cell(r['se'], '.4f')} | "
                     f"{r['seconds']:.1f} |")
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
