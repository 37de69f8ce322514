"""MASDEDensity: the structure of the masks (Jacobian zero pattern equals the B_i), the sets B_i
of DAGs, undirected graphs and Chow-Liu trees against independent computations, normalisation,
sampling, small-data advantage over MADE, scikit-learn compatibility and bad structures."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.metrics import mutual_info_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from skar.models.made import MADEDensity
from skar.models.masde import (
    MASDE,
    MASDEDensity,
    blankets_from_structure,
    chow_liu_tree,
    mutual_information_matrix,
    undirected_blankets,
)

from .contract import (
    all_binary_rows,
    assert_samples_match_probabilities,
    assert_sums_to_one,
    product_frame,
)

FAST = dict(max_iter=5, early_stopping=False, random_state=0)


def dependency_pattern(forward_units, n_units, column_of_unit, output_sizes, n_rows=4, seed=0):
    """``dep[i, j]``: some output of column i has a nonzero derivative with respect to some
    input unit of column j, at random inputs (autograd Jacobian)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_rows, n_units, generator=g)
    jac = torch.autograd.functional.jacobian(forward_units, x)  # (B, P, B, n_units)
    jac = torch.stack([jac[b, :, b, :] for b in range(n_rows)]).abs().sum(0)  # (P, n_units)
    D = len(output_sizes)
    offsets = np.concatenate([[0], np.cumsum(output_sizes)])
    column_of_unit = np.asarray(column_of_unit)
    dep = np.zeros((D, D), dtype=bool)
    for i in range(D):
        for j in range(D):
            block = jac[offsets[i]:offsets[i + 1]][:, torch.as_tensor(column_of_unit == j)]
            dep[i, j] = bool(torch.count_nonzero(block))
    return dep


def blanket_matrix(blankets, D):
    B = np.zeros((D, D), dtype=bool)
    for i, b in enumerate(blankets):
        B[i, list(b)] = True
    return B


def random_dag(D, rng, p=0.35):
    order = rng.permutation(D)
    A = np.zeros((D, D), dtype=int)
    for a in range(D):
        for b in range(a + 1, D):
            if rng.rand() < p:
                A[order[a], order[b]] = 1
    return A


KINDS = ["binary", "categorical", "continuous", "categorical", "continuous", "binary"]
INPUT_SIZES = [1, 3, 1, 2, 1, 1]
OUTPUT_SIZES = [1, 3, 6, 2, 6, 1]


def network(ordering, blankets, hidden, direct, n_masks=3, seed=3):
    torch.manual_seed(seed)
    # tanh has no dead units, so a connection the masks allow shows as a nonzero derivative.
    return MASDE(INPUT_SIZES, KINDS, OUTPUT_SIZES, ordering, blankets, hidden, n_masks=n_masks,
                 direct_connections=direct, activation="tanh", seed=seed)


def assert_pattern_is(net, expected):
    for k in range(net.n_members):
        dep = dependency_pattern(lambda u, k=k: net.forward_units(u, k), net.inputs.n_units,
                                 net.inputs.column_of_unit.numpy(), OUTPUT_SIZES)
        np.testing.assert_array_equal(dep, expected, err_msg=f"mask {k}")


# ---------------------------------------------------------------- the masks follow the B_i
@pytest.mark.parametrize("hidden", [(), (16,), (16, 12)])
@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jacobian_pattern_equals_the_parents_of_a_dag(hidden, direct, seed):
    rng = np.random.RandomState(seed)
    A = random_dag(6, rng)
    ordering, blankets = blankets_from_structure(A, 6)
    net = network(ordering, blankets, hidden, direct)
    # dependency of column i on column j iff j -> i is an edge of the given DAG
    assert_pattern_is(net, A.T.astype(bool))
    position = np.argsort(ordering)
    assert all(position[j] < position[i] for j, i in np.argwhere(A))  # topological


