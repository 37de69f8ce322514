"""What the Transformer's size costs: scoring speed, arithmetic and held-out log-likelihood.

Issue 17 asks ``ARTransformerDensity()`` to score at least 1/15 of
``GaussianMixture(n_components=10)``'s rows per second (11 continuous columns, one thread).
This script measures how far the arithmetic alone can take the default size, and what smaller
sizes would give, so that the choice of defaults can be made on numbers. It changes no default.

Three parts (``--part``):

- ``speed``: fits ``ARTransformerDensity`` at ``d_model`` in {32, 64} x ``n_layers`` in {1, 2}
  (the other parameters at their defaults, 2 epochs: the scoring cost does not depend on how
  long a model trained) on red wine's 11 columns with a 0.001-sd jitter (continuous, as the
  issue states the target), and ``GaussianMixture(10)``, and times ``score_samples`` on 20,000
  rows in interleaved rounds (best round by process CPU time). Multiply-adds per row are
  counted by :func:`run.multiply_adds_per_row` (the matrix products that run). The default
  is timed twice: on the scoring pass (``fast_eval``, the default) and on the module path
  (``fast_eval=False``: ``nn.Linear``, SDPA, whole batches), a before/after in one run.
  Beside each row, the *roofline*: the blocks' matrix products as plain ``torch.matmul``
  calls on preallocated tensors, ``(B*T, C) @ (C, 3C)``, ``(B*T, C) @ (C, C)``,
  ``(B*T, C) @ (C, 4C)``, ``(B*T, 4C) @ (4C, C)`` per layer, with the shapes each path runs
  (the scoring pass: ``T = D - 1 = 10`` positions, ``B`` its chunk of rows; the module path:
  ``T = 11``, ``B`` the estimator's scoring batch), timed alone: the multiply-adds per second
  one core reaches on these shapes with nothing else (no attention, LayerNorm, GELU, heads or
  mixture log-densities). "rows/s at the roofline" divides it by the counted multiply-adds
  per row: what arithmetic alone would allow.
- ``profile``: a :mod:`torch.profiler` table of one default model's scoring (one thread).
- ``ll``: held-out log-likelihood of the four sizes next to KDE-CV and GMM-CV, through
  ``benchmarks/defaults/run.py`` (its data sets, splits and table; extra entries are added for
  the sizes, the default one is its ``ARTransformerDensity()``). The remaining arguments go to
  ``run.py`` (e.g. ``--datasets moons red_wine boston --seeds 1 --label size``).

Usage::

    python benchmarks/defaults/transformer_size.py --part speed --rounds 3
    python benchmarks/defaults/transformer_size.py --part profile
    python benchmarks/defaults/transformer_size.py --part ll --label size \\
        --datasets moons red_wine boston --seeds 1 --out transformer_size_ll

``speed`` writes ``benchmarks/results/transformer_size_speed.md``; ``ll`` writes
``benchmarks/results/<out>.md`` and its cells. Nothing is downloaded.
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

from skar import ARTransformerDensity
from skar.datasets import load_rnade_uci

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("defaults_run", _HERE / "run.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["defaults_run"] = bench
_spec.loader.exec_module(bench)

RESULTS = _HERE.parent / "results"
MODULE_PATH = "ARTransformerDensity() (module path, fast_eval=False)"
SIZES = [(32, 1), (32, 2), (64, 1), (64, 2)]  # (d_model, n_layers); (64, 2) is the default


def size_name(d_model: int, n_layers: int) -> str:
    if (d_model, n_layers) == (64, 2):
        return "ARTransformerDensity()"
    return f"ARTransformerDensity(d_model={d_model}, n_layers={n_layers})"


def jittered_red_wine() -> np.ndarray:
    """Red wine's 11 columns, z-scored, plus N(0, 0.001^2) noise (no decimal grid left)."""
    X = np.asarray(load_rnade_uci("red_wine"), dtype=np.float64)
    X = (X - X.mean(0)) / X.std(0)
    return X + 1e-3 * np.random.RandomState(1).standard_normal(X.shape)


def _cpu_rate(fn: Any, n_rows: int) -> float:
    c = time.process_time()
    fn()
    return n_rows / max(time.process_time() - c, 1e-9)


