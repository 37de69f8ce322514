"""NADE's costs, side by side in one run: the training pass and the sampler.

1. The passes, per row, at the shapes of a UCI table (RNADE, D=11, H=100, 10 Gaussian
   components) and of binarized MNIST (NADE, D=784, H=500): the training pass (forward +
   backward, float32) that training runs now (``NADE._forward_train``: cache-sized blocks of
   positions with the gradient written out, ``_TiedPass``) against the one it ran before
   (autograd through one cumulative sum over all positions, kept below as
   ``unblocked_training_pass``); and the evaluation pass that scoring and the generic sampler
   run (forward, float64 accumulation), blocked now (``NADE._forward_exact``) against the
   full-tensor pass before (``unblocked_exact_pass``).
2. Sampling at D=784, H=500: the incremental O(DH)-per-row sampler (``sample_nade``) against
   the generic loop (``skar.base.sample_plain``, one full pass per position), drawing the same
   rows from the same generator, in chunks of 100 rows. The generic loop costs seconds a
   row on one CPU thread, so ``--generic-rows`` lets it draw only the first chunks of the
   rows the incremental sampler draws; every chunk costs the same, and the table gives both
   the measured seconds and the ratio per row.

Usage::

    python benchmarks/nade/run.py            # 1,000 rows from both samplers (hours)
    python benchmarks/nade/run.py --sample-rows 1000 --generic-rows 100
    python benchmarks/nade/run.py --quick    # 20 sampled rows

Writes ``benchmarks/results/nade.md``. Weights are random: neither cost depends on training.
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
from skar.models.nade import _ACTIVATIONS, NADE, sample_nade

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _module(D: int, H: int, families: list, rescale: bool) -> DensityModule:
    cond = ColumnConditionals(families)
    kinds = [f.kind for f in families]
    net = NADE([1] * D, kinds, [f.n_params for f in families], n_hidden=H, rescale=rescale)
    return DensityModule(net, cond)


def unblocked_training_pass(net: NADE, u: torch.Tensor, member: int) -> torch.Tensor:
    """The training pass before the blocked one (binary and continuous columns): autograd
    through ``a = cumsum(v) - v + c`` over all positions at once, a (D, B, H) tensor at every
    step."""
    D = net.n_features
    order, units = net.orderings[member], net.unit_slots[member, :, 0]  # one unit each
    v = u.T[units].unsqueeze(-1) * net.W.T[units].unsqueeze(1)  # (D, B, H)
    a = torch.cumsum(v, dim=0).sub_(v).add_(net.c)
    if net.rho is not None:
        a = a * net.rho.view(D, 1, 1)
    h = _ACTIVATIONS[net.activation_name](a)
    out = net.outputs
    theta = torch.baddbmm(out.bias[order].unsqueeze(1), h, out.weight[order].transpose(1, 2))
    return out.flat(theta[net.positions[member]].transpose(0, 1))  # (B, D, K_max) -> flat


def unblocked_exact_pass(net: NADE, u: torch.Tensor, member: int) -> torch.Tensor:
    """The evaluation pass before the blocked one: one float64 cumulative sum over a
    (B, H, D) tensor and the output layer over (B, D, K, H)."""
    B = u.shape[0]
    units = net.unit_slots[member, :, 0]  # one unit per column
    v = u[:, units].unsqueeze(1) * net.W[:, units]  # (B, H, D)
    start = net.c.view(1, -1, 1).expand(B, -1, 1)
    a = torch.cumsum(torch.cat([start, v[..., :-1]], dim=2), dim=2, dtype=torch.float64)
    if net.rho is not None:
        a = a * net.rho.to(a.dtype)
    h = _ACTIVATIONS[net.activation_name](a).to(net.W.dtype)  # (B, H, D), position order
    theta = net.outputs(h.permute(2, 0, 1), net.orderings[member])  # (D, B, K_max)
    return net.outputs.flat(theta[net.positions[member]].transpose(0, 1))


def time_training_pass(module: DensityModule, x: torch.Tensor, fn, repeats: int) -> float:
    """Seconds per row of one forward + backward pass of the mean log-likelihood."""
    net = module.network.train()

    def step() -> None:
        net.zero_grad()
        params = fn(net.inputs(x), 0)
        module.conditionals.log_prob(params, x).sum(1).mean().backward()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - t0) / repeats / x.shape[0]


@torch.no_grad()
def time_scoring_pass(module: DensityModule, x: torch.Tensor, fn, repeats: int) -> float:
    """Seconds per row of the log-likelihood by the evaluation pass (no gradient)."""
    net = module.network.eval()
    module.conditionals.log_prob(fn(net.inputs(x), 0), x)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        module.conditionals.log_prob(fn(net.inputs(x), 0), x)
    return (time.perf_counter() - t0) / repeats / x.shape[0]


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
             f"{os.getloadavg()[0]:.1f} (above 0 means other work shared the cores).", "",
             "#### The passes, batch of 100 rows (ms/row)", "",
             "| shape | pass | before: one (D, B, H) tensor | now: blocked | speed-up |",
             "|---|---|---:|---:|---:|"]
    shapes = [("RNADE, red wine shape: D=11, H=100, 10 Gaussians", 11, 100,
               [Mixture(10)] * 11, True, 20),
              ("NADE, binarized MNIST shape: D=784, H=500", 784, 500, [Bernoulli()] * 784,
               False, 3)]
    for name, D, H, fams, rescale, repeats in shapes:
        module = _module(D, H, fams, rescale)
        if fams[0].kind == "binary":
            x = (torch.rand(100, D) < 0.3).float()
        else:
            x = torch.randn(100, D)
        net = module.network
        for label, timer, before, now in [
            ("training (float32, forward + backward)", time_training_pass,
             functools.partial(unblocked_training_pass, net), net._forward_train),
            ("scoring (float64 accumulation, forward)", time_scoring_pass,
             functools.partial(unblocked_exact_pass, net), net._forward_exact),
        ]:
            with torch.no_grad():  # the two passes compute the same function
                u = net.inputs(x)
                torch.testing.assert_close(before(u, 0), now(u, 0), rtol=1e-4, atol=1e-4)
            slow, fast = timer(module, x, before, repeats), timer(module, x, now, repeats)
            lines.append(f"| {name} | {label} | {1e3 * slow:.3f} | {1e3 * fast:.3f} | "
                         f"{slow / fast:.1f}x |")
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
    same = bool(torch.equal(fast_rows[:n_generic], plain_rows))
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
              + f"; identical rows from the same generator: {same}."]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    name = "nade_quick.md" if args.quick else "nade.md"
    (RESULTS / name).write_text("# NADE: the passes and sampling\n\n" + text + "\n")


if __name__ == "__main__":
    main()
