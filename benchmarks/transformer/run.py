"""ARTransformerDensity benchmark: sampling with and without the key/value cache, and training
throughput against MADEDensity, side by side in one run on the same machine.

Part 1 (sampling): rows per second of three exact samplers of the same network at
D = 64, 256 and 784 binary columns (pixels as a sequence of 784 binary tokens), on the same
rows and generator:

* ``plain``: :func:`skar.base.sample_plain`, the generic loop every model has: D full
  causal passes over all D positions (``O(D^3 C)`` attention per row);
* ``prefix``: the nanoGPT ``generate`` loop without a cache: step ``i`` re-runs positions
  ``0..i`` only (still ``O(D^3 C)``, about a third of ``plain``'s attention);
* ``cached``: :func:`skar.models.transformer.sample_cached`, one single-query step per position
  against cached keys and values (``O(D^2 C)``).

The three draws are checked to be identical before any number is printed. The network is
untrained: sampling cost does not depend on the weights.

Part 2 (training): rows per second of ``fit`` (epochs from ``history_``, excluding start-up)
for ARTransformerDensity and MADEDensity on the same rows: a 64-column synthetic binary table,
UCI red wine (11 continuous columns) and binarized MNIST (784 binary columns).

Usage::

    python benchmarks/transformer/run.py            # full
    python benchmarks/transformer/run.py --quick    # fewer rows, smaller MNIST slice

Writes ``benchmarks/results/transformer.md`` and ``transformer_sampling.png`` there (with a
``_quick`` suffix for ``--quick``). On a shared CPU, ``OMP_NUM_THREADS=1`` avoids OpenMP
threads spinning against other processes (10x slower training was seen without it).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from skar import ARTransformerDensity, MADEDensity
from skar.base import DensityModule, sample_plain
from skar.datasets import load_binarized_mnist, load_wine_quality
from skar.distributions import Bernoulli, ColumnConditionals
from skar.models.transformer import ARTransformer, sample_cached

RESULTS = Path(__file__).resolve().parents[1] / "results"
MODEL = dict(d_model=64, n_heads=4, n_layers=2)  # trained in part 2
SAMPLER = dict(d_model=32, n_heads=4, n_layers=2)  # part 1: the plain loop at D=784 is slow


@torch.no_grad()
def sample_prefix(module: DensityModule, n_samples: int, generator: torch.Generator):
    """nanoGPT's ``generate`` without a cache: step ``i`` runs the blocks on positions
    ``0..i`` and reads the last one (single ordering, binary columns)."""
    net, cond = module.network, module.conditionals
    D, C = cond.n_features, net.d_model
    o = net.ordering(0)
    x = torch.zeros(n_samples, D)
    for i, d in enumerate(o.tolist()):
        e = net.embed_values(x)  # (B, D, C)
        tok = torch.cat([net.start.expand(n_samples, 1, C), e[:, o[:i]]], dim=1)  # (B, i+1, C)
        h = tok + net.wpe.weight[: i + 1] + net.wqe(o[: i + 1])  # (B, i+1, C)
        for block in net.blocks:
            h = block(h)
        h = net.ln_f(h[:, -1])  # (B, C)
        params = torch.zeros(n_samples, cond.n_params)
        a, b = cond.offsets[d], cond.offsets[d + 1]
        params[:, a:b] = net.heads.column(h, d)
        x[:, d] = cond.sample_column(params, d, generator)
    return x


def binary_module(D: int) -> DensityModule:
    torch.manual_seed(0)
    net = ARTransformer([1] * D, ["binary"] * D, [1] * D, seed=0, **SAMPLER)
    with torch.no_grad():  # spread the logits so the draws are not all near 1/2
        net.heads.bias.normal_(0, 2.0)
    return DensityModule(net, ColumnConditionals([Bernoulli()] * D)).eval()


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def sampling(dims: tuple[int, ...], n_rows: int, n_big: int) -> tuple[list[str], dict]:
    out = [f"### Sampling: rows per second, {n_rows} rows per call, binary columns, "
           f"d_model={SAMPLER['d_model']}, n_layers={SAMPLER['n_layers']}, "
           f"n_heads={SAMPLER['n_heads']}", "",
           "| D | plain rows/s | prefix rows/s | cached rows/s | cached / plain "
           f"| cached / prefix | cached rows/s, {n_big} rows per call |",
           "|---:|---:|---:|---:|---:|---:|---:|"]
    rates: dict[str, list[float]] = {"plain": [], "prefix": [], "cached": [], "big": []}
    for D in dims:
        module = binary_module(D)
        sample_cached(module, 2, torch.Generator().manual_seed(0))  # warm-up
        draws = {}
        for name, fn in (("plain", sample_plain), ("prefix", sample_prefix),
                         ("cached", sample_cached)):
            draws[name], sec = timed(fn, module, n_rows, torch.Generator().manual_seed(1))
            rates[name].append(n_rows / sec)
        assert torch.equal(draws["plain"], draws["cached"]), f"cached != plain at D={D}"
        assert torch.equal(draws["prefix"], draws["cached"]), f"cached != prefix at D={D}"
        _, sec = timed(sample_cached, module, n_big, torch.Generator().manual_seed(2))
        rates["big"].append(n_big / sec)
        p, q, c, b = (rates[k][-1] for k in ("plain", "prefix", "cached", "big"))
        out.append(f"| {D} | {p:,.2f} | {q:,.2f} | {c:,.1f} | {c / p:,.1f}x | {c / q:,.1f}x "
                   f"| {b:,.0f} |")
    out += ["", "The three samplers drew identical rows at every D (checked in the run). "
            "The ratios compare the same rows per call; with few rows the cached step is "
            "bound by per-step overhead, so the ratio grows with the batch (last column)."]
    return out, rates


def train_rate(est, X: np.ndarray) -> float:
    est.fit(X)
    h = est.history_
    # Epoch durations exclude building the net; the first epoch also pays one-off warm-up.
    dur = h["duration"].iloc[1:] if len(h) > 1 else h["duration"]
    return len(X) * len(dur) / float(dur.sum())


def training(quick: bool) -> list[str]:
    rng = np.random.RandomState(0)
    z = rng.rand(4000, 1) < 0.5
    binary64 = np.where(z, rng.rand(4000, 64) < 0.8, rng.rand(4000, 64) < 0.2).astype(np.uint8)
    wine, _ = load_wine_quality(color="red", return_X_y=True)
    mnist = load_binarized_mnist(split="train")[: 200 if quick else 500]
    sets = [("binary, D=64", binary64[: 1000 if quick else 2000], 3),
            ("red wine, D=11", wine, 3),
            (f"binarized MNIST (first {len(mnist)}), D=784", mnist, 2)]
    common = dict(early_stopping=False, batch_size=100, random_state=0)
    out = ["### Training throughput: rows per second of `fit` (mean over epochs 2..)", "",
           "| data | ARTransformerDensity rows/s | MADEDensity rows/s | Transformer / MADE |",
           "|---|---:|---:|---:|"]
    for name, X, epochs in sets:
        tr = train_rate(ARTransformerDensity(**MODEL, max_iter=epochs, **common), X)
        md = train_rate(MADEDensity(hidden_layer_sizes=(500,), max_iter=epochs, **common), X)
        out.append(f"| {name} | {tr:,.0f} | {md:,.0f} | {tr / md:.2f}x |")
    out += ["", f"ARTransformerDensity({', '.join(f'{k}={v}' for k, v in MODEL.items())}); "
            "MADEDensity(hidden_layer_sizes=(500,)); batch_size=100 for both."]
    return out


def plot(dims, rates, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, style in (("plain", "o-"), ("prefix", "s--"), ("cached", "^-")):
        ax.plot(dims, rates[name], style, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.minorticks_off()
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.set_xlabel("D (positions per row)")
    ax.set_ylabel("rows per second")
    ax.set_title("ARTransformer sampling: KV cache vs re-running")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rows and a smaller MNIST slice")
    args = ap.parse_args()
    dims = (64, 256, 784)
    n_rows, n_big = (2, 64) if args.quick else (4, 256)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start = time.perf_counter()
    command = "python benchmarks/transformer/run.py" + (" --quick" if args.quick else "")
    if "OMP_NUM_THREADS" in os.environ:
        command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} {command}"
    lines = [f"# ARTransformerDensity benchmark ({'quick' if args.quick else 'full'})", "",
             f"Command: `{command}`", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
             f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
             f"load average at start {load:.1f}", ""]
    samp, rates = sampling(dims, n_rows, n_big)
    lines += samp + [""] + training(args.quick)
    lines += ["", f"Total time {(time.perf_counter() - start) / 60:.1f} min."]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    suffix = "_quick" if args.quick else ""
    (RESULTS / f"transformer{suffix}.md").write_text(text + "\n")
    plot(dims, rates, RESULTS / f"transformer_sampling{suffix}.png")


if __name__ == "__main__":
    main()