@pytest.mark.parametrize("hidden", [(16,), (16, 12)])
@pytest.mark.parametrize("direct", [True, False])
def test_jacobian_pattern_of_a_chordal_undirected_graph_is_its_edges(hidden, direct):
    # a triangle 0-1-2 with a tail 2-3-4 and a triangle 3-4-5: chordal, so no fill edge
    edges = [(0, 1), (1, 2), (0, 2), (2, 3), (3, 4), (3, 5), (4, 5)]
    A = np.zeros((6, 6), dtype=int)
    for a, b in edges:
        A[a, b] = A[b, a] = 1
    ordering, blankets = undirected_blankets(A.astype(bool))
    net = network(ordering, blankets, hidden, direct)
    position = np.argsort(ordering)
    # independent: the earlier neighbours of every column
    expected = (A.T == 1) & (position[None, :] < position[:, None])
    assert_pattern_is(net, expected)
    # every edge of the graph is used once, in one direction, and nothing else
    np.testing.assert_array_equal(expected | expected.T, A == 1)


def test_jacobian_pattern_of_a_chow_liu_tree_is_the_learned_tree():
    rng = np.random.RandomState(0)
    n = 3000
    x0 = rng.rand(n) < 0.5
    x1 = np.where(x0, rng.rand(n) < 0.9, rng.rand(n) < 0.15)
    x2 = np.where(x0, rng.rand(n) < 0.2, rng.rand(n) < 0.85)
    c3 = np.where(x1, rng.choice(3, n, p=[0.8, 0.1, 0.1]), rng.choice(3, n, p=[0.1, 0.2, 0.7]))
    v4 = 2.0 * x2 + 0.5 * rng.normal(size=n)
    v5 = 0.9 * v4 + 0.4 * rng.normal(size=n)
    df = pd.DataFrame({"x0": x0.astype(int), "x1": x1.astype(int), "x2": x2.astype(int),
                       "c3": pd.Categorical(c3), "v4": v4, "v5": v5})
    est = MASDEDensity(hidden_layer_sizes=(12,), n_orderings=2, n_components=2, activation="tanh",
                       **FAST).fit(df)
    true_parents = [[], [0], [0], [1], [2], [4]]
    assert [p.tolist() for p in est.parents_] == true_parents
    net = est.net_.module_.network
    sizes = [f.n_params for f in est.net_.module_.conditionals.families]
    for k in range(2):
        dep = dependency_pattern(lambda u, k=k: net.forward_units(u, k), net.inputs.n_units,
                                 net.inputs.column_of_unit.numpy(), sizes)
        np.testing.assert_array_equal(dep, blanket_matrix(true_parents, 6))


# ---------------------------------------------------------------- B_i of undirected graphs
def test_undirected_blankets_make_the_chain_rule_exact_and_are_minimal():
    """On a binary Markov random field (a 5-cycle with a chord and a pendant; not chordal), by
    exact enumeration: p(x_i | x_<i) = p(x_i | x_{B_i}) for every row, and dropping any member
    of B_i changes some conditional."""
    D = 6
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (1, 3), (4, 5)]
    A = np.zeros((D, D), dtype=bool)
    for a, b in edges:
        A[a, b] = A[b, a] = True
    rng = np.random.RandomState(0)
    rows = all_binary_rows(D)
    energy = sum(rng.normal(scale=1.5, size=(2, 2))[rows[:, a], rows[:, b]] for a, b in edges)
    p = np.exp(energy)
    p /= p.sum()

    def conditional(i, given):
        """p(x_i = 1 | x_given) for every row, by summing the joint."""
        keys = rows[:, given] @ (2 ** np.arange(len(given))) if given else np.zeros(len(rows), int)
        num = np.bincount(keys, weights=p * rows[:, i], minlength=2 ** len(given))
        den = np.bincount(keys, weights=p, minlength=2 ** len(given))
        return (num / den)[keys]

    for ordering in (None, np.array([5, 4, 3, 2, 1, 0]), np.array([2, 0, 5, 1, 4, 3])):
        ordering, blankets = undirected_blankets(A, ordering)
        for pos, i in enumerate(ordering):
            before = sorted(ordering[:pos].tolist())
            B = blankets[i].tolist()
            assert set(B) <= set(before)
            np.testing.assert_allclose(conditional(i, B), conditional(i, before), atol=1e-12)
            for j in B:
                smaller = [b for b in B if b != j]
                assert np.abs(conditional(i, smaller) - conditional(i, before)).max() > 1e-6
    # the 5-cycle needs one fill edge, whatever the elimination: |sum B_i| = |E| + 1
    _, blankets = undirected_blankets(A)
    assert sum(len(b) for b in blankets) == len(edges) + 1


