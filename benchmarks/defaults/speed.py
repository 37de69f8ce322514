"""Scoring speed of the tabular defaults against GaussianMixture(10), side by side in one run.

Issue 17's speed targets: at 11 continuous columns and one thread, ``score_samples`` of
``MADEDensity()`` and ``RNADEDensity()`` at their defaults should reach a third of
``GaussianMixture(n_components=10)``'s rows per second, ``ARTransformerDensity()`` a
fifteenth. This script fits the four once (the skar models for 2 epochs: the scoring cost does
not depend on how long a model trained) and then times ``score_samples`` on 20,000 query rows
in interleaved rounds (every model once per round, the best round kept), so that a change of
load on a shared machine falls on every model alike.

Two sets of 11 columns:

- ``red_wine``: the red-wine columns, z-scored, as the benchmark's ``speed`` row uses them. At
  the defaults the schema finds their decimal grids, so every column is *quantized* (a cell
  probability per component, :func:`skar.distributions.log_cell_prob`: float32 with
  vectorised kernels since the speed-rnade change, float64 ``log_ndtr`` before);
- ``red_wine_jittered``: the same plus Gaussian noise of 0.001 standard deviations, which
  leaves no grid: 11 continuous columns, as the issue states the target.

Multiply-adds per row are those of :func:`run.multiply_adds_per_row` (``benchmarks/defaults``):
counted matrix products for MADE and the Transformer, the weight shapes for NADE/RNADE, and
``K * D * (D + 1)`` for the mixture. They count the network only, not the elementwise work of
the conditionals (softplus, exponentials, the cell probabilities).

``--baseline DIR`` also times the skar package found in ``DIR/skar`` (e.g. an export of an
earlier commit, ``git archive <commit> skar | tar -x -C DIR``), imported under another name in
the same process, for a before/after in one run.

Usage::

    python benchmarks/defaults/speed.py                       # ~2 minutes, one thread
    python benchmarks/defaults/speed.py --baseline /tmp/skar_before
    python benchmarks/defaults/speed.py --rounds 1 --rows 2000   # a quick look

On a machine shared with other work, read the CPU-time columns: they count only this
process's work, and the interleaved rounds give every model the same conditions.

Writes ``benchmarks/results/defaults_speed.md``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

import skar
from skar.datasets import load_rnade_uci

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("defaults_run", _HERE / "run.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["defaults_run"] = bench
_spec.loader.exec_module(bench)

RESULTS = _HERE.parent / "results"
MODELS = ["MADEDensity", "RNADEDensity", "ARTransformerDensity"]
TARGET = {"MADEDensity": 3, "RNADEDensity": 3, "ARTransformerDensity": 15}


def load_package(directory: Path, name: str = "skar_baseline") -> Any:
    """Import the package ``directory/skar`` under ``name`` (its imports are relative)."""
    spec = importlib.util.spec_from_file_location(
        name, directory / "skar" / "__init__.py",
        submodule_search_locations=[str(directory / "skar")])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def columns(jitter: bool) -> np.ndarray:
    """Red wine's 11 columns, z-scored; with ``jitter``, plus N(0, 0.001^2) noise."""
    X = np.asarray(load_rnade_uci("red_wine"), dtype=np.float64)
    X = (X - X.mean(0)) / X.std(0)
    if jitter:
        X = X + 1e-3 * np.random.RandomState(1).standard_normal(X.shape)
    return X


def score_rate(model: Any, query: np.ndarray) -> tuple[float, float]:
    """Rows per second of one ``score_samples`` call: by the process's CPU time, and by the
    wall clock. With one thread the CPU time is the work done, whatever else the machine
    runs; the wall clock also counts the time other processes held the core, which costs a
    long call (a slow model) more than a short one."""
    t, c = time.perf_counter(), time.process_time()
    model.score_samples(query)
    return (len(query) / max(time.process_time() - c, 1e-9),
            len(query) / (time.perf_counter() - t))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--baseline", type=Path, help="a directory holding an earlier skar/")
    args = p.parse_args()
    torch.set_num_threads(1)
    # One thread for numpy's BLAS and OpenMP too: GaussianMixture scores through OpenBLAS,
    # which otherwise runs a thread per core, and on a loaded machine its spinning threads
    # counted against its CPU time (GMM(10) measured 220,000 to 320,000 rows/s that way, and
    # about 1,000,000 on a quiet machine).
    threadpool_limits(1)
    packages = {"": skar}
    if args.baseline is not None:
        packages[" (baseline)"] = load_package(args.baseline)
    lines = []
    for data in ("red_wine", "red_wine_jittered"):
        X = columns(data.endswith("jittered"))
        query = X[np.random.RandomState(0).randint(len(X), size=args.rows)]
        models: dict[str, Any] = {
            "GaussianMixture(10)": GaussianMixture(10, covariance_type="full",
                                                   random_state=0).fit(X)}
        kinds = ""
        for suffix, pkg in packages.items():
            for name in MODELS:
                est = getattr(pkg, name)(random_state=0, max_iter=2).fit(X)
                models[name + "()" + suffix] = est
                kinds = kinds or ", ".join(sorted({
                    "quantized" if getattr(f, "step", 0) > 0 else f.kind
                    for f in est.net_.module_.conditionals.families}))
        rates = {k: 0.0 for k in models}
        walls = {k: 0.0 for k in models}
        for m in models.values():
            m.score_samples(query[:200])  # warm-up
        for _ in range(args.rounds):
            for k, m in models.items():
                cpu, wall = score_rate(m, query)
                rates[k], walls[k] = max(rates[k], cpu), max(walls[k], wall)
        gmm, gmm_wall = rates["GaussianMixture(10)"], walls["GaussianMixture(10)"]
        lines += [f"### {data} ({X.shape[1]} columns, the skar models see: {kinds})", "",
                  "| model | rows/s (CPU time) | ratio to GMM(10) | target | rows/s (wall) | "
                  "ratio (wall) | multiply-adds/row | rows/s x multiply-adds (G/s, CPU) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for k, m in models.items():
            if k.startswith("GaussianMixture"):
                macs, how = 10 * X.shape[1] * (X.shape[1] + 1), "K D (D+1)"
                target = ""
            else:
                macs, how = bench.multiply_adds_per_row(m, query[:2000])
                target = f"1/{TARGET[k.split('(')[0]]}"
            lines.append(f"| {k} | {rates[k]:,.0f} | 1/{gmm / rates[k]:.1f} | {target} | "
                         f"{walls[k]:,.0f} | 1/{gmm_wall / walls[k]:.1f} | "
                         f"{macs:,.0f} ({how}) | {rates[k] * macs / 1e9:.2f} |")
        lines.append("")
        print("\n".join(lines[-len(models) - 5:]), flush=True)
    head = ["# Scoring speed at the defaults vs GaussianMixture(10) (one run)", "",
            f"Command: `python benchmarks/defaults/speed.py "
            f"{' '.join(sys.argv[1:])}`  ",
            f"{args.rows:,} query rows, best of {args.rounds} interleaved rounds (rows/s by the "
            "process's CPU time, and by the wall clock), one torch "
            f"thread, {platform.machine()} with {os.cpu_count()} cores shared with other work "
            f"(load average {os.getloadavg()[0]:.1f} at the end), torch {torch.__version__}. "
            "Multiply-adds count the network's matrix products only (see the script).", ""]
    (RESULTS / "defaults_speed.md").write_text("\n".join(head + lines) + "\n")


if __name__ == "__main__":
    main()
