"""WaveNetDensity benchmark: likelihood on a real series, and queued vs plain generation.

Part 1 (quality): mean test log-likelihood per step (nats per month, in sunspot-number units)
on windows of the monthly sunspot series (``skar.datasets.load_sunspots``). The series is split
in time: windows of the first 75% of months train, windows of the last 25% test, so
overlapping windows never straddle the split. Side by side on the same windows: WaveNetDensity
(mixture of logistics; and 256-level linear quantisation, whose density is piecewise constant
in the same units), ARTransformerDensity (when ``skar.models.transformer`` imports),
MADEDensity, a Gaussian AR(p) baseline (least squares per step, closed form; p chosen on the
last 20% of the training windows) and KernelDensity (bandwidth by 3-fold CV).

Part 2 (speed): wall-clock to generate sequences of T = 1,024 and 4,096 steps from one WaveNet
(10 layers, dilations 1 .. 512, receptive field 1,024, 32 channels, 256-way mu-law output, as
an 8-bit audio model) with three samplers, in one run: the per-layer queues
(``sample_queued``, Paine et al. 2016), the generic loop (``skar.base.sample_plain``: one
full pass over the sequence per step) and the naive loop of the paper (one pass over the last
R + 1 inputs per step). Reported as ratios to the queued sampler.

Usage::

    python benchmarks/wavenet/run.py            # full: T=64 windows, complete loops
    python benchmarks/wavenet/run.py --quick    # shorter training; slow loops timed on a
                                                # prefix of steps and extrapolated
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.neighbors import KernelDensity  # noqa: E402

from skar import MADEDensity, WaveNetDensity  # noqa: E402
from skar.base import sample_plain  # noqa: E402
from skar.datasets import load_sunspots, make_windows  # noqa: E402
from skar.models.wavenet import sample_queued  # noqa: E402

try:  # another engineer's model; compared when present
    from skar.models.transformer import ARTransformerDensity
except ImportError:  # pragma: no cover
    ARTransformerDensity = None

RESULTS = Path(__file__).resolve().parents[1] / "results"


# ---------------------------------------------------------------------------- baselines
class GaussianAR:
    """Gaussian AR(p) on windows by the chain rule, fitted by least squares.

    ``p(x_t | x_<t) = N(a_t + sum_{j=1}^{min(t,p)} b_{t,j} x_{t-j}, s_t^2)``: steps ``t < p``
    have their own regression on the ``t`` values before them, steps ``t >= p`` share one
    (stacked) regression; ``s_t^2`` is the mean squared residual (the MLE).
    """

    def __init__(self, p: int) -> None:
        self.p = p

    @staticmethod
    def _ols(A: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        A1 = np.column_stack([np.ones(len(A)), A])
        coef = np.linalg.lstsq(A1, y, rcond=None)[0]
        return coef, float(np.mean((y - A1 @ coef) ** 2))

    def fit(self, X: np.ndarray) -> GaussianAR:
        T, p = X.shape[1], self.p
        self.steps_ = [self._ols(X[:, :t][:, ::-1], X[:, t]) for t in range(min(p, T))]
        if T > p:
            lags = np.concatenate([X[:, t - p : t][:, ::-1] for t in range(p, T)])
            self.shared_ = self._ols(lags, np.concatenate([X[:, t] for t in range(p, T)]))
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros(len(X))
        for t in range(X.shape[1]):
            coef, var = self.steps_[t] if t < self.p else self.shared_
            lags = X[:, max(0, t - self.p) : t][:, ::-1]
            mean = coef[0] + lags @ coef[1:]
            out += -0.5 * np.log(2 * np.pi * var) - 0.5 * (X[:, t] - mean) ** 2 / var
        return out


def fit_ar(X_train: np.ndarray) -> tuple[GaussianAR, int]:
    """Choose p on the last 20% of the training windows, refit on all of them."""
    cut = int(0.8 * len(X_train))
    best = max((1, 2, 3, 6, 12, 24, 36),
               key=lambda p: GaussianAR(p).fit(X_train[:cut]).score_samples(X_train[cut:]).mean())
    return GaussianAR(best).fit(X_train), best


# ---------------------------------------------------------------------------- part 1
def quality(window: int, quick: bool, seed: int) -> tuple[list[dict], np.ndarray, dict]:
    series = load_sunspots().data
    split = int(0.75 * len(series))
    X_train = make_windows(series[:split], window, stride=1 if not quick else 2)
    X_test = make_windows(series[split:], window, stride=4)
    max_iter = 60 if quick else 300
    # R = 1 + 2^6 - 1 = 64 months: the whole window.
    wn = dict(n_layers_per_block=6, residual_channels=32, dilation_channels=32,
              skip_channels=64, batch_size=64, learning_rate_init=2e-3, max_iter=max_iter,
              random_state=seed)
    models = {
        "WaveNetDensity (5 logistics)": WaveNetDensity(
            **wn, n_components=5, component="logistic"),
        "WaveNetDensity (linear, 256 levels)": WaveNetDensity(
            **wn, quantization="linear", n_levels=256, value_range=(0.0, 300.0)),
        "MADEDensity": MADEDensity(hidden_layer_sizes=(256,), n_components=5,
                                   batch_size=64, max_iter=max_iter, random_state=seed),
    }
    if ARTransformerDensity is not None:
        models["ARTransformerDensity"] = ARTransformerDensity(
            n_layers=2, n_heads=4, d_model=64, n_components=5, batch_size=64,
            max_iter=max_iter, random_state=seed)
    rows, samples = [], {}
    for name, est in models.items():
        t0 = time.perf_counter()
        est.fit(X_train)
        dur = time.perf_counter() - t0
        ll = est.score_samples(X_test).mean() / window
        extra = f"R = {est.receptive_field_}" if hasattr(est, "receptive_field_") else ""
        extra += f"{', ' if extra else ''}{est.n_iter_} epochs"
        rows.append(dict(model=name, ll=ll, fit_s=dur, note=extra))
        if name.startswith("WaveNetDensity (5"):
            samples[name] = est.sample(3, random_state=seed)
        print(f"  {name:38s} {ll:8.4f} nats/step  ({dur:.0f} s, {extra})", flush=True)

    t0 = time.perf_counter()
    ar, p = fit_ar(X_train)
    rows.append(dict(model=f"Gaussian AR({p}), least squares", ll=ar.score_samples(
        X_test).mean() / window, fit_s=time.perf_counter() - t0, note="p chosen on held-out"))
    print(f"  {rows[-1]['model']:38s} {rows[-1]['ll']:8.4f}", flush=True)

    t0 = time.perf_counter()
    scale = X_train.std()
    kde = GridSearchCV(KernelDensity(), {"bandwidth": scale * np.logspace(-2, 0, 13)}, cv=3)
    kde.fit(X_train)
    rows.append(dict(model="KernelDensity (3-fold CV bandwidth)",
                     ll=kde.best_estimator_.score_samples(X_test).mean() / window,
                     fit_s=time.perf_counter() - t0,
                     note=f"bandwidth {kde.best_params_['bandwidth']:.2f}"))
    print(f"  {rows[-1]['model']:38s} {rows[-1]['ll']:8.4f}", flush=True)
    info = dict(n_train=len(X_train), n_test=len(X_test), window=window, split=split,
                n_months=len(series))
    return rows, X_test, {**info, "samples": samples}


# ---------------------------------------------------------------------------- part 2
@torch.no_grad()
def windowed_naive(module, n_samples: int, generator: torch.Generator,
                   n_steps: int | None = None) -> torch.Tensor:
    """The naive loop of Paine et al.: each step re-runs the network on the last R + 1 inputs
    (all that step t depends on), so a step costs O(R) instead of O(T)."""
    net, cond = module.network, module.conditionals
    R, T, P = net.receptive_field, net.n_steps, net.n_params
    x = torch.zeros(n_samples, T)
    for t in range(T if n_steps is None else n_steps):
        lo = max(0, t - R)
        win = x[:, lo : t + 1]
        # The window's last step sees x_{t-R} .. x_{t-1}, exactly its receptive field.
        params = net(win)[:, -P:]
        full = torch.zeros(n_samples, cond.n_params)
        full[:, t * P : (t + 1) * P] = params
        x[:, t] = cond.sample_column(full, t, generator)
    return x


@torch.no_grad()
def plain_prefix(module, n_samples: int, generator: torch.Generator, n_steps: int):
    """The first ``n_steps`` iterations of :func:`skar.base.sample_plain` (same work per step)."""
    net, cond = module.network, module.conditionals
    x = torch.zeros(n_samples, cond.n_features)
    for d in range(n_steps):
        x[:, d] = cond.sample_column(net(x), d, generator)
    return x


def timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def speed(lengths: list[int], n_samples: int, quick: bool, seed: int) -> list[dict]:
    rows = []
    for T in lengths:
        rng = np.random.RandomState(seed)
        X = np.clip(rng.laplace(scale=0.1, size=(4, T)), -1, 1)
        est = WaveNetDensity(n_layers_per_block=10, residual_channels=32, dilation_channels=32,
                             skip_channels=32, quantization="mu_law", value_range=(-1, 1),
                             max_iter=1, early_stopping=False, random_state=seed).fit(X)
        module = est.net_.module_.eval()
        R = est.receptive_field_
        gen = lambda: torch.Generator().manual_seed(seed)  # noqa: E731
        t_fast, fast = timed(sample_queued, module, n_samples, gen())
        if quick:
            k = min(T, 64)
            t_plain = timed(plain_prefix, module, n_samples, gen(), k)[0] * T / k
            # Windowed steps cost the same once t >= R: time a prefix past R.
            k_w = min(T, R + 64)
            t_win = timed(windowed_naive, module, n_samples, gen(), k_w)[0] * T / k_w
            how = f"slow loops: first {k} (plain) / {k_w} (windowed) steps, extrapolated"
            same = "not checked"
        else:
            t_plain, plain = timed(sample_plain, module, n_samples, gen())
            t_win, win = timed(windowed_naive, module, n_samples, gen())
            same = bool(torch.equal(fast.floor(), plain.floor())
                        and torch.equal(fast.floor(), win.floor()))
            how = "complete loops"
        rows.append(dict(T=T, R=R, fast=t_fast, plain=t_plain, win=t_win, same=same, how=how))
        print(f"  T={T}: queued {t_fast:.2f} s, plain {t_plain:.1f} s "
              f"({t_plain / t_fast:.0f}x), windowed {t_win:.1f} s ({t_win / t_fast:.1f}x); "
              f"same draws: {same}", flush=True)
    return rows


# ---------------------------------------------------------------------------- report
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-samples", type=int, default=1, help="sequences generated at once")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1: stable timings on a shared machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    window = 64
    cmd = "python benchmarks/wavenet/run.py" + (" --quick" if args.quick else "")

    print("Part 1: test log-likelihood per step on sunspot windows", flush=True)
    qrows, X_test, info = quality(window, args.quick, args.seed)
    print("Part 2: generation speed", flush=True)
    srows = speed([1024, 4096], args.n_samples, args.quick, args.seed)

    RESULTS.mkdir(parents=True, exist_ok=True)
    png = RESULTS / "wavenet.png"
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    q_sorted = sorted(qrows, key=lambda r: r["ll"])
    axes[0].barh([r["model"] for r in q_sorted], [r["ll"] for r in q_sorted], color="tab:blue")
    axes[0].set_xlabel("test log-likelihood per step (nats, higher is better)")
    axes[0].set_title(f"Sunspots, windows of {window} months")
    lo = min(r["ll"] for r in qrows)
    axes[0].set_xlim(lo - 0.3, max(r["ll"] for r in qrows) + 0.1)
    Ts = [r["T"] for r in srows]
    for key, label in (("fast", "queues (Paine et al.)"), ("win", "naive: last R+1 inputs"),
                       ("plain", "plain: whole sequence")):
        axes[1].plot(Ts, [r[key] for r in srows], "o-", label=label)
    axes[1].set_xscale("log", base=2)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("T (steps generated)")
    axes[1].set_ylabel("seconds")
    axes[1].set_title(f"Generation, R = {srows[0]['R']}, {args.n_samples} sequence(s)")
    axes[1].legend()
    months = np.arange(window)
    axes[2].plot(months, X_test[len(X_test) // 2], "k-", lw=2, label="a real test window")
    for i, s in enumerate(next(iter(info["samples"].values()))):
        axes[2].plot(months, s, lw=1, alpha=0.8, label="WaveNet sample" if i == 0 else None)
    axes[2].set_xlabel("month")
    axes[2].set_ylabel("sunspot number")
    axes[2].set_title("Samples vs data")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)

    lines = [
        "# WaveNetDensity benchmark",
        "",
        f"Command: `{cmd}` (seed {args.seed}). Machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), "
        f"torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, CPU only.",
        "",
        "## Test log-likelihood per step on monthly sunspot windows",
        "",
        f"{info['n_months']} months (1749-2009); windows of {window} months; the first "
        f"{info['split']} months give {info['n_train']} training windows, the rest "
        f"{info['n_test']} test windows (stride 4). Nats per month in sunspot-number units "
        "(higher is better); every model scores the same windows in the same units.",
        "",
        "| model | test log-lik. per step | fit time (s) | note |",
        "|---|---:|---:|---|",
    ]
    for r in sorted(qrows, key=lambda r: -r["ll"]):
        lines.append(f"| {r['model']} | {r['ll']:.4f} | {r['fit_s']:.0f} | {r['note']} |")
    lines += [
        "",
        "## Generation: queues vs plain loops",
        "",
        f"One WaveNet (10 layers, dilations 1..512, R = {srows[0]['R']}, 32 channels, "
        f"256-level mu-law output), {args.n_samples} sequence(s) at a time; wall-clock "
        "seconds and ratios to the queued sampler, in one run.",
        "",
        "| T | queued (s) | plain loop (s) | plain / queued | naive window (s) | "
        "naive / queued | same draws | timing |",
        "|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in srows:
        lines.append(
            f"| {r['T']} | {r['fast']:.2f} | {r['plain']:.1f} | {r['plain'] / r['fast']:.1f}x"
            f" | {r['win']:.1f} | {r['win'] / r['fast']:.1f}x | {r['same']} | {r['how']} |"
        )
    lines += ["", f"![WaveNet benchmark]({png.name})", ""]
    out = RESULTS / "wavenet.md"  # the command that made it is in its first line
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out} and {png}")


if __name__ == "__main__":
    main()
