"""Tests of DocNADEDensity against independent numbers.

Documents are sequences of word ids, not a 2-D float ``X``, so scikit-learn's
``parametrize_with_checks`` does not apply as a whole: its data checks feed continuous floats
(rejected here: a word id must be a whole number >= 0) and compare ``n_features_in_`` across
calls (documents have no fixed width). The checks that need no data run below
(``test_sklearn_checks_without_data``); what the data checks test -- clone, pickle,
reproducibility, a failed fit leaving the estimator unchanged, GridSearchCV, errors before
fit -- is tested directly with documents.
"""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import stats
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from skar.datasets._documents import load_shakespeare_speeches, words_to_ids
from skar.models.docnade import (
    DocNADEDensity,
    DocNADENetwork,
    balanced_tree,
    frequency_tree,
)

OUTPUTS = [("softmax", "balanced"), ("tree", "balanced"), ("tree", "frequency")]


def _docs(n: int = 60, V: int = 4, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, V, rng.integers(1, 6)).tolist() for _ in range(n)]


def _random_model(output: str, tree: str, V: int = 4, n_hidden: int = 5, seed: int = 0):
    """A fitted model whose parameters are then drawn at scale 1 (a non-trivial density)."""
    docs = _docs(V=V, seed=seed)
    docs.append(list(range(V)))  # a frequency tree needs counts; every id present
    model = DocNADEDensity(n_hidden, output=output, tree=tree, vocabulary_size=V, max_iter=1,
                           random_state=seed, device="cpu").fit(docs)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.net_.module_.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return model


def _all_documents(V: int, length: int) -> np.ndarray:
    return np.array(list(itertools.product(range(V), repeat=length)), dtype=np.int64)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _numpy_params(model):
    m = model.net_.module_
    return {k: v.detach().double().numpy() for k, v in m.named_parameters()}


def _leaf_paths(children: np.ndarray, V: int) -> dict[int, list[tuple[int, int]]]:
    """Word -> [(node, went_right)], by a recursive walk from the root (test's own)."""
    paths: dict[int, list[tuple[int, int]]] = {}

    def walk(node: int, path: list[tuple[int, int]]) -> None:
        for right in (0, 1):
            child = int(children[node, right])
            if child < 0:
                paths[-child - 1] = [*path, (node, right)]
            else:
                walk(child, [*path, (node, right)])

    walk(0, [])
    assert sorted(paths) == list(range(V))
    return paths


def _numpy_word_probs(model, h: np.ndarray) -> np.ndarray:
    """p(w | h) for every word, (V,), from the parameters: full softmax or path products."""
    P = _numpy_params(model)
    V = model.vocabulary_size_
    if model.tree_children_ is None:
        logits = P["out_weight"] @ h + P["out_bias"]
        e = np.exp(logits - logits.max())
        return e / e.sum()
    node_right = _sigmoid(P["out_weight"] @ h + P["out_bias"])  # P(right) at every node
    probs = np.ones(V)
    for w, path in _leaf_paths(model.tree_children_, V).items():
        for node, right in path:
            probs[w] *= node_right[node] if right else 1.0 - node_right[node]
    return probs


def _numpy_log_prob(model, doc) -> float:
    """log p(doc) by the plain loop: a = c; h_i = sigmoid(a); a += W[:, v_i]."""
    P = _numpy_params(model)
    a = P["c"].copy()
    total = 0.0
    for v in doc:
        total += np.log(_numpy_word_probs(model, _sigmoid(a))[v])
        a = a + P["embedding"][v]
    return total


# ------------------------------------------------------------------ normalisation
@pytest.mark.parametrize("output,tree", OUTPUTS)
def test_probabilities_of_all_documents_sum_to_one(output, tree):
    model = _random_model(output, tree, V=4)
    total = np.exp(model.score_samples(_all_documents(4, 3))).sum()
    assert abs(total - 1.0) < 1e-6
    # Given its length: the 16 documents of length 2 sum to 1 on their own.
    assert abs(np.exp(model.score_samples(_all_documents(4, 2))).sum() - 1.0) < 1e-6