def roofline(d_model: int, n_layers: int, T: int, batch: int, rounds: int) -> float:
    """Multiply-adds per second of the blocks' four matrix products as bare ``torch.matmul``
    on preallocated operands (``out=``), ``batch`` rows of ``T`` positions per call."""
    C, n = d_model, batch * T
    g = torch.Generator().manual_seed(0)
    shapes = [(C, 3 * C), (C, C), (C, 4 * C), (4 * C, C)]
    ops = [(torch.randn(n, k, generator=g), torch.randn(k, m, generator=g), torch.empty(n, m))
           for k, m in shapes]
    macs = n_layers * n * sum(k * m for k, m in shapes)
    reps = max(1, int(2e9 // macs))  # about 2 G multiply-adds per timing

    def go() -> None:
        for _ in range(reps):
            for _ in range(n_layers):
                for a, b, out in ops:
                    torch.matmul(a, b, out=out)

    go()
    return max(_cpu_rate(go, reps) for _ in range(rounds)) * macs


def part_speed(rounds: int, rows: int) -> None:
    # One thread for everything, numpy's BLAS (GaussianMixture) included: with its default
    # two OpenBLAS threads on a loaded machine GMM's CPU-time rate fell to a third (200k vs
    # 620-780k rows/s in one measurement), which would flatter every ratio to it.
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        _part_speed(rounds, rows)


def _part_speed(rounds: int, rows: int) -> None:
    X = jittered_red_wine()
    query = X[np.random.RandomState(0).randint(len(X), size=rows)]
    models: dict[str, Any] = {
        "GaussianMixture(10)": GaussianMixture(10, covariance_type="full",
                                               random_state=0).fit(X)}
    for d, L in SIZES:
        models[size_name(d, L)] = ARTransformerDensity(d_model=d, n_layers=L, random_state=0,
                                                       max_iter=2).fit(X)
    # The default again on the module path (nn.Linear, SDPA, no chunks): the scoring path's
    # before/after in the same run.
    module_path = ARTransformerDensity(random_state=0, max_iter=2).fit(X)
    module_path.net_.module_.network.fast_eval = False
    models[MODULE_PATH] = module_path
    for m in models.values():
        m.score_samples(query[:200])  # warm-up
    rates = dict.fromkeys(models, 0.0)
    for _ in range(rounds):
        for k, m in models.items():
            rates[k] = max(rates[k], _cpu_rate(lambda m=m: m.score_samples(query), rows))
    gmm = rates["GaussianMixture(10)"]
    chunk = models[size_name(64, 2)].net_.module_.network.eval_chunk_rows
    lines = ["| model | rows/s (CPU) | ratio to GMM(10) | multiply-adds/row | G multiply-adds/s "
             "achieved | matmul-only roofline (G/s) | achieved / roofline | rows/s at the "
             "roofline | ratio to GMM at the roofline |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    D = X.shape[1]
    lines.append(f"| GaussianMixture(10) | {gmm:,.0f} | 1/1.0 | {10 * D * (D + 1):,} | "
                 f"{gmm * 10 * D * (D + 1) / 1e9:.2f} | | | | |")
    # The scoring pass runs positions 1..D-1 per row (position 0 once per call), in chunks of
    # `chunk` rows; the module path runs all D positions on whole batches.
    rows_of = [(size_name(d, L), d, L, D - 1, chunk) for d, L in SIZES]
    rows_of.append((MODULE_PATH, 64, 2, D, module_path._inference_batch_size))
    for k, d, L, T, batch in rows_of:
        macs, _ = bench.multiply_adds_per_row(models[k], query[:2000])
        roof = roofline(d, L, T, batch, rounds)
        at_roof = roof / macs
        lines.append(f"| {k} | {rates[k]:,.0f} | 1/{gmm / rates[k]:.1f} | {macs:,.0f} | "
                     f"{rates[k] * macs / 1e9:.2f} | {roof / 1e9:.2f} | "
                     f"{rates[k] * macs / roof:.0%} | {at_roof:,.0f} | 1/{gmm / at_roof:.1f} |")
    print("\n".join(lines), flush=True)
    head = ["# ARTransformerDensity: scoring speed by size, against GaussianMixture(10)", "",
            f"Command: `python benchmarks/defaults/transformer_size.py "
            f"{' '.join(sys.argv[1:])}`  ",
            f"Red wine's 11 columns z-scored plus a 0.001-sd jitter (all continuous), "
            f"{rows:,} query rows, best of {rounds} interleaved rounds by the process's CPU "
            f"time, one torch thread and one BLAS thread (threadpoolctl), {chunk} rows per "
            f"chunk of the scoring pass, {platform.machine()} with "
            f"{os.cpu_count()} cores shared with other work (load average "
            f"{os.getloadavg()[0]:.1f} at the end), torch {torch.__version__} "
            f"({torch.backends.cpu.get_cpu_capability()}). The roofline times only the blocks' "
            "four matrix products per layer as bare `torch.matmul` on the same shapes "
            "(see the script); multiply-adds/row are counted over the whole scoring pass.", ""]
    (RESULTS / "transformer_size_speed.md").write_text("\n".join(head + lines) + "\n")


def part_profile(rows: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(1)
    X = jittered_red_wine()
    query = X[np.random.RandomState(0).randint(len(X), size=rows)]
    est = ARTransformerDensity(random_state=0, max_iter=2).fit(X)
    est.score_samples(query[:200])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        est.score_samples(query)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def part_ll(rest: list[str]) -> None:
    """run.py with one extra entry per non-default size (run.py's own main and table)."""
    base_entries = bench.model_entries

    def entries() -> list[Any]:
        out = base_entries()
        for d, L in SIZES[:-1]:
            out.append(bench.Entry(
                size_name(d, L),
                lambda s, X, q, d=d, L=L: ARTransformerDensity(
                    d_model=d, n_layers=L, random_state=s, **bench._quick(q))))
        return out

    bench.model_entries = entries
    models = ["KernelDensity (CV)", "GaussianMixture (CV)"] + [size_name(d, L) for d, L in SIZES]
    if "--models" not in rest:
        rest = rest + ["--models", *models]
    sys.argv = [str(_HERE / "run.py"), *rest]
    bench.main()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=["speed", "profile", "ll"], required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rows", type=int, default=20_000)
    args, rest = p.parse_known_args()
    if args.part == "ll":
        part_ll(rest)
    elif args.part == "speed":
        part_speed(args.rounds, args.rows)
    else:
        part_profile(args.rows)


if __name__ == "__main__":
    main()
