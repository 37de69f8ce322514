r"""DocNADE: the neural autoregressive distribution estimator of documents.

Larochelle, H. and Lauly, S. (2012). *A Neural Autoregressive Topic Model*. NIPS 25.

A document is a sequence of word ids :math:`v = (v_1, \dots, v_D)`, :math:`v_i \in \{0, \dots,
V-1\}`, and its probability the chain rule

.. math::  p(v) = \prod_{i=1}^{D} p(v_i \mid v_{<i}),

every conditional computed from one hidden layer that sums the embeddings (columns of
:math:`W`, shape :math:`H \times V`) of the words before position :math:`i`:

.. math::  h_i = g\Big(c + \sum_{j<i} W_{:, v_j}\Big),
           \qquad a_{i+1} = a_i + W_{:, v_i},\ a_1 = c .

That running sum is NADE's weight sharing: :math:`O(H)` per word to update the state, one
exclusive cumulative sum over the document to compute every :math:`h_i` at once. The
conditional of word :math:`i` is

* ``output="softmax"``: a softmax over the vocabulary, :math:`p(v_i = w \mid v_{<i}) =
  \operatorname{softmax}(b + U h_i)_w`, :math:`O(VH)` per word;
* ``output="tree"``: a binary-tree (hierarchical) softmax (Morin & Bengio 2005, as the paper
  uses it). Every word is a leaf of a binary tree with :math:`V - 1` internal nodes; node
  :math:`n` sends :math:`h` right with probability :math:`\sigma(b_n + U_n h)` and left with
  :math:`\sigma(-(b_n + U_n h))`, and a word's probability is the product over the nodes on
  its path,

  .. math::  p(v_i = w \mid v_{<i}) = \prod_{(n, d) \in \mathrm{path}(w)}
             \sigma\big(\pm_d (b_n + U_n h_i)\big),

  which sums to 1 over the leaves for any :math:`h`. Each word costs :math:`O(H \log V)`. The
  tree is ``"balanced"`` (the id range is halved at every node, depth
  :math:`\lceil \log_2 V \rceil`) or ``"frequency"`` (a Huffman tree of the training counts plus
  one, so frequent words have short paths: the expected cost is the entropy of the unigram in
  bits, times :math:`H`).

The model is of a document *given its length*: :math:`\sum_{v \in \{0..V-1\}^D} p(v) = 1` for
every :math:`D`; it puts no distribution on the length.

Module layout: the torch module (:class:`DocNADENetwork`), the tree builders, the sampler
(the incremental state, one word at a time), then the estimator (:class:`DocNADEDensity`).
"""

from __future__ import annotations

import heapq
import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from torch import Tensor, nn
from torch.nn import functional as F

from ..base import auto_batch_size, resolve_device
from ..training import build_net, history_frame

__all__ = ["DocNADEDensity", "DocNADENetwork", "balanced_tree", "frequency_tree"]

_ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


# ---------------------------------------------------------------------------- trees
def _paths_from_children(children: np.ndarray, n_words: int) -> tuple[np.ndarray, ...]:
    """Root-to-leaf paths of a binary tree given as ``children``.

    ``children[n] = (left, right)`` for internal node ``n`` (the root is node 0); a child
    ``>= 0`` is an internal node, a child ``< 0`` is the leaf of word ``-child - 1``.

    Returns ``nodes`` (V, depth) int64, ``right`` (V, depth) bool (the branch taken) and
    ``mask`` (V, depth) bool (which entries of the padded paths are real).
    """
    paths: list[list[tuple[int, bool]]] = [[] for _ in range(n_words)]
    stack: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])] if len(children) else []
    while stack:
        node, path = stack.pop()
        for right, child in ((False, children[node, 0]), (True, children[node, 1])):
            step = [*path, (node, right)]
            if child < 0:
                paths[-child - 1] = step
            else:
                stack.append((int(child), step))
    depth = max(1, max(len(p) for p in paths))
    nodes = np.zeros((n_words, depth), np.int64)
    right = np.zeros((n_words, depth), bool)
    mask = np.zeros((n_words, depth), bool)
    for w, p in enumerate(paths):
        for d, (n, r) in enumerate(p):
            nodes[w, d], right[w, d], mask[w, d] = n, r, True
    return nodes, right, mask


