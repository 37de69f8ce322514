"""Peak memory of ``fit`` and ``score_samples`` against n_samples and against batch size.

Protocol: every measurement runs in a fresh Python process, so that one measurement's peak
cannot hide another's. The process imports skar, draws ``X`` (n_samples x 8, float64, a
correlated Gaussian, seeded) and, for ``score_samples``, fits a MADEDensity on the first 2,000
rows and scores one batch to warm up. It then reads its peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), runs the operation once and reads the peak
again; the table reports the difference ("extra peak"), next to the size of ``X`` itself.

- ``fit``: ``MADEDensity(hidden_layer_sizes=(64, 64), batch_size=B, max_iter=1)`` with the
  default early stopping (a 10% validation split): one epoch over all rows.
- ``score_samples``: the fitted model scores all ``n_samples`` rows (batches of
  ``max(B, 1024)`` rows).

What to expect: the extra peak grows with the data itself (skar keeps an encoded float32 copy
of the rows for training and scoring, and returns one float64 per row), i.e. a fixed number of
bytes per row, and with the batch size (activations, gradients), but the network never sees
more than one batch at a time. The second table fixes n_samples and varies the batch size.

Run::

    .venv/bin/python benchmarks/memory/run.py            # 10^4 .. 10^6 rows (a few minutes)
    .venv/bin/python benchmarks/memory/run.py --quick    # 10^4 .. 10^5 rows (under a minute)

Writes ``benchmarks/results/memory.md`` (``memory_quick.md`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

N_FEATURES = 8
RESULTS = Path(__file__).resolve().parents[1] / "results"


def _peak_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def child(op: str, n: int, batch_size: int) -> dict:
    """One measurement (runs in its own process)."""
    import numpy as np
    import torch

    from skar import MADEDensity

    torch.set_num_threads(1)
    rng = np.random.RandomState(0)
    mix = rng.normal(size=(N_FEATURES, N_FEATURES)) / np.sqrt(N_FEATURES)
    X = rng.normal(size=(n, N_FEATURES)) @ mix
    params = dict(hidden_layer_sizes=(64, 64), batch_size=batch_size, max_iter=1,
                  device="cpu", random_state=0)
    if op == "score":
        est = MADEDensity(**params).fit(X[:2000])
        est.score_samples(X[:2048])
    before = _peak_mib()
    t0 = time.perf_counter()
    if op == "fit":
        MADEDensity(**params).fit(X)
    else:
        est.score_samples(X)
    seconds = time.perf_counter() - t0
    after = _peak_mib()
    return {"op": op, "n": n, "batch_size": batch_size, "x_mib": X.nbytes / 2**20,
            "before_mib": before, "extra_mib": after - before, "seconds": seconds}


def measure(op: str, n: int, batch_size: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", op, str(n), str(batch_size)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict], key: str) -> list[str]:
    lines = [f"| {key} | X (MiB) | fit: extra peak (MiB) | fit: MiB per 10^5 rows "
             "| score_samples: extra peak (MiB) | score: MiB per 10^5 rows |",
             "|---:|---:|---:|---:|---:|---:|"]
    by = {}
    for r in rows:
        by.setdefault(r["n"] if key == "n_samples" else r["batch_size"], {})[r["op"]] = r
    for k, ops in by.items():
        f, s = ops["fit"], ops["score"]
        n = f["n"]
        lines.append(
            f"| {k:,} | {f['x_mib']:.1f} | {f['extra_mib']:.1f} | "
            f"{f['extra_mib'] / n * 1e5:.1f} | {s['extra_mib']:.1f} | "
            f"{s['extra_mib'] / n * 1e5:.1f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^4 .. 10^5 rows only")
    parser.add_argument("--child", nargs=3, metavar=("OP", "N", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        op, n, bs = args.child
        print(json.dumps(child(op, int(n), int(bs))))
        return

    sizes = [10_000, 30_000, 100_000] if args.quick else [10_000, 30_000, 100_000, 300_000,
                                                          1_000_000]
    batches = [256, 1024, 4096, 16384]
    batch_n = 30_000 if args.quick else 100_000
    by_n, by_batch = [], []
    for n in sizes:
        for op in ("fit", "score"):
            by_n.append(measure(op, n, 256))
            print(f"n={n:>9,} {op:5s} extra peak {by_n[-1]['extra_mib']:7.1f} MiB", flush=True)
    for bs in batches:
        for op in ("fit", "score"):
            by_batch.append(measure(op, batch_n, bs))
            print(f"batch={bs:>6} {op:5s} extra peak {by_batch[-1]['extra_mib']:7.1f} MiB",
                  flush=True)

    import torch

    import skar

    command = "benchmarks/memory/run.py" + (" --quick" if args.quick else "")
    lines = [
        "# Peak memory of fit and score_samples",
        "",
        f"Command: `.venv/bin/python {command}`; skar {skar.__version__}, torch "
        f"{torch.__version__}, Python {platform.python_version()}, {platform.machine()}, "
        f"{platform.system()}; CPU, 1 torch thread.",
        "",
        "Extra peak = peak resident set size during the call minus the peak before it, in a "
        f"fresh process per cell. X is n_samples x {N_FEATURES} float64. MADEDensity"
        "(hidden_layer_sizes=(64, 64), max_iter=1).",
        "",
        "## Against n_samples (batch_size=256; scoring batches of 1,024 rows)",
        "",
        *table(by_n, "n_samples"),
        "",
        f"## Against batch size (n_samples={batch_n:,}; scoring batches of max(batch_size, "
        "1024))",
        "",
        *table(by_batch, "batch_size"),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("memory_quick.md" if args.quick else "memory.md")
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