# ---------------------------------------------------------------- Chow-Liu
def test_mutual_information_matches_independent_estimates():
    rng = np.random.RandomState(0)
    n = 2000
    a = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    b = (rng.rand(n) < np.array([0.2, 0.6, 0.9])[a]).astype(float)
    y = rng.normal(size=n) + b
    z = 0.7 * y + rng.normal(size=n)
    Z = np.column_stack([a, b, y, z]).astype(np.float32)
    mi = mutual_information_matrix(Z, ["categorical", "binary", "continuous", "continuous"])
    assert mi[0, 1] == pytest.approx(mutual_info_score(a, b), rel=1e-5)
    r_yz = np.corrcoef(y, z)[0, 1]
    assert mi[2, 3] == pytest.approx(-0.5 * np.log(1 - r_yz**2), rel=1e-4)
    r_by = np.corrcoef(b, y)[0, 1]  # point-biserial correlation
    assert mi[1, 2] == pytest.approx(-0.5 * np.log(1 - r_by**2), rel=1e-4)
    # three categories: the correlation ratio is the R^2 of a regression on the one-hot codes
    onehot = np.eye(3)[a]
    fit = np.linalg.lstsq(onehot, y, rcond=None)[0]
    r2 = 1 - ((y - onehot @ fit) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert mi[0, 2] == pytest.approx(-0.5 * np.log(1 - r2), rel=1e-4)
    np.testing.assert_array_equal(mi, mi.T)
    # weights are frequencies: weight 2 on a row equals repeating it
    w = rng.randint(1, 3, size=n)
    np.testing.assert_allclose(mutual_information_matrix(Z, ["categorical", "binary",
                                                             "continuous", "continuous"], w),
                               mutual_information_matrix(np.repeat(Z, w, axis=0),
                                                         ["categorical", "binary", "continuous",
                                                          "continuous"]), rtol=1e-6, atol=1e-9)


def test_chow_liu_recovers_a_known_tree():
    # binary tree on 8 columns: parent of column d
    parent = [-1, 0, 0, 1, 1, 2, 5, 3]
    rng = np.random.RandomState(1)
    n = 4000
    X = np.zeros((n, 8), dtype=int)
    X[:, 0] = rng.rand(n) < 0.5
    for d in range(1, 8):
        flip = rng.rand(n) < 0.15
        X[:, d] = X[:, parent[d]] ^ flip
    # independent: sklearn's MI and a brute-force maximum spanning tree (Kruskal by hand)
    mi = np.array([[mutual_info_score(X[:, a], X[:, b]) if a != b else 0.0 for b in range(8)]
                   for a in range(8)])
    comp = list(range(8))

    def find(u):
        while comp[u] != u:
            u = comp[u]
        return u

    kruskal = set()
    pairs = [(mi[u, v], u, v) for u in range(8) for v in range(u + 1, 8)]
    for _, a, b in sorted(pairs, reverse=True):
        if find(a) != find(b):
            comp[find(a)] = find(b)
            kruskal.add((a, b))
    true_edges = {(min(d, parent[d]), max(d, parent[d])) for d in range(1, 8)}
    assert kruskal == true_edges  # enough samples: the data identify the tree

    est = MASDEDensity(hidden_layer_sizes=(8,), **FAST).fit(X)
    learned = {(min(d, int(p[0])), max(d, int(p[0]))) for d, p in enumerate(est.parents_) if p.size}
    assert learned == true_edges
    assert est.parents_[0].size == 0 and est.ordering_[0] == 0  # rooted at column 0
    np.testing.assert_allclose(mutual_information_matrix(X.astype(np.float32), ["binary"] * 8),
                               mi, rtol=1e-6, atol=1e-12)
    ordering, parents = chow_liu_tree(mi)
    position = np.argsort(ordering)
    assert all(position[p[0]] < position[d] for d, p in enumerate(parents) if p.size)


def test_chow_liu_is_learned_without_the_validation_rows():
    """With early stopping, the tree comes from the training rows only: a dependence planted
    in the rows skorch holds out (its split depends on n and the seed only) is not learned."""
    rng = np.random.RandomState(0)
    X = (rng.rand(200, 3) < 0.5).astype(int)
    X[:, 1] = X[:, 0] ^ (rng.rand(200) < 0.1)  # 0 - 1 in every row
    kw = dict(hidden_layer_sizes=(4,), max_iter=1, random_state=0, validation_fraction=0.5)
    est = MASDEDensity(**kw).fit(X)
    Z = est.schema_.encode(X)
    data = {"x": Z, "sample_weight": np.ones(200, np.float32)}
    valid = np.asarray(est.net_.get_split_datasets(data)[1].indices)
    train = np.setdiff1d(np.arange(200), valid)
    X[valid, 2] = X[valid, 1]  # 1 - 2 only in the held-out rows
    est = MASDEDensity(**kw).fit(X)
    from_train = chow_liu_tree(mutual_information_matrix(X[train], ["binary"] * 3))[1]
    from_all = chow_liu_tree(mutual_information_matrix(X, ["binary"] * 3))[1]
    assert [p.tolist() for p in est.parents_] == [p.tolist() for p in from_train]
    assert [p.tolist() for p in from_all] == [[], [0], [1]]  # the planted edge wins on all rows
    assert [p.tolist() for p in from_train] != [p.tolist() for p in from_all]


# ---------------------------------------------------------------- normalisation and sampling
@pytest.fixture(scope="module")
def binary8():
    rng = np.random.RandomState(1)
    z = rng.rand(500, 1) < 0.5
    return np.where(z, rng.rand(500, 8) < 0.8, rng.rand(500, 8) < 0.2).astype(int)


def _cycle8():
    A = np.zeros((8, 8), dtype=int)
    for a in range(8):
        A[a, (a + 1) % 8] = A[(a + 1) % 8, a] = 1
    return A


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(structure="dag", hidden_layer_sizes=(16, 16), n_orderings=3),
        dict(structure="undirected", hidden_layer_sizes=(16,), n_orderings=2),
        dict(hidden_layer_sizes=()),
    ],
)
def test_binary_d8_probabilities_sum_to_one(binary8, params):
    params = dict(params)
    kind = params.pop("structure", "chow-liu")
    structure = {"chow-liu": "chow-liu", "dag": random_dag(8, np.random.RandomState(0)),
                 "undirected": _cycle8()}[kind]
    params.setdefault("hidden_layer_sizes", (16,))
    est = MASDEDensity(structure, **params, **FAST).fit(binary8)
    assert_sums_to_one(est, all_binary_rows(8))