def balanced_tree(n_words: int) -> np.ndarray:
    """The balanced binary tree over word ids ``0..n_words-1``.

    Node 0 holds the ids ``[0, V)``; a node holding ``[lo, hi)`` sends ``[lo, mid)`` left and
    ``[mid, hi)`` right, ``mid = (lo + hi) // 2``, so neighbouring ids share most of their path
    and every path has ``floor`` or ``ceil`` of :math:`\\log_2 V` nodes.

    Returns
    -------
    children : ndarray of shape (n_words - 1, 2), int64
        ``children[n] = (left, right)``: an internal node id (``>= 0``) or ``-(word + 1)`` for
        a leaf.
    """
    children = np.zeros((max(n_words - 1, 0), 2), np.int64)
    if n_words < 2:
        return children
    next_id = 1
    stack = [(0, 0, n_words)]
    while stack:
        node, lo, hi = stack.pop()
        mid = (lo + hi) // 2
        for side, (a, b) in enumerate(((lo, mid), (mid, hi))):
            if b - a == 1:
                children[node, side] = -(a + 1)
            else:
                children[node, side] = next_id
                stack.append((next_id, a, b))
                next_id += 1
    return children


def frequency_tree(counts: np.ndarray) -> np.ndarray:
    """The Huffman tree of word ``counts`` (plus one each, so unseen words have a leaf).

    The two least frequent subtrees are joined until one is left (ties go to the lower word
    id, then to the older subtree, so the tree is deterministic); a word's depth is then about
    :math:`-\\log_2` of its unigram probability.

    Returns
    -------
    children : ndarray of shape (len(counts) - 1, 2), int64
        As :func:`balanced_tree`; node 0 is the root.
    """
    n_words = len(counts)
    children = np.zeros((max(n_words - 1, 0), 2), np.int64)
    if n_words < 2:
        return children
    # Heap entries (weight, tie, ref): ref < 0 is a leaf, ref >= 0 a temporary node number.
    heap = [(float(c) + 1.0, w, -(w + 1)) for w, c in enumerate(counts)]
    heapq.heapify(heap)
    merged: list[tuple[int, int]] = []
    tie = n_words
    while len(heap) > 1:
        w0, _, a = heapq.heappop(heap)
        w1, _, b = heapq.heappop(heap)
        merged.append((a, b))
        heapq.heappush(heap, (w0 + w1, tie, len(merged) - 1))
        tie += 1
    # The last merge is the root: renumber so the root is node 0 (temporary k -> V - 2 - k).
    last = len(merged) - 1
    for k, (a, b) in enumerate(merged):
        children[last - k] = [c if c < 0 else last - c for c in (a, b)]
    return children


