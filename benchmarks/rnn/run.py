"""RNNDensity benchmark: the stateful sampler against the plain loop, at T = 256 and 1,024.

Two exact samplers of the same network (a char-RNN: one categorical column per position over
a 65-symbol alphabet, tied columns, as on tiny Shakespeare), on the same generator:

* ``plain``: :func:`skar.base.sample_plain`, the generic loop every model has: at each of the
  T positions a full teacher-forced pass over all T positions (``T^2`` cell steps per row);
* ``stateful``: :func:`skar.models.rnn.sample_stateful`, one cell step per position from the
  carried state (``T`` cell steps per row).

For each length both samplers draw the same ``--plain-rows`` rows with the same seed, the
draws are checked to be identical, and the ratio of their times is the speed-up at equal
work. The plain loop is ``O(T^2)`` per row, so only a few rows are timed at T = 1,024. The
stateful sampler is also timed on ``--rows`` rows per call (its rows/s grows with the batch).
The network is untrained: sampling cost does not depend on the weights.

Usage::

    nice -n 19 python benchmarks/rnn/run.py            # full: LSTM and GRU
    nice -n 19 python benchmarks/rnn/run.py --quick    # LSTM only, one plain row

Writes ``benchmarks/results/rnn.md`` (``rnn_quick.md`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from skar.base import DensityModule, sample_plain
from skar.distributions import Categorical, ColumnConditionals
from skar.models.rnn import RNN, sample_stateful

RESULTS = Path(__file__).resolve().parents[1] / "results"
VOCABULARY = 65  # tiny Shakespeare's alphabet


def char_module(T: int, cell: str, hidden_size: int, n_layers: int) -> DensityModule:
    """An untrained tied char-RNN over windows of T characters."""
    torch.manual_seed(0)
    net = RNN([VOCABULARY] * T, ["categorical"] * T, [VOCABULARY] * T, tie_keys=[0] * T,
              cell=cell, hidden_size=hidden_size, n_layers=n_layers, seed=0)
    with torch.no_grad():  # logits of a few units: the draws are neither uniform nor fixed
        net.heads.weight.mul_(8.0)
    return DensityModule(net, ColumnConditionals([Categorical(VOCABULARY)] * T)).eval()


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def run(lengths, cells, hidden_size, n_layers, plain_rows, rows) -> list[str]:
    out = [f"### Sampling: seconds per row, hidden_size={hidden_size}, n_layers={n_layers}, "
           f"{VOCABULARY} symbols per position", "",
           f"| cell | T | plain s/row ({plain_rows} rows) | stateful s/row ({plain_rows} rows) "
           f"| stateful / plain speed-up | stateful rows/s ({rows} rows per call) |",
           "|---|---:|---:|---:|---:|---:|"]
    for cell in cells:
        for T in lengths:
            module = char_module(T, cell, hidden_size, n_layers)
            sample_stateful(module, 2, torch.Generator().manual_seed(0))  # warm-up
            fast, t_fast = timed(sample_stateful, module, plain_rows,
                                 torch.Generator().manual_seed(1))
            plain, t_plain = timed(sample_plain, module, plain_rows,
                                   torch.Generator().manual_seed(1))
            assert torch.equal(plain, fast), f"stateful != plain ({cell}, T={T})"
            _, t_big = timed(sample_stateful, module, rows, torch.Generator().manual_seed(2))
            out.append(f"| {cell} | {T:,} | {t_plain / plain_rows:.3g} | "
                       f"{t_fast / plain_rows:.3g} | {t_plain / t_fast:,.0f}x | "
                       f"{rows / t_big:,.1f} |")
            print(out[-1], flush=True)
    out += ["", "The two samplers drew identical rows in every cell (checked in the run). "
            "The speed-up compares the same rows with the same generator; the plain loop "
            "costs T full passes of T cell steps, the stateful sampler T cell steps, so the "
            "ratio grows about linearly with T."]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="LSTM only, one plain row")
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--hidden-size", type=int, default=256)
    ap.add_argument("--n-layers", type=int, default=1)
    ap.add_argument("--plain-rows", type=int, default=None,
                    help="rows drawn by both samplers (default 2, 1 with --quick)")
    ap.add_argument("--rows", type=int, default=64, help="rows per call of the stateful timing")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cells = ("lstm",) if args.quick else ("lstm", "gru")
    plain_rows = args.plain_rows or (1 if args.quick else 2)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start = time.perf_counter()
    command = " ".join(["python", "benchmarks/rnn/run.py", *map(shlex.quote, sys.argv[1:])])
    lines = [f"# RNNDensity sampling benchmark ({'quick' if args.quick else 'full'})", "",
             f"Command: `{command}`", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
             f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
             f"load average at start {load:.1f}", ""]
    lines += run(args.lengths, cells, args.hidden_size, args.n_layers, plain_rows, args.rows)
    lines += ["", f"Total time {(time.perf_counter() - start) / 60:.1f} min."]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"rnn{'_quick' if args.quick else ''}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