@pytest.mark.parametrize("output,tree", OUTPUTS)
def test_sums_to_one_with_a_vocabulary_that_is_not_a_power_of_two(output, tree):
    model = _random_model(output, tree, V=5)
    assert abs(np.exp(model.score_samples(_all_documents(5, 3))).sum() - 1.0) < 1e-6


# ------------------------------------------------------------------ tree softmax
@pytest.mark.parametrize("tree", ["balanced", "frequency"])
@pytest.mark.parametrize("V", [2, 5, 8])
def test_tree_equals_a_softmax_over_the_brute_force_leaf_logits(tree, V):
    model = _random_model("tree", tree, V=V)
    module = model.net_.module_
    h = torch.randn(7, 5, generator=torch.Generator().manual_seed(3))
    for row in h.double().numpy():
        # Leaf logits by brute force: the sum of the log branch probabilities on each path.
        leaf_logits = np.log(_numpy_word_probs(model, row))
        softmax = np.exp(leaf_logits) / np.exp(leaf_logits).sum()
        got = module.leaf_log_probs(torch.as_tensor(row[None], dtype=torch.float32))[0].detach()
        np.testing.assert_allclose(np.exp(got.double().numpy()), softmax, atol=1e-6)
        words = torch.arange(V)
        one = module.word_log_prob(torch.as_tensor(np.tile(row, (V, 1)), dtype=torch.float32),
                                   words)
        np.testing.assert_allclose(one.detach().double().numpy(), leaf_logits, atol=1e-5)
        # The leaf logits are already normalised: the tree needs no partition function.
        assert abs(np.exp(leaf_logits).sum() - 1.0) < 1e-12


@pytest.mark.parametrize("V", [1, 2, 3, 7, 8, 100])
def test_balanced_tree_holds_every_word_once_at_depth_log2(V):
    children = balanced_tree(V)
    assert children.shape == (max(V - 1, 0), 2)
    if V == 1:
        return
    paths = _leaf_paths(children, V)
    depths = np.array([len(paths[w]) for w in range(V)])
    assert depths.max() == int(np.ceil(np.log2(V)))
    assert depths.min() == int(np.floor(np.log2(V)))
    # Kraft equality: a full binary tree.
    assert np.isclose(np.sum(2.0 ** -depths), 1.0)


def test_frequency_tree_is_a_huffman_code_within_the_shannon_bounds():
    counts = np.array([500, 3, 80, 0, 40, 20, 250, 10, 7, 1])
    children = frequency_tree(counts)
    paths = _leaf_paths(children, len(counts))
    depths = np.array([len(paths[w]) for w in range(len(counts))])
    p = (counts + 1.0) / (counts + 1.0).sum()
    entropy_bits = -(p * np.log2(p)).sum()
    expected = (p * depths).sum()
    assert entropy_bits <= expected < entropy_bits + 1
    assert np.isclose(np.sum(2.0 ** -depths), 1.0)
    assert depths[0] == depths.min() and depths[3] == depths.max()


# ------------------------------------------------------------------ exact values
@pytest.mark.parametrize("output,tree", OUTPUTS)
def test_scores_equal_the_plain_numpy_loop(output, tree):
    model = _random_model(output, tree, V=6)
    docs = [[0], [5, 5, 5, 1], [2, 3, 1, 0, 4, 5, 2], []]
    expected = [_numpy_log_prob(model, d) for d in docs]
    np.testing.assert_allclose(model.score_samples(docs), expected, atol=1e-5)
    per_word = model.score_samples_per_word(docs)
    assert [len(p) for p in per_word] == [1, 4, 7, 0]
    np.testing.assert_allclose([p.sum() for p in per_word], expected, atol=1e-5)


def test_hidden_state_update_equals_a_numpy_loop():
    for activation, g in (("sigmoid", _sigmoid), ("tanh", np.tanh),
                          ("relu", lambda a: np.maximum(a, 0))):
        torch.manual_seed(0)
        net = DocNADENetwork(9, 6, activation)
        with torch.no_grad():
            net.c.normal_()
            net.embedding.normal_()
        x = np.random.default_rng(1).integers(0, 9, (4, 11))
        got = net.hidden(torch.as_tensor(x)).detach().double().numpy()  # (B, L, H)
        W = net.embedding.detach().double().numpy()
        c = net.c.detach().double().numpy()
        for b in range(4):
            a = c.copy()
            for i in range(11):
                np.testing.assert_allclose(got[b, i], g(a), atol=1e-5)
                a = a + W[x[b, i]]