# ---------------------------------------------------------------------------- network
class DocNADENetwork(nn.Module):
    """The DocNADE network: embeddings summed by a running sum, then a (tree) softmax.

    Parameters
    ----------
    vocabulary_size : int
        :math:`V`, the number of word ids.
    n_hidden : int
        :math:`H`.
    activation : {"sigmoid", "tanh", "relu"}
        :math:`g`.
    tree_children : ndarray of shape (V - 1, 2) or None
        The tree of the hierarchical softmax (:func:`balanced_tree`, :func:`frequency_tree`);
        ``None`` for the full softmax.
    shuffle_words : bool, default=False
        In training mode, read every document in a fresh random order of its words at every
        forward pass (bags of words, whose order carries nothing). Evaluation never shuffles.

    Notes
    -----
    ``forward(x, lengths)`` takes ``x`` of shape (B, L), ids padded after each document's
    ``lengths[b]`` words (the padding's values are ignored), and returns ``log p(document)``
    of shape (B,).
    """

    def __init__(
        self,
        vocabulary_size: int,
        n_hidden: int,
        activation: str = "sigmoid",
        tree_children: np.ndarray | None = None,
        shuffle_words: bool = False,
    ) -> None:
        super().__init__()
        V, H = int(vocabulary_size), int(n_hidden)
        self.vocabulary_size = V
        self.activation_name = activation
        self.shuffle_words = bool(shuffle_words)
        # Row v of ``embedding`` is the paper's column W[:, v] (a row is what ``x`` gathers).
        # Small, because a document sums hundreds of them.
        self.embedding = nn.Parameter(torch.randn(V, H) * 0.01)
        self.c = nn.Parameter(torch.zeros(H))
        self.tree = tree_children is not None
        n_out = max(V - 1, 1) if self.tree else V
        self.out_weight = nn.Parameter(torch.randn(n_out, H) / math.sqrt(H))
        self.out_bias = nn.Parameter(torch.zeros(n_out))
        if self.tree:
            nodes, right, mask = _paths_from_children(np.asarray(tree_children), V)
            self.register_buffer("tree_children", torch.as_tensor(np.asarray(tree_children)))
            self.register_buffer("path_nodes", torch.as_tensor(nodes))
            self.register_buffer("path_right", torch.as_tensor(right))
            self.register_buffer("path_mask", torch.as_tensor(mask))

    def activation(self, a: Tensor) -> Tensor:
        return _ACTIVATIONS[self.activation_name](a)

    def hidden(self, x: Tensor) -> Tensor:
        """:math:`h_i = g(c + \\sum_{j<i} W_{:, v_j})` for every position; (B, L, H).

        An exclusive cumulative sum: position ``i`` sees words ``0..i-1`` only, so padding
        after a document never reaches its own positions.
        """
        e = self.embedding[x[:, :-1]]  # (B, L-1, H): the last word feeds no position
        # Shifted by one, so a_i sums exactly the words j < i (no cumsum(e) - e cancellation).
        a = torch.cumsum(F.pad(e, (0, 0, 1, 0)), dim=1)[:, : x.shape[1]]  # (B, L, H), a_1 = 0
        return self.activation(self.c + a)

    def word_log_prob(self, h: Tensor, words: Tensor) -> Tensor:
        """``log p(word | h)`` for matching rows of ``h`` (N, H) and ``words`` (N,); (N,)."""
        if not self.tree:
            logits = h @ self.out_weight.T + self.out_bias  # (N, V)
            return torch.log_softmax(logits, dim=-1).gather(1, words[:, None])[:, 0]
        # Only the real (word, node) pairs: a word costs its own path length, not the
        # longest path (a Huffman tree's frequent words have short paths).
        mask = self.path_mask[words]  # (N, depth)
        row = mask.nonzero()[:, 0]  # (M,): the word of every pair
        nodes = self.path_nodes[words][mask]  # (M,)
        s = (self.out_weight[nodes] * h[row]).sum(-1) + self.out_bias[nodes]  # (M,)
        s = torch.where(self.path_right[words][mask], s, -s)  # right: sigma(s), left: -s
        return torch.zeros(h.shape[0], dtype=h.dtype, device=h.device).index_add(
            0, row, F.logsigmoid(s))

    def leaf_log_probs(self, h: Tensor) -> Tensor:
        """``log p(w | h)`` for every word ``w``; (N, V). Evaluates every path (O(V log V))."""
        if not self.tree:
            return torch.log_softmax(h @ self.out_weight.T + self.out_bias, dim=-1)
        N, V = h.shape[0], self.vocabulary_size
        words = torch.arange(V, device=h.device).repeat(N)
        return self.word_log_prob(h.repeat_interleave(V, 0), words).reshape(N, V)

    def log_prob_per_word(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``log p(v_i | v_<i)`` of every position; (B, L), 0 on the padding."""
        L = x.shape[1]
        valid = torch.arange(L, device=x.device) < lengths[:, None]  # (B, L)
        x = torch.where(valid, x, torch.zeros_like(x))
        if self.training and self.shuffle_words:
            # A fresh order of each bag: random keys on the words, +inf on the padding.
            keys = torch.rand(x.shape, device=x.device).masked_fill(~valid, 2.0)
            x = x.gather(1, keys.argsort(dim=1))
        h = self.hidden(x)  # (B, L, H)
        out = torch.zeros(x.shape, dtype=h.dtype, device=x.device)
        # Only the real positions go through the output layer (the costly part).
        out[valid] = self.word_log_prob(h[valid], x[valid])
        return out

    def forward(
        self, x: Tensor, lengths: Tensor, sample_weight: Tensor | None = None
    ) -> Tensor:
        """``log p(document)`` of every row; (B,). ``sample_weight`` is the criterion's."""
        L = int(lengths.max()) if lengths.numel() else 0
        return self.log_prob_per_word(x[:, :L], lengths).sum(-1)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def draw_words(self, h: Tensor, generator: torch.Generator) -> Tensor:
        """Draw one word per row of ``h`` (n, H) from :math:`p(\\cdot \\mid h)`; (n,) int64.

        The uniform draws come from ``generator`` (on the CPU, moved to the device) in a fixed
        order, so a draw does not depend on the device: one per row by the inverse CDF for the
        softmax; one per row and tree level for the tree, walking down from the root.
        """
        n, device, V = h.shape[0], h.device, self.vocabulary_size
        if V == 1:
            return torch.zeros(n, dtype=torch.long, device=device)
        if not self.tree:
            u = torch.rand(n, 1, generator=generator).to(device)
            cdf = torch.softmax(h @ self.out_weight.T + self.out_bias, -1).cumsum(-1)
            return (cdf < u).sum(-1).clamp_max(V - 1)
        node = torch.zeros(n, dtype=torch.long, device=device)
        w = torch.full((n,), -1, dtype=torch.long, device=device)
        for _ in range(self.path_nodes.shape[1]):
            u = torch.rand(n, generator=generator).to(device)
            s = (self.out_weight[node] * h).sum(-1) + self.out_bias[node]
            child = self.tree_children[node, (u < torch.sigmoid(s)).long()]
            active = w < 0
            leaf = active & (child < 0)
            w = torch.where(leaf, -child - 1, w)
            node = torch.where(active & ~leaf, child, node)  # finished rows stay put, unused
        return w

    @torch.no_grad()
    def sample(self, n_samples: int, length: int, generator: torch.Generator) -> Tensor:
        """Draw ``n_samples`` documents of ``length`` words; (n_samples, length) int64.

        The incremental state :math:`a_{i+1} = a_i + W_{:, v_i}` costs O(H) a word; each word
        is drawn by :meth:`draw_words`.
        """
        a = self.c.expand(n_samples, -1).clone()  # (n, H)
        out = torch.zeros(n_samples, length, dtype=torch.long, device=self.c.device)
        for i in range(length):
            w = self.draw_words(self.activation(a), generator)
            out[:, i] = w
            a = a + self.embedding[w]
        return out


# ---------------------------------------------------------------------------- input
def _as_int_row(row: Any, where: str) -> np.ndarray:
    """One document as a 1-D int64 array of non-negative ids, or a clear error."""
    if isinstance(row, (str, bytes)):
        raise TypeError(f"{where} is a string ({row[:30]!r}); documents are sequences of word "
                        "ids (use skar.datasets.words_to_ids to turn texts into ids)")
    arr = np.asarray(row)
    if arr.ndim != 1:
        raise ValueError(f"{where} must be a 1-D sequence of word ids; got shape {arr.shape}")
    return _check_ids(arr, where)


def _check_ids(arr: np.ndarray, where: str) -> np.ndarray:
    """Check an array of ids: integers (or integral floats), finite, non-negative."""
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise TypeError(f"{where} must hold integer word ids; got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise ValueError(f"{where}{_at(arr, bad)} holds {arr[bad][0].item()!r}; word ids "
                             "must be whole numbers >= 0")
    if (arr < 0).any():
        raise ValueError(f"{where}{_at(arr, arr < 0)} holds the negative id "
                         f"{arr[arr < 0][0].item()!r}; word ids must be >= 0")
    return arr.astype(np.int64)


def _at(arr: np.ndarray, bad: np.ndarray) -> str:
    """Where the first offending entry is: ``" at position i"`` or ``" at row r, position i"``."""
    pos = [int(p) for p in np.argwhere(bad)[0]]
    return f" at position {pos[0]}" if len(pos) == 1 else f" at row {pos[0]}, position {pos[1]}"


def _pad(docs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(d) for d in docs], dtype=np.int64)
    ids = np.zeros((len(docs), max(int(lengths.max()), 1)), dtype=np.int64)
    for i, d in enumerate(docs):
        ids[i, : len(d)] = d
    return ids, lengths