def test_categorical_space_sums_to_one_and_samples_match():
    rng = np.random.RandomState(0)
    levels = {"a": ["x", "y", "z"], "b": ["p", "q", "r", "s"], "c": ["u", "v"]}
    train = pd.DataFrame({c: pd.Categorical(rng.choice(lv, 300), categories=lv)
                          for c, lv in levels.items()})
    dag = [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    est = MASDEDensity(dag, hidden_layer_sizes=(8,), n_orderings=2, **FAST).fit(train)
    assert_sums_to_one(est, product_frame(levels))

    X = (rng.rand(800, 4) < [0.2, 0.5, 0.7, 0.4]).astype(int)
    X[:, 3] = X[:, 0] ^ X[:, 1]
    est = MASDEDensity([[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]],
                       hidden_layer_sizes=(8,), n_orderings=2, **FAST).fit(X)
    assert_samples_match_probabilities(est, all_binary_rows(4), n_samples=20_000)


def test_independent_columns_have_no_connections_and_give_a_product_of_marginals():
    rng = np.random.RandomState(0)
    X = (rng.rand(400, 3) < [0.2, 0.5, 0.9]).astype(int)
    est = MASDEDensity(np.zeros((3, 3), int), hidden_layer_sizes=(4,), **FAST).fit(X)
    assert all(p.size == 0 for p in est.parents_)
    net = est.net_.module_.network
    assert not net.hidden[0].mask.any() and not net.direct.mask.any()  # no input reaches
    # each column's term depends on its own value only: p(x) = prod_d p(x_d)
    rows = all_binary_rows(3)
    per = est.score_samples_per_feature(rows)
    for d in range(3):
        for v in (0, 1):
            assert np.ptp(per[rows[:, d] == v, d]) == 0.0
    assert_sums_to_one(est, rows)


# ---------------------------------------------------------------- small data: MASDE vs MADE
BN_PARENTS = [[], [0], [0], [1], [1, 2], [3], [4], [5, 6]]


def _bn_cpts():
    r = np.random.RandomState(123)
    cpts = [r.uniform(0.05, 0.95, size=2 ** len(p)) for p in BN_PARENTS]
    return [np.where(c < 0.5, 0.4 * c, 1 - 0.4 * (1 - c)) for c in cpts]  # strong effects


def _bn_logp(X, cpts):
    out = np.zeros(len(X))
    for i, par in enumerate(BN_PARENTS):
        idx = np.zeros(len(X), dtype=int)
        for j in par:
            idx = 2 * idx + X[:, j]
        q = cpts[i][idx]
        out += np.log(np.where(X[:, i] == 1, q, 1 - q))
    return out


# linear-Gaussian DAG: column d = sum_j W[j, d] x_j + noise_d
GAUSS_W = np.zeros((6, 6))
GAUSS_W[0, 1], GAUSS_W[0, 2], GAUSS_W[1, 3] = 0.9, -0.8, 1.2
GAUSS_W[2, 4], GAUSS_W[3, 4], GAUSS_W[4, 5] = 0.7, -0.6, 1.0
GAUSS_SD = np.array([1.0, 0.5, 0.6, 0.4, 0.5, 0.3])


def _gauss_draw(n, rng):
    X = np.zeros((n, 6))
    for d in range(6):
        X[:, d] = X @ GAUSS_W[:, d] + GAUSS_SD[d] * rng.normal(size=n)
    return X


def _gauss_logp(X):
    return stats.norm.logpdf(X, X @ GAUSS_W, GAUSS_SD).sum(1)


# MASDE and MADE train alike here, so the gap is the structure's: one minibatch size and one
# kernel (MADE's defaults take smaller batches on small data and logistic kernels).
SMALL = dict(hidden_layer_sizes=(32,), learning_rate_init=3e-2, max_iter=60,
             validation_fraction=0.2, n_iter_no_change=10, batch_size=200,
             component="gaussian")


@pytest.mark.parametrize("n", [100, 300])
def test_true_structure_beats_made_on_a_small_binary_bayes_net(n):
    cpts = _bn_cpts()
    rows = all_binary_rows(8)
    probs = np.exp(_bn_logp(rows, cpts))
    assert probs.sum() == pytest.approx(1.0)
    A = np.zeros((8, 8), dtype=int)
    for i, par in enumerate(BN_PARENTS):
        A[par, i] = 1
    gaps = []
    for seed in range(3):
        X = rows[np.random.RandomState(seed).choice(256, n, p=probs)]
        masde = MASDEDensity(A, random_state=seed, **SMALL).fit(X)
        made = MADEDensity(random_state=seed, **SMALL).fit(X)
        # exact held-out NLL: the expectation over the true distribution, by enumeration
        gaps.append((probs * (masde.score_samples(rows) - made.score_samples(rows))).sum())
    assert np.mean(gaps) > 0.01, gaps


@pytest.mark.parametrize("n", [100, 300])
def test_true_structure_beats_made_on_a_small_gaussian_dag(n):
    A = (GAUSS_W != 0).astype(int)
    X_test = _gauss_draw(5000, np.random.RandomState(99))
    gaps = []
    for seed in range(3):
        X = _gauss_draw(n, np.random.RandomState(seed))
        masde = MASDEDensity(A, n_components=2, random_state=seed, **SMALL).fit(X)
        made = MADEDensity(n_components=2, random_state=seed, **SMALL).fit(X)
        gaps.append(np.mean(masde.score_samples(X_test) - made.score_samples(X_test)))
    assert np.mean(gaps) > 0.01, gaps
    # and it is a density in the right units: not better than the truth (up to test noise)
    assert np.mean(masde.score_samples(X_test)) < np.mean(_gauss_logp(X_test)) + 0.05


# ---------------------------------------------------------------- scikit-learn API
@parametrize_with_checks(
    [MASDEDensity(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
     MASDEDensity(hidden_layer_sizes=(), n_orderings=2, max_iter=2, early_stopping=False,
                  random_state=0)],
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- bad structures
@pytest.mark.parametrize(
    "structure, match",
    [
        (np.zeros((3, 3)),
         r"shape \(4, 4\) for the 4 columns of X; got an array of shape \(3, 3\)"),
        (np.zeros(4), r"got an array of shape \(4,\)"),
        ([[0, 2, 0, 0]] + [[0] * 4] * 3, r"only 0/1 entries; structure\[0, 1\] = 2"),
        ([[0, 0.5, 0, 0]] + [[0] * 4] * 3, r"structure\[0, 1\] = 0.5"),
        ([["a"] * 4] * 4, "must hold 0/1 entries; got dtype"),
        (np.eye(4), r"structure\[0, 0\] = 1 is a self-loop"),
        ([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]],
         r"directed cycle: 0 -> 1 -> 2 -> 0"),
        ([[0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
         r"directed cycle: 0 -> 1 -> 0"),
        ("tree", "must be a str among|must be an array-like"),
    ],
)
def test_bad_structure_raises_a_clear_value_error(structure, match):
    X = (np.random.RandomState(0).rand(50, 4) < 0.5).astype(int)
    est = MASDEDensity(structure, hidden_layer_sizes=(4,), **FAST)
    with pytest.raises(ValueError, match=match):
        est.fit(X)
    assert not hasattr(est, "net_")


def test_parents_must_come_before_their_child_in_the_ordering():
    with pytest.raises(ValueError, match="column 2 is in B_1 but not before column 1"):
        MASDE([1, 1, 1], ["binary"] * 3, [1, 1, 1], [0, 1, 2],
              [np.array([]), np.array([2]), np.array([])], (4,))


def test_clone_and_pickle_keep_a_given_structure():
    import pickle

    from sklearn.base import clone

    X = (np.random.RandomState(0).rand(100, 3) < 0.5).astype(int)
    dag = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    est = MASDEDensity(dag, hidden_layer_sizes=(4,), n_orderings=2, **FAST).fit(X)
    c = clone(est)
    np.testing.assert_array_equal(c.structure, dag)
    assert not hasattr(c, "parents_")
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.score_samples(X), est.score_samples(X))
    np.testing.assert_array_equal(back.sample(5, random_state=1), est.sample(5, random_state=1))
    assert [p.tolist() for p in back.parents_] == [[], [0], [0, 1]]
