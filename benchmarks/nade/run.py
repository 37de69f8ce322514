"""NADE's costs, side by side in one run: the tied pass (training and scoring) and sampling.

NADE's one recurrence, ``a_i = c + sum_{j<i} W[:, o_j] x_{o_j}``, ``h_i = act(rho_i a_i)``,
runs through one function (``skar.models.nade._tied_block``): over cache-sized blocks of
positions in training and scoring (``_TiedPass``), one position at a time in the incremental
sampler (``NADE.sample``). This measures, per row, at the shapes of a UCI table (RNADE, D=11,
H=100, 10 Gaussian components) and of binarized MNIST (NADE, D=784, H=500):

1. Training (forward + backward, float32): ``NADE.forward_units``, which runs ``_TiedPass``
   (its gradient written out, recomputing each block in the backward pass, never storing a
   (D, B, H) tensor) once the pass has several blocks, and autograd for a pass of one block,
   against autograd through the same blocks (``autograd_training_pass`` below), which keeps
   every block's tensors for the backward pass.
2. Scoring (forward, no gradient): the float32 pass that scoring runs now against the
   float64-accumulating pass it ran before (``float64_scoring_pass`` below, kept as the
   baseline), in milliseconds per row and rows per second, on batches of 100 rows and of
   1,024 (the estimators' inference batch, which the pass now takes in chunks of rows).
3. Sampling at D=784, H=500: the incremental O(DH)-per-row sampler (``sample_nade``) against
   the generic loop (``skar.base.sample_plain``, one full pass per position), drawing from the
   same generator, in chunks of 100 rows. The generic loop costs seconds a row on one CPU
   thread, so ``--generic-rows`` lets it draw only the first chunks of the rows the
   incremental sampler draws; the table gives both the measured seconds and the ratio per row.

Each pass and its baseline take turns, and the table gives the fastest of their rounds: the
least disturbed timing when other work shares the cores.

Usage::

    python benchmarks/nade/run.py            # 1,000 rows from both samplers (hours)
    python benchmarks/nade/run.py --sample-rows 1000 --generic-rows 100
    python benchmarks/nade/run.py --quick    # 20 sampled rows

Writes ``benchmarks/results/nade.md`` (``nade_quick.md`` with ``--quick``). Weights are
random: no cost depends on training.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from skar.base import DensityModule, sample_plain
from skar.distributions import Bernoulli, ColumnConditionals, Mixture
from skar.models.nade import (
    _ACTIVATIONS,
    NADE,
    _block_size,
    _blocks,
    _lower_ones,
    _tied_block,
    sample_nade,
)

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _module(D: int, H: int, families: list, rescale: bool) -> DensityModule:
    cond = ColumnConditionals(families)
    kinds = [f.kind for f in families]
    net = NADE([1] * D, kinds, [f.n_params for f in families], n_hidden=H, rescale=rescale)
    return DensityModule(net, cond)


def autograd_training_pass(net: NADE, u: torch.Tensor, member: int) -> torch.Tensor:
    """The same blocks as ``_TiedPass`` (``_tied_block``), differentiated by autograd, which
    keeps each block's products, pre-activations and hidden units for the backward pass: a
    (D, B, H) tensor several times over."""
    B, D, H = u.shape[0], net.n_features, net.W.shape[0]
    order, out = net.orderings[member], net.outputs
    x, W = net._position_inputs(u, member)
    block = _block_size(D, B, H, u.device)
    tri, carry, thetas = _lower_ones(block, x), net.c.expand(B, H), []
    V, b = out.weight[order], out.bias[order]
    for p0, p1 in _blocks(D, block):
        theta, a, _ = _tied_block(x[p0:p1], W[p0:p1], carry, tri,
                                  None if net.rho is None else net.rho[p0:p1], V[p0:p1],
                                  b[p0:p1], net.activation_name)
        carry = a[-1]
        thetas.append(theta)
    return out.flat(torch.cat(thetas)[net.positions[member]].transpose(0, 1))


def float64_scoring_pass(net: NADE, u: torch.Tensor, member: int) -> torch.Tensor:
    """The scoring pass before this one (one unit per column): the same blocks, ``a``
    accumulated in float64 by a cumulative sum from the carry, ``h`` rounded to float32, and
    the output sums taken in float64 (so that a one-row-at-a-time sampler rounded alike)."""
    B, D, H = u.shape[0], net.n_features, net.W.shape[0]
    order, out = net.orderings[member], net.outputs
    x, W = u.T[order].unsqueeze(-1), net.W.T[order].unsqueeze(1)  # (D, B, 1), (D, 1, H)
    carry = net.c.double().expand(B, H)
    thetas = []
    for p0, p1 in _blocks(D, _block_size(D, B, H, u.device)):
        v = x[p0:p1] * W[p0:p1]  # (k, B, H)
        a = torch.cumsum(torch.cat([carry.unsqueeze(0), v[:-1].double()]), dim=0)
        carry = a[-1] + v[-1].double()
        if net.rho is not None:
            a = a * net.rho[p0:p1].view(-1, 1, 1).double()
        h = _ACTIVATIONS[net.activation_name](a).to(net.W.dtype)
        V = out.weight[order[p0:p1]]  # (k, K, H)
        theta = (h.unsqueeze(2) * V.unsqueeze(1)).sum(-1, dtype=torch.float64)
        thetas.append(theta.to(h.dtype) + out.bias[order[p0:p1]].unsqueeze(1))
    return out.flat(torch.cat(thetas)[net.positions[member]].transpose(0, 1))


def training_step(module: DensityModule, x: torch.Tensor, fn):
    """One forward + backward pass of the mean log-likelihood through ``fn``."""
    net = module.network

    def step() -> None:
        net.train().zero_grad()
        module.conditionals.log_prob(fn(net.inputs(x), 0), x).sum(1).mean().backward()

    return step


def scoring_step(module: DensityModule, x: torch.Tensor, fn):
    """The log-likelihood of ``x`` through ``fn`` (no gradient)."""
    net = module.network

    @torch.no_grad()
    def step() -> None:
        module.conditionals.log_prob(fn(net.eval().inputs(x), 0), x)

    return step


def fastest_seconds(steps: list, rounds: int) -> list[float]:
    """The fastest of ``rounds`` timings of each step, the steps taking turns (so that load
    from other work falls on both alike, and the minimum is the least disturbed run)."""
    for step in steps:  # warm-up
        step()
    best = [float("inf")] * len(steps)
    for _ in range(rounds):
        for i, step in enumerate(steps):
            t0 = time.perf_counter()
            step()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def saved_megabytes(module: DensityModule, x: torch.Tensor, fn) -> float:
    """Megabytes that autograd keeps for the backward pass of the mean log-likelihood (every
    tensor saved by an operation, counted each time it is saved)."""
    net, total = module.network.train(), 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module.conditionals.log_prob(fn(net.inputs(x), 0), x).sum(1).mean()
    return total / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="20 sampled rows instead of 1,000")
    p.add_argument("--sample-rows", type=int, help="rows the incremental sampler draws")
    p.add_argument("--generic-rows", type=int,
                   help="rows the generic loop draws, in whole chunks of 100 (the first of the "
                        "same rows; default all)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n_sample = args.sample_rows or (20 if args.quick else 1000)
    # The generic loop draws whole chunks of the incremental sampler's chunks, so both
    # consume the generator alike and draw the same rows.
    all_chunks = [100] * (n_sample // 100) + ([n_sample % 100] if n_sample % 100 else [])
    n_chunks = len(all_chunks)
    if args.generic_rows:
        n_chunks = min(n_chunks, max(1, -(-args.generic_rows // 100)))
    n_generic = sum(all_chunks[:n_chunks])
    lines = ["Command: `" + ("python benchmarks/nade/run.py " + shlex.join(sys.argv[1:])).strip()
             + "`  ", f"Machine: {platform.machine()}, torch {torch.__version__}, "
             f"{args.threads} torch thread(s); 1-minute load average at the start "
             f"{os.getloadavg()[0]:.1f} (above 0 means other work shared the cores, so read "
             "the ratios, which come from one run, rather than the times).", "",
             "#### The passes (the fastest of the rounds, baseline and now taking turns)", "",
             "| shape | pass | rows per batch | baseline (ms/row) | now (ms/row) | speed-up | "
             "rows/s: baseline -> now | kept for the backward pass (MB): baseline -> now |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    shapes = [("RNADE, red wine shape: D=11, H=100, 10 Gaussians", 11, 100,
               [Mixture(10)] * 11, True, 100),
              ("NADE, binarized MNIST shape: D=784, H=500", 784, 500, [Bernoulli()] * 784,
               False, 5)]
    for name, D, H, fams, rescale, rounds in shapes:
        module = _module(D, H, fams, rescale)
        if fams[0].kind == "binary":
            x_all = (torch.rand(1024, D) < 0.3).float()
        else:
            x_all = torch.randn(1024, D)
        net = module.network
        with torch.no_grad():  # rho away from 1, so that the rescaling is exercised
            if net.rho is not None:
                net.rho.uniform_(0.5, 2.0)
        scoring = "scoring, forward: float64 accumulation -> float32 `NADE.forward_units`"
        # 1,024 rows: the estimators' inference batch
        for label, make_step, before, now, n_rows in [
            ("training, float32, forward + backward: autograd through the blocks -> "
             "`NADE.forward_units` (`_TiedPass`, gradient written out, once there are several "
             "blocks; one block: autograd)", training_step,
             functools.partial(autograd_training_pass, net), net.forward_units, 100),
            (scoring, scoring_step, functools.partial(float64_scoring_pass, net),
             net.forward_units, 100),
            (scoring, scoring_step, functools.partial(float64_scoring_pass, net),
             net.forward_units, 1024),
        ]:
            x = x_all[:n_rows]
            with torch.no_grad():  # the two passes compute the same function
                u = net.inputs(x)
                torch.testing.assert_close(before(u, 0), now(u, 0), rtol=1e-4, atol=1e-4)
            slow, fast = (t / x.shape[0] for t in fastest_seconds(
                [make_step(module, x, before), make_step(module, x, now)],
                max(2, rounds * 100 // n_rows)))  # about the same time for each batch size
            kept = "no backward pass"
            if make_step is training_step:
                kept = (f"{saved_megabytes(module, x, before):,.1f} -> "
                        f"{saved_megabytes(module, x, now):,.1f}")
            lines.append(f"| {name} | {label} | {n_rows} | {1e3 * slow:.3f} | {1e3 * fast:.3f} | "
                         f"{slow / fast:.2f}x | {1 / slow:,.0f} -> {1 / fast:,.0f} | {kept} |")
            print(lines[-1], flush=True)

    module = _module(784, 500, [Bernoulli()] * 784, False).eval()
    with torch.no_grad():
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(0)
        fast_rows = torch.cat([sample_nade(module, m, g) for m in all_chunks])
        t_fast = time.perf_counter() - t0
        print(f"incremental sampler: {t_fast:.2f} s", flush=True)
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(0)
        plain_rows = torch.cat([sample_plain(module, m, g) for m in all_chunks[:n_chunks]])
        t_plain = time.perf_counter() - t0
    # Binary draws compare a uniform with a probability that the two samplers compute to
    # float32 rounding; they differ only where a uniform falls within that of the probability.
    differ = int((fast_rows[:n_generic] != plain_rows).sum())
    per_row = (t_plain / n_generic) / (t_fast / n_sample)
    lines += ["", "#### Sampling at D=784, H=500 (chunks of 100 rows)", "",
              "| sampler | rows drawn | seconds | rows/s |", "|---|---:|---:|---:|",
              f"| generic loop (`sample_plain`, D full passes) | {n_generic} | {t_plain:.1f} | "
              f"{n_generic / t_plain:.3f} |",
              f"| incremental (`sample_nade`, O(DH) per row) | {n_sample} | {t_fast:.2f} | "
              f"{n_sample / t_fast:.0f} |", "",
              f"Speed-up per row {per_row:.0f}x; the generic loop would take "
              f"{t_plain * n_sample / n_generic:.0f} s for {n_sample} rows"
              + (" (measured)" if n_generic == n_sample else
                 f" (its {n_generic} rows' time, scaled)")
              + f"; binary draws that differ between the two samplers (same generator): "
              f"{differ} of {fast_rows[:n_generic].numel()}."]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    name = "nade_quick.md" if args.quick else "nade.md"
    (RESULTS / name).write_text("# NADE: the passes and sampling\n\n" + text + "\n")


if __name__ == "__main__":
    main()