@pytest.mark.parametrize("output,tree", OUTPUTS)
def test_a_word_only_changes_the_conditionals_after_it(output, tree):
    model = _random_model(output, tree, V=5)
    doc = np.array([1, 4, 0, 2, 3, 3])
    base = model.score_samples_per_word([doc])[0]
    for j in range(len(doc)):
        changed = doc.copy()
        changed[j] = (doc[j] + 1) % 5
        other = model.score_samples_per_word([changed])[0]
        np.testing.assert_array_equal(other[:j], base[:j])
        assert not np.allclose(other[j:], base[j:])


# ------------------------------------------------------------------ sampling
@pytest.mark.parametrize("output,tree", OUTPUTS)
def test_samples_match_the_scores_chi_square(output, tree):
    model = _random_model(output, tree, V=4)
    all_docs = _all_documents(4, 3)
    p = np.exp(model.score_samples(all_docs))
    n = 20_000
    draws = model.sample(n, length=3, random_state=0)
    assert draws.shape == (n, 3) and draws.dtype == np.int64
    observed = np.bincount(draws @ np.array([16, 4, 1]), minlength=64)
    result = stats.chisquare(observed, n * p / p.sum())
    assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("output,tree", OUTPUTS)
def test_incremental_sampler_equals_the_plain_loop(output, tree):
    # The plain loop recomputes h_i from the whole prefix (the training pass's cumulative sum)
    # at every step; the sampler only adds one embedding a word. Same generator, same words.
    model = _random_model(output, tree, V=7)
    net = model.net_.module_
    fast = net.sample(30, 6, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    x = torch.zeros(30, 7, dtype=torch.long)
    with torch.no_grad():
        for i in range(6):
            x[:, i] = net.draw_words(net.hidden(x[:, : i + 1])[:, i], g)
    torch.testing.assert_close(fast, x[:, :6], rtol=0, atol=0)


def test_sample_is_reproducible_and_leaves_global_rngs_alone():
    model = _random_model("tree", "balanced", V=5)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    a = model.sample(50, length=4, random_state=7)
    b = model.sample(50, length=4, random_state=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, model.sample(50, length=4, random_state=8))
    assert torch.equal(torch_state, torch.get_rng_state())
    assert np.array_equal(np_state[1], np.random.get_state()[1])
    assert model.sample(2, length=0).shape == (2, 0)
    with pytest.raises(ValueError, match="length must be an integer >= 0"):
        model.sample(2, length=-1)
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(0, length=3)


# ------------------------------------------------------------------ learning
@pytest.mark.parametrize("output", ["softmax", "tree"])
def test_learns_a_dependent_distribution_near_its_entropy(output):
    # The first word is uniform over 4 ids, the next two copy it: entropy log 4 per document,
    # where the best unigram model pays 3 log 4.
    rng = np.random.default_rng(0)
    first = rng.integers(0, 4, 600)
    train = np.repeat(first[:, None], 3, axis=1)
    test = np.repeat(np.arange(4)[:, None], 3, axis=1)
    model = DocNADEDensity(16, output=output, max_iter=60, learning_rate_init=0.03,
                           batch_size=100, random_state=0, device="cpu").fit(train)
    nll = -model.score_samples(test).mean()
    assert nll < np.log(4) + 0.15, nll
    assert model.n_iter_ == 60 and list(model.history_.columns)[:2] == ["epoch", "train_nll"]


# ------------------------------------------------------------------ inputs
def test_lists_padded_arrays_and_integral_floats_score_alike():
    model = _random_model("softmax", "balanced", V=6)
    docs = [[1, 2, 3], [4], [5, 0, 0, 1]]
    padded = np.array([[1, 2, 3, -1], [4, -1, -1, -1], [5, 0, 0, 1]])
    expected = model.score_samples(docs)
    np.testing.assert_allclose(model.set_params(pad_value=-1).score_samples(padded), expected)
    floats = np.where(padded < 0, np.nan, padded).astype(float)
    np.testing.assert_allclose(model.set_params(pad_value=np.nan).score_samples(floats),
                               expected)
    np.testing.assert_allclose(
        model.set_params(pad_value=None).score_samples([np.array(d) for d in docs]), expected)
    fixed = np.array([[1, 2], [3, 4]])
    np.testing.assert_allclose(model.score_samples(fixed), model.score_samples(fixed.tolist()))


def test_bag_of_words_input_scores_the_ascending_order():
    texts = ["the cat sat on the mat", "the dog sat", "a cat and a dog", "on the mat"] * 5
    bags = CountVectorizer(token_pattern=r"\b\w+\b").fit_transform(texts)
    model = DocNADEDensity(8, max_iter=3, random_state=0, device="cpu").fit(bags)
    assert model.vocabulary_size_ == bags.shape[1]
    rows = [np.repeat(np.arange(bags.shape[1]), bags[[i]].toarray()[0]) for i in range(4)]
    np.testing.assert_allclose(model.score_samples(bags[:4]), model.score_samples(rows))
    # The count matrix the caller passed is left as it was.
    dup = sp.coo_matrix(([1, 1, 2], ([0, 0, 1], [2, 2, 0])), shape=(2, bags.shape[1])).tocsr()
    before = dup.copy()
    model.score_samples(dup)
    assert (dup != before).nnz == 0
    sorted_model = clone(model).set_params(bag_order="sorted").fit(bags)
    assert not np.allclose(sorted_model.score_samples(bags), model.score_samples(bags))


def test_bags_are_read_in_a_fresh_random_order_while_training():
    # In training mode a bag's log-probability is that of one of its orders, varying per pass.
    net = DocNADENetwork(3, 4, shuffle_words=True)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()
    doc = torch.tensor([[0, 1, 2]])
    lengths = torch.tensor([3])
    net.eval()
    orders = {perm: float(net(doc[:, list(perm)], lengths).detach())
              for perm in itertools.permutations(range(3))}
    assert len({round(v, 5) for v in orders.values()}) == 6
    net.train()
    torch.manual_seed(0)
    seen = set()
    for _ in range(60):
        value = float(net(doc, lengths).detach())
        match = [perm for perm, v in orders.items() if abs(v - value) < 1e-5]
        assert len(match) == 1
        seen.add(match[0])
    assert len(seen) == 6


def test_vocabulary_is_learned_or_given_and_unseen_ids_get_minus_inf():
    model = DocNADEDensity(4, max_iter=1, random_state=0, device="cpu").fit([[0, 2], [1]])
    assert model.vocabulary_size_ == 3
    scores = model.score_samples([[0, 1], [0, 3], [7]])
    assert np.isfinite(scores[0]) and np.isneginf(scores[1]) and np.isneginf(scores[2])
    assert model.perplexity([[0, 3]]) == np.inf
    given = DocNADEDensity(4, vocabulary_size=10, max_iter=1, device="cpu").fit([[0, 2]])
    assert given.vocabulary_size_ == 10 and np.isfinite(given.score_samples([[9]])[0])
    with pytest.raises(ValueError, match="holds the id 5 at position 1.*vocabulary_size=3"):
        DocNADEDensity(vocabulary_size=3, max_iter=1).fit([[0], [1, 5]])


def test_perplexity_definitions():
    model = _random_model("tree", "frequency", V=5)
    docs = [[0, 1, 2], [3], [4, 4], []]
    scores = model.score_samples(docs)
    np.testing.assert_allclose(model.perplexity(docs),
                               np.exp(-np.mean([scores[0] / 3, scores[1], scores[2] / 2])))
    np.testing.assert_allclose(model.perplexity(docs, average="words"),
                               np.exp(-scores.sum() / 6))
    assert np.isclose(model.score(docs), scores.sum())
    assert scores[3] == 0.0
    with pytest.raises(ValueError, match="average must be"):
        model.perplexity(docs, average="tokens")


@pytest.mark.parametrize(
    "X,error,match",
    [
        ([[0, 1], [2, -1]], ValueError, "document 1 of X at position 1 holds the negative "
                                        "id -1; word ids must be >= 0"),
        ([[0, 1.5]], ValueError, "whole numbers"),
        ([[0, np.nan]], ValueError, "whole numbers"),
        ([["a", "b"]], TypeError, "integer word ids"),
        (["to be or not"], TypeError, "is a string"),
        ([], ValueError, "no document"),
        (np.zeros((0, 3), int), ValueError, "no document"),
        (np.array([0, 1, 2]), ValueError, "shape \\(3,\\).*reshape\\(1, -1\\)"),
        ([[[0, 1]]], ValueError, "1-D sequence of word ids; got shape \\(1, 2\\)"),
        ([[], []], ValueError, "every document of X is empty"),
        (sp.csr_matrix(np.array([[1.0, -2.0]])), ValueError, "negative id"),
        ("0 1 2", TypeError, "got str"),
        (np.array([[True, False]]), TypeError, "dtype bool"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(X, error, match):
    with pytest.raises(error, match=match):
        DocNADEDensity(max_iter=1, device="cpu").fit(X)


def test_padding_must_come_after_the_words():
    X = np.array([[1, 2, -1], [3, -1, 4]])
    with pytest.raises(ValueError, match="row 1 has a word id \\(4\\) at position 2 after the "
                                         "pad value -1 at position 1"):
        DocNADEDensity(pad_value=-1, max_iter=1, device="cpu").fit(X)
    with pytest.raises(ValueError, match="pad_value=-1 applies to a 2-D array"):
        DocNADEDensity(pad_value=-1, max_iter=1, device="cpu").fit([[1, 2], [3]])


def test_bad_parameters_and_unfitted_model():
    for params in ({"output": "hsoftmax"}, {"tree": "random"}, {"n_hidden": 0},
                   {"bag_order": "shuffled"}, {"vocabulary_size": 0}):
        with pytest.raises(ValueError, match=next(iter(params))):
            DocNADEDensity(**params).fit([[0, 1]])
    for method in ("score_samples", "perplexity", "score_samples_per_word"):
        with pytest.raises(NotFittedError):
            getattr(DocNADEDensity(), method)([[0, 1]])
    with pytest.raises(NotFittedError):
        DocNADEDensity().sample(1, length=2)
    with pytest.raises(ValueError, match="non-zero"):
        DocNADEDensity(max_iter=1, device="cpu").fit([[0, 1], [1]], sample_weight=[0, 0])


def test_a_failed_fit_leaves_the_fitted_model_unchanged():
    model = DocNADEDensity(4, max_iter=2, random_state=0, device="cpu").fit([[0, 1], [2]])
    before = model.score_samples([[0, 1, 2]])
    with pytest.raises(ValueError):
        model.fit([[0, -3]])
    np.testing.assert_array_equal(model.score_samples([[0, 1, 2]]), before)


# ------------------------------------------------------------------ scikit-learn
def test_sklearn_checks_without_data():
    name = DocNADEDensity.__name__
    check_parameters_default_constructible(name, DocNADEDensity())
    check_no_attributes_set_in_init(name, DocNADEDensity())
    check_get_params_invariance(name, DocNADEDensity())
    check_set_params(name, DocNADEDensity())


def test_clone_pickle_and_reproducible_fits():
    docs = _docs(40, V=5)
    model = DocNADEDensity(6, output="tree", max_iter=3, random_state=0, device="cpu")
    torch_state = torch.get_rng_state()
    a = model.fit(docs).score_samples(docs)
    assert torch.equal(torch_state, torch.get_rng_state())
    b = clone(model).fit(docs).score_samples(docs)
    np.testing.assert_array_equal(a, b)
    c = clone(model).set_params(random_state=1).fit(docs).score_samples(docs)
    assert not np.allclose(a, c)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.score_samples(docs), a)
    np.testing.assert_array_equal(restored.sample(5, length=3), model.sample(5, length=3))


def test_sample_weight_equals_repeating_documents():
    docs = [[0, 1], [2, 2, 1], [1]]
    # Full-batch training: weights 2 and repetition give the same loss and the same gradients.
    weighted = DocNADEDensity(4, max_iter=5, batch_size=10, random_state=0, device="cpu")
    weighted.fit(docs, sample_weight=[2, 1, 1])
    repeated = DocNADEDensity(4, max_iter=5, batch_size=10, random_state=0, device="cpu")
    repeated.fit([docs[0], *docs])
    np.testing.assert_allclose(weighted.score_samples(docs), repeated.score_samples(docs),
                               atol=1e-5)
    # Only the weights' ratios matter, however small they are.
    tiny = DocNADEDensity(4, max_iter=5, batch_size=10, random_state=0, device="cpu")
    tiny.fit(docs, sample_weight=[2e-30, 1e-30, 1e-30])
    np.testing.assert_allclose(tiny.score_samples(docs), weighted.score_samples(docs),
                               atol=1e-5)


def test_grid_search_and_early_stopping():
    docs = _docs(60, V=4)
    search = GridSearchCV(DocNADEDensity(max_iter=2, random_state=0, vocabulary_size=4,
                                         device="cpu"),
                          {"n_hidden": [2, 8]}, cv=2).fit(docs)
    assert search.best_params_["n_hidden"] in (2, 8)
    model = DocNADEDensity(4, early_stopping=True, n_iter_no_change=2, max_iter=50,
                           random_state=0, device="cpu").fit(docs)
    assert "valid_nll" in model.history_ and model.n_iter_ <= 50
    with pytest.raises(ValueError, match="leaves none to train on"):
        DocNADEDensity(early_stopping=True, validation_fraction=0.9).fit([[0]])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    docs = _docs(40, V=5)
    cpu = DocNADEDensity(6, output="tree", max_iter=2, random_state=0, device="cpu").fit(docs)
    gpu = DocNADEDensity(6, output="tree", max_iter=2, random_state=0, device="cuda")
    gpu.fit(docs)
    gpu.net_.module_.load_state_dict(cpu.net_.module_.state_dict())
    np.testing.assert_allclose(gpu.score_samples(docs), cpu.score_samples(docs), atol=1e-4)
    np.testing.assert_array_equal(gpu.sample(20, length=4, random_state=0),
                                  cpu.sample(20, length=4, random_state=0))


# ------------------------------------------------------------------ data
def test_shakespeare_speeches_and_word_ids():
    speeches = load_shakespeare_speeches()
    assert len(speeches.data) == len(speeches.speaker) == 7097
    assert speeches.speaker[0] == "First Citizen"
    assert speeches.data[1] == "Speak, speak."
    assert all(t.strip() for t in speeches.data)
    texts, y = load_shakespeare_speeches(return_X_y=True)
    assert texts == speeches.data and y is None
    ids, vocab = words_to_ids(["To be, or not to be", "to sleep"], min_count=2)
    assert vocab == ["<unk>", "to", "be"]
    assert [d.tolist() for d in ids] == [[1, 2, 0, 0, 1, 2], [1, 0]]
    again, _ = words_to_ids(["Be not, to SLEEP... know't"], vocabulary=vocab)
    assert again[0].tolist() == [2, 0, 1, 0, 0]
    assert words_to_ids(["o' the know't"], min_count=1)[1] == ["<unk>", "know't", "o'", "the"]
    with pytest.raises(TypeError, match="not one str"):
        words_to_ids("to be")
    with pytest.raises(ValueError, match="must contain the unknown-word token"):
        words_to_ids(["a"], vocabulary=["a"])
    with pytest.raises(ValueError, match="min_count"):
        words_to_ids(["a"], min_count=0)


@pytest.mark.parametrize("output", ["softmax", "tree"])
def test_empty_documents_have_probability_one_and_train(output):
    # batch_size=1: two minibatches of one empty document each (no word, a loss of 0).
    model = DocNADEDensity(3, output=output, batch_size=1, max_iter=2, random_state=0,
                           device="cpu").fit([[], [], [0, 1]])
    assert np.isfinite(model.history_["train_nll"]).all()
    assert model.score_samples([[], [1]])[0] == 0.0
