"""The discrete classics of ``benchmarks/defaults/run.py`` (the baselines NADE is compared with
on binary data) are probability distributions over the binary vectors, checked by enumeration
and closed forms."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "defaults" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("defaults_run_for_tests", RUN)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


CENTRES = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [1, 0, 1, 0, 1, 0]], dtype=bool)
FLIP = 0.1


@pytest.fixture(scope="module")
def binary_rows():
    """400 rows of a known mixture: one of three prototypes, each bit flipped with 0.1."""
    rng = np.random.RandomState(0)
    flips = rng.rand(400, 6) < FLIP
    return (CENTRES[rng.randint(3, size=400)] ^ flips).astype(np.float64)


def true_log_prob(X):
    per_centre = np.where(X[:, None, :] == CENTRES[None], np.log1p(-FLIP), np.log(FLIP)).sum(2)
    return logsumexp(per_centre, axis=1) - np.log(3)


ALL_VECTORS = np.array(list(itertools.product([0.0, 1.0], repeat=6)))


def test_binary_kernel_density_sums_to_one_and_matches_the_kernel_formula(bench, binary_rows):
    b = 0.2
    kde = bench.BinaryKernelDensity(bandwidth=b).fit(binary_rows)
    assert logsumexp(kde.score_samples(ALL_VECTORS)) == pytest.approx(0.0, abs=1e-12)
    x = ALL_VECTORS[37]
    by_hand = np.mean([np.prod(np.where(x == t, 1 - b, b)) for t in binary_rows])
    assert kde.score_samples(x[None])[0] == pytest.approx(np.log(by_hand), rel=1e-12)


def test_bernoulli_mixture_sums_to_one(bench, binary_rows):
    mix = bench.BernoulliMixture(n_components=4, random_state=0).fit(binary_rows)
    assert logsumexp(mix.score_samples(ALL_VECTORS)) == pytest.approx(0.0, abs=1e-10)
    assert mix.weights_.sum() == pytest.approx(1.0)


def test_one_component_bernoulli_mixture_is_the_map_product_of_bernoullis(bench, binary_rows):
    a = 0.5
    mix = bench.BernoulliMixture(n_components=1, pseudo_count=a).fit(binary_rows)
    mu = (binary_rows.sum(0) + a) / (len(binary_rows) + 2 * a)
    expected = (binary_rows * np.log(mu) + (1 - binary_rows) * np.log1p(-mu)).sum(1)
    np.testing.assert_allclose(mix.score_samples(binary_rows), expected, rtol=1e-12)


def test_bernoulli_mixture_em_reaches_the_true_likelihood(bench, binary_rows):
    # The maximum-likelihood fit scores its training rows at least as well as the parameters
    # that generated them (up to EM's tolerance and the small prior), and one component,
    # which cannot represent the prototypes, far worse.
    truth = true_log_prob(binary_rows).mean()
    three = bench.BernoulliMixture(n_components=3, pseudo_count=1e-3, tol=1e-8,
                                   random_state=0).fit(binary_rows)
    one = bench.BernoulliMixture(n_components=1, random_state=0).fit(binary_rows)
    assert three.score(binary_rows) >= truth - 1e-3
    assert one.score(binary_rows) < truth - 0.3


def test_digits_binary_routes_to_the_discrete_classics(bench):
    split = bench.load_split("digits_binary", 0)
    assert bench.is_binary(split.X_train) and bench.is_discrete(split.X_train)
    assert not bench.is_continuous(split.X_train)
    entries = {e.name: e for e in bench.model_entries()}
    kde = entries["KernelDensity (CV)"].make(0, split.X_train, False)
    assert isinstance(kde, bench.BinaryClassic)
    assert not bench._applies(entries["RNADEDensity()"], "digits_binary")
    assert bench._applies(entries["NADEDensity()"], "digits_binary")