def _documents(X: Any, pad_value: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Documents as ``(ids, lengths, is_bag)``: ``ids`` (n, L) int64 padded with 0."""
    if sp.issparse(X):
        X = sp.csr_array(X, copy=True)  # sum_duplicates below must not touch the caller's
        if X.shape[0] < 1:
            raise ValueError("X holds no document (0 rows); pass at least one")
        X.sum_duplicates()
        counts = _check_ids(np.asarray(X.data), "the bag-of-words matrix X")
        docs = [np.repeat(X.indices[X.indptr[i] : X.indptr[i + 1]],
                          counts[X.indptr[i] : X.indptr[i + 1]]).astype(np.int64)
                for i in range(X.shape[0])]  # ascending ids, each repeated by its count
        ids, lengths = _pad(docs)
        return ids, lengths, True
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim != 2:
            raise ValueError(
                f"X must be a list of documents (sequences of word ids), a 2-D array with one "
                f"document per row, or a sparse bag-of-words matrix; got an array of shape "
                f"{X.shape} (one document: pass [doc] or X.reshape(1, -1))")
        if X.shape[0] < 1:
            raise ValueError("X holds no document (0 rows); pass at least one")
        if pad_value is None:
            return _check_ids(X, "X"), np.full(X.shape[0], X.shape[1], np.int64), False
        if X.dtype.kind == "f" and np.isnan(pad_value):
            is_pad = np.isnan(X)
        else:
            is_pad = X == pad_value
        # Padding is trailing: once a row has padded, it must stay padding.
        lengths = np.where(is_pad.any(1), is_pad.argmax(1), X.shape[1]).astype(np.int64)
        inner = ~is_pad & (np.arange(X.shape[1]) >= lengths[:, None])
        if inner.any():
            r, c = np.argwhere(inner)[0]
            raise ValueError(
                f"X row {r} has a word id ({X[r, c].item()!r}) at position {c} after the pad value "
                f"{pad_value!r} at position {lengths[r]}; padding must come after the words")
        # A NaN or fraction left among the words is reported by _check_ids.
        return _check_ids(np.where(is_pad, 0, X), "X"), lengths, False
    if hasattr(X, "iloc") or not hasattr(X, "__len__") or isinstance(X, (str, bytes)):
        raise TypeError(
            f"X must be a list of documents (sequences of word ids), a 2-D int array or a "
            f"sparse bag-of-words matrix; got {type(X).__name__}")
    if len(X) < 1:
        raise ValueError("X holds no document (0 rows); pass at least one")
    docs = [_as_int_row(row, f"document {i} of X") for i, row in enumerate(X)]
    if pad_value is not None:
        raise ValueError(f"pad_value={pad_value!r} applies to a 2-D array of padded rows; a "
                         "list of documents needs no padding (set pad_value=None)")
    ids, lengths = _pad(docs)
    return ids, lengths, False


# ---------------------------------------------------------------------------- estimator
class DocNADEDensity(DensityMixin, BaseEstimator):
    """DocNADE: an exact-likelihood autoregressive model of documents (word-id sequences).

    .. math::  \\log p(v) = \\sum_{i=1}^{D} \\log p(v_i \\mid v_{<i}), \\qquad
               h_i = g\\Big(c + \\sum_{j<i} W_{:, v_j}\\Big)

    (Larochelle & Lauly 2012; the equations in the module docstring of
    :mod:`skar.models.docnade`). Trained by maximum likelihood (mean negative log-likelihood
    per document, minibatch Adam, driven by skorch).

    Parameters
    ----------
    n_hidden : int, default=50
        Size :math:`H` of the hidden layer (the topic-like document representation).
    output : {"softmax", "tree"}, default="softmax"
        The conditional of every word: a full softmax over the vocabulary (:math:`O(VH)` per
        word), or a binary-tree softmax (:math:`O(H \\log V)` per word), for large
        vocabularies.
    tree : {"balanced", "frequency"}, default="balanced"
        The tree of ``output="tree"``: balanced over the word ids, or a Huffman tree of the
        training word counts (frequent words get short paths).
    activation : {"sigmoid", "tanh", "relu"}, default="sigmoid"
        :math:`g`; the paper's is the sigmoid.
    vocabulary_size : int or None, default=None
        :math:`V`. ``None`` learns it from the training data: the largest id plus one, or the
        number of columns of a bag-of-words matrix. Give it when the training data may miss
        the last ids of the vocabulary.
    pad_value : int, float or None, default=None
        For ``X`` given as a 2-D array: the value that pads documents shorter than the row
        (it must come after the words). ``None``: every entry is a word. Ignored otherwise.
    bag_order : {"random", "sorted"}, default="random"
        How a bag of words (a sparse count matrix, e.g. from
        :class:`~sklearn.feature_extraction.text.CountVectorizer`) becomes a sequence. Each
        bag is expanded into its words, every id repeated by its count. Training reads them
        in a fresh random order at every pass (``"random"``, the paper's choice: the model
        learns every order) or in ascending id order (``"sorted"``). Scoring a bag always
        reads the ascending order, so its score is deterministic; see Notes for what it means.
    batch_size : int or "auto", default="auto"
        Documents per minibatch; ``"auto"`` is ``min(200, n_documents)``.
    learning_rate_init : float, default=1e-3
        Adam's step size.
    max_iter : int, default=50
        Number of epochs.
    alpha : float, default=0.0
        L2 penalty (Adam's weight decay).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the documents and stop when their NLL has not
        improved by ``tol`` for ``n_iter_no_change`` epochs; the best weights are restored.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
        In nats per document.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, minibatch shuffling, the orders of bags, the validation split,
        and :meth:`sample` when it is given no ``random_state``. The global RNGs are left
        untouched.
    verbose : int, default=0
        1: a progress bar over epochs; 2: skorch's epoch table.
    device : str, default="auto"
        Torch device; ``"auto"`` is CUDA when available.

    Attributes
    ----------
    vocabulary_size_ : int
        :math:`V` of the fitted model.
    tree_children_ : ndarray of shape (V - 1, 2) or None
        The tree of ``output="tree"`` (see :func:`balanced_tree`); None for the softmax.
    net_ : skorch.NeuralNet
        The trained net; ``net_.module_`` is the :class:`DocNADENetwork`.
    history_ : pandas.DataFrame
        Per-epoch train (and validation) NLL, nats per document.
    n_iter_ : int
        Epochs run.

    See Also
    --------
    skar.models.nade.NADEDensity : the same running-sum hidden layer, over table columns.
    skar.datasets.words_to_ids : texts to word-id sequences with an ``<unk>`` id.

    Notes
    -----
    **Inputs.** ``X`` is one of: a list of documents, each a sequence of non-negative integer
    ids (lengths may differ; an empty document has probability 1); a 2-D integer array, one
    document per row, padded with ``pad_value``; or a scipy sparse matrix of word counts
    (rows documents, columns ids), read as bags. Floats that are whole numbers are accepted
    as ids.

    **Length.** DocNADE models the words of a document *given its length*: for every
    :math:`D`, the probabilities of all :math:`V^D` documents of length :math:`D` sum to 1.
    :meth:`sample` therefore takes the length.

    **Unseen ids.** A document holding an id ``>= vocabulary_size_`` has probability 0 under
    the model: :meth:`score_samples` returns ``-inf`` for it (map rare and unseen words to an
    ``<unk>`` id, as :func:`skar.datasets.words_to_ids` does, to avoid that). Negative or
    fractional ids are errors.

    **Bags.** A bag's score is :math:`\\log p` of the sequence of its words in ascending id
    order. The bag itself has the probability of all its distinct orders together, so the
    score is a lower bound on the log-probability of the bag; with ``bag_order="sorted"`` the
    model is trained to put its mass on sorted sequences and the bound is tight when it does.

    **Perplexity.** :meth:`perplexity` is the paper's
    :math:`\\exp(-\\frac{1}{N}\\sum_t \\frac{1}{|v_t|} \\log p(v_t))` (mean per-word NLL of each
    document, averaged over documents), or, with ``average="words"``, the corpus-level
    :math:`\\exp(-\\sum_t \\log p(v_t) / \\sum_t |v_t|)` of language models.

    Examples
    --------
    >>> from skar.models.docnade import DocNADEDensity
    >>> docs = [[0, 1, 2], [2, 2, 1, 0], [1, 0], [0, 1, 2, 2]] * 10
    >>> model = DocNADEDensity(n_hidden=8, max_iter=5, random_state=0).fit(docs)
    >>> model.score_samples([[0, 1, 2], [2, 1]]).shape
    (2,)
    >>> model.sample(3, length=5, random_state=0).shape
    (3, 5)
    """

    _parameter_constraints: dict = {
        "n_hidden": [Interval(Integral, 1, None, closed="left")],
        "output": [StrOptions({"softmax", "tree"})],
        "tree": [StrOptions({"balanced", "frequency"})],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "vocabulary_size": [Interval(Integral, 1, None, closed="left"), None],
        "pad_value": [Real, None],
        "bag_order": [StrOptions({"random", "sorted"})],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str, torch.device],
    }

    def __init__(
        self,
        n_hidden: int = 50,
        *,
        output: str = "softmax",
        tree: str = "balanced",
        activation: str = "sigmoid",
        vocabulary_size: int | None = None,
        pad_value: float | None = None,
        bag_order: str = "random",
        batch_size: int | str = "auto",
        learning_rate_init: float = 1e-3,
        max_iter: int = 50,
        alpha: float = 0.0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        random_state: Any = None,
        verbose: int = 0,
        device: str = "auto",
    ) -> None:
        self.n_hidden = n_hidden
        self.output = output
        self.tree = tree
        self.activation = activation
        self.vocabulary_size = vocabulary_size
        self.pad_value = pad_value
        self.bag_order = bag_order
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.alpha = alpha
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> DocNADEDensity:
        """Fit by maximum likelihood.

        Parameters
        ----------
        X : list of sequences of int, ndarray of shape (n_documents, max_length), or sparse \
matrix of shape (n_documents, vocabulary_size)
            Documents as word-id sequences, a padded 2-D array (see ``pad_value``), or bags of
            words (see ``bag_order``).
        y : None
            Ignored.
        sample_weight : array-like of shape (n_documents,), default=None
            Non-negative document weights; the loss is the weighted mean NLL per document.

        Returns
        -------
        self : DocNADEDensity
        """
        saved = dict(self.__dict__)
        try:
            self._fit(X, sample_weight)
        except BaseException:
            # A failed fit leaves a previously fitted estimator exactly as it was.
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        return self

    def _fit(self, X: Any, sample_weight: Any) -> None:
        ids, lengths, is_bag = _documents(X, self.pad_value)
        n = ids.shape[0]
        V = int(X.shape[1]) if is_bag else int(ids.max()) + 1
        if self.vocabulary_size is not None:
            if is_bag and V != self.vocabulary_size:
                raise ValueError(
                    f"the bag-of-words matrix has {V} columns, but vocabulary_size="
                    f"{self.vocabulary_size}; they must agree (or set vocabulary_size=None)")
            if ids.max() >= self.vocabulary_size:
                r, c = np.argwhere(ids >= self.vocabulary_size)[0]
                raise ValueError(
                    f"document {r} of X holds the id {ids[r, c].item()} at position {c}, but "
                    f"vocabulary_size={self.vocabulary_size} allows ids 0.."
                    f"{self.vocabulary_size - 1}")
            V = int(self.vocabulary_size)
        if not lengths.sum() > 0:
            raise ValueError("every document of X is empty; there are no words to fit")
        # scikit-learn's check also rejects weights that are all zero.
        w = _check_sample_weight(sample_weight, lengths, dtype=np.float64,
                                 ensure_non_negative=True)
        if self.early_stopping and n - math.ceil(n * self.validation_fraction) < 1:
            raise ValueError(
                f"early_stopping=True holds out validation_fraction={self.validation_fraction}"
                f" of the documents, which leaves none to train on with {n} documents; pass "
                "more documents or set early_stopping=False")
        children = None
        if self.output == "tree":
            if self.tree == "balanced":
                children = balanced_tree(V)
            else:
                valid = np.arange(ids.shape[1]) < lengths[:, None]
                children = frequency_tree(np.bincount(ids[valid], minlength=V))
        batch_size = auto_batch_size(n) if self.batch_size == "auto" else int(self.batch_size)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        device = resolve_device(self.device)
        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            # Seeds initialisation, shuffling and the orders of bags; the caller's global RNG
            # state is restored when the block exits.
            torch.manual_seed(seed)
            module = DocNADENetwork(V, self.n_hidden, self.activation, children,
                                    shuffle_words=is_bag and self.bag_order == "random")
            net = build_net(
                module,
                log_jacobian=0.0,
                learning_rate_init=self.learning_rate_init,
                alpha=self.alpha,
                max_iter=self.max_iter,
                batch_size=batch_size,
                early_stopping=self.early_stopping,
                validation_fraction=self.validation_fraction,
                n_iter_no_change=self.n_iter_no_change,
                tol=self.tol,
                seed=seed,
                verbose=self.verbose,
                device=device,
            )
            # Weights scaled to mean 1 in float64 before the float32 cast (the loss is
            # scale-free), so tiny or huge weights neither underflow nor overflow.
            w32 = (w / w.mean()).astype(np.float32)
            net.fit({"x": ids, "lengths": lengths, "sample_weight": w32}, None)
        net.module_.eval()
        self.vocabulary_size_ = V
        self.tree_children_ = children
        self.net_ = net
        self.history_ = history_frame(net)
        self.n_iter_ = len(net.history)
        self._inference_batch_size = max(batch_size, 1024)

    # ------------------------------------------------------------------ scoring
    def _per_word(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(log p(v_i | v_<i)`` (n, L) with -inf at unseen ids, ``lengths``)."""
        check_is_fitted(self)
        ids, lengths, _ = _documents(X, self.pad_value)
        unseen = ids >= self.vocabulary_size_
        # Unseen ids are scored as id 0 and then set to -inf (their probability is 0).
        ids = np.where(unseen, 0, ids)
        out = np.zeros(ids.shape, np.float64)
        module = self.net_.module_
        module.eval()
        bs = self._inference_batch_size
        with torch.no_grad():
            for start in range(0, ids.shape[0], bs):
                lb = torch.as_tensor(lengths[start : start + bs], device=self.net_.device)
                L = max(int(lb.max()), 1)
                xb = torch.as_tensor(ids[start : start + bs, :L], device=self.net_.device)
                out[start : start + bs, :L] = (
                    module.log_prob_per_word(xb, lb).double().cpu().numpy())
        # An unseen id has probability 0 at its position; the words after it are scored as if
        # it were id 0, which does not matter once the document's total is -inf.
        valid = np.arange(ids.shape[1]) < lengths[:, None]
        out[unseen & valid] = -np.inf
        return out, lengths

    def score_samples(self, X: Any) -> np.ndarray:
        """Log-probability of every document, natural log.

        Parameters
        ----------
        X : list of sequences of int, 2-D int array or sparse count matrix
            As in :meth:`fit`.

        Returns
        -------
        log_prob : ndarray of shape (n_documents,), float64
            :math:`\\log p(v) = \\sum_i \\log p(v_i \\mid v_{<i})` given the document's length;
            ``-inf`` for a document holding an id ``>= vocabulary_size_``; 0 for an empty one.
        """
        per_word, _ = self._per_word(X)
        return per_word.sum(1)

    def score_samples_per_word(self, X: Any) -> list[np.ndarray]:
        """Every word's conditional log-probability :math:`\\log p(v_i \\mid v_{<i})`.

        Parameters
        ----------
        X : list of sequences of int, 2-D int array or sparse count matrix
            As in :meth:`fit`.

        Returns
        -------
        list of ndarray
            One float64 array per document, of its length; each sums to
            :meth:`score_samples`. A surprising word stands out with a very negative entry.
        """
        per_word, lengths = self._per_word(X)
        return [per_word[i, : lengths[i]] for i in range(len(lengths))]

    def score(self, X: Any, y: Any = None) -> float:
        """Total log-likelihood of the documents ``X`` (higher is better).

        Parameters
        ----------
        X : list of sequences of int, 2-D int array or sparse count matrix
        y : None
            Ignored.

        Returns
        -------
        float
            :math:`\\sum_t \\log p(v_t)`.
        """
        return float(np.sum(self.score_samples(X)))

    def perplexity(self, X: Any, average: str = "documents") -> float:
        """Perplexity of the documents ``X`` (lower is better).

        Parameters
        ----------
        X : list of sequences of int, 2-D int array or sparse count matrix
        average : {"documents", "words"}, default="documents"
            ``"documents"``: the paper's :math:`\\exp\\big(-\\frac{1}{N}\\sum_t
            \\frac{1}{|v_t|}\\log p(v_t)\\big)`, every document's mean per-word NLL averaged
            over the (non-empty) documents; ``"words"``: the corpus perplexity
            :math:`\\exp(-\\sum_t \\log p(v_t) / \\sum_t |v_t|)`, every word weighing the same.

        Returns
        -------
        float
            ``inf`` when a document holds an unseen id.
        """
        if average not in ("documents", "words"):
            raise ValueError(f"average must be 'documents' or 'words'; got {average!r}")
        per_word, lengths = self._per_word(X)
        total = per_word.sum(1)
        if not lengths.sum() > 0:
            raise ValueError("every document of X is empty; perplexity needs words")
        if average == "words":
            return float(np.exp(-total.sum() / lengths.sum()))
        keep = lengths > 0
        return float(np.exp(-np.mean(total[keep] / lengths[keep])))

    # ------------------------------------------------------------------ sampling
    def sample(self, n_samples: int = 1, length: int = 10, random_state: Any = None) -> np.ndarray:
        """Draw documents of ``length`` words from the fitted model.

        Parameters
        ----------
        n_samples : int, default=1
            Number of documents.
        length : int, default=10
            Words per document (the model is of documents given their length).
        random_state : int, RandomState instance or None, default=None
            Seeds the draw. ``None`` uses the estimator's ``random_state``, so an estimator
            built with an integer ``random_state`` samples the same documents every call.

        Returns
        -------
        ndarray of shape (n_samples, length), int64
            Word ids in ``0..vocabulary_size_-1``.
        """
        check_is_fitted(self)
        for name, value, low in (("n_samples", n_samples, 1), ("length", length, 0)):
            if (isinstance(value, (bool, np.bool_))
                    or not isinstance(value, (Integral, np.integer)) or value < low):
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        rs = self.random_state if random_state is None else random_state
        seed = int(check_random_state(rs).randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(seed)
        module = self.net_.module_
        module.eval()
        chunks = []
        for start in range(0, n_samples, self._inference_batch_size):
            m = min(self._inference_batch_size, n_samples - start)
            chunks.append(module.sample(m, int(length), generator).cpu().numpy())
        return np.concatenate(chunks).astype(np.int64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.input_tags.allow_nan = False
        tags.target_tags.required = False
        tags.non_deterministic = False
        return tags
