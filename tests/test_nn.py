"""The shared network blocks of skar.nn, checked against plain torch computations."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from skar.base import DensityModule, make_orderings, sample_plain
from skar.distributions import Bernoulli, Categorical, ColumnConditionals, Mixture
from skar.nn import (
    ColumnHeads,
    MaskedConv2d,
    MaskedLinear,
    OrderingEnsemble,
    ValueEmbedding,
    sample_stepwise,
    shift_right,
    tie_keys_of,
)
from skar.schema import TabularSchema


def test_masked_linear_uses_the_mask_of_the_member():
    torch.manual_seed(0)
    masks = np.random.default_rng(0).random((3, 4, 5)) < 0.5
    layer = MaskedLinear(5, 4, masks)
    x = torch.randn(7, 5)
    for k in range(3):
        w = layer.weight.detach().numpy() * masks[k]
        want = x.numpy() @ w.T + layer.bias.detach().numpy()
        np.testing.assert_allclose(layer(x, k).detach().numpy(), want, rtol=1e-6, atol=1e-6)
    # A masked-out weight has no influence: the output's gradient to it is exactly zero.
    layer(x, 1).sum().backward()
    assert (layer.weight.grad.numpy()[~masks[1]] == 0).all()


def test_masked_linear_rejects_masks_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"expected \(n_members, 4, 5\)"):
        MaskedLinear(5, 4, np.ones((2, 5, 4)))


def test_masked_conv2d_convolves_with_the_masked_kernel():
    torch.manual_seed(0)
    mask = torch.ones(3, 2, 3, 3)
    mask[:, :, 1, 1:] = 0.0
    mask[:, :, 2] = 0.0
    conv = MaskedConv2d(2, 3, 3, mask, padding=1)
    x = torch.randn(4, 2, 5, 5)
    want = F.conv2d(x, conv.weight * mask, conv.bias, padding=1)
    torch.testing.assert_close(conv(x), want, rtol=0, atol=0)
    # Output pixel (2, 2) never sees input pixel (2, 2) nor anything after it.
    x.requires_grad_(True)
    conv(x)[:, :, 2, 2].sum().backward()
    assert (x.grad[:, :, 2, 2:] == 0).all() and (x.grad[:, :, 3:] == 0).all()


def test_ordering_ensemble_positions_invert_the_orderings_and_draws_are_uniform():
    rng = np.random.default_rng(0)
    ens = OrderingEnsemble(make_orderings(6, 4, "random", rng, distinct=True), rng)
    for k in range(4):
        o, pos = ens.ordering(k).numpy(), ens.positions[k].numpy()
        np.testing.assert_array_equal(pos[o], np.arange(6))
        assert ens.host_orderings[k] == o.tolist()
    draws = np.array([ens.draw() for _ in range(4000)])
    counts = np.bincount(draws, minlength=4)
    # chi-square with 3 degrees of freedom, 99.9% quantile 16.27
    assert (((counts - 1000) ** 2) / 1000).sum() < 16.27


def test_ordering_ensemble_pickles_with_its_draw_stream():
    rng = np.random.default_rng(1)
    ens = OrderingEnsemble(make_orderings(5, 3, "random", rng), rng)
    copy = pickle.loads(pickle.dumps(ens))
    assert [ens.draw() for _ in range(20)] == [copy.draw() for _ in range(20)]


def test_single_member_ensemble_draws_zero_and_an_ensemble_without_rng_refuses():
    assert OrderingEnsemble(np.arange(4)[None], None).draw() == 0
    with pytest.raises(RuntimeError, match="without an rng"):
        OrderingEnsemble(np.stack([np.arange(4)] * 2), None).draw()


@pytest.mark.parametrize("exact", [True, False])
def test_column_heads_give_each_column_its_own_affine_map(exact):
    torch.manual_seed(0)
    sizes = [1, 3, 2, 3]
    heads = ColumnHeads(sizes, 5, exact=exact)
    with torch.no_grad():
        heads.bias.normal_()
    h = torch.randn(4, 6, 5)  # (D, B, H): column d's hidden vectors
    flat = heads.flat(heads(h, torch.arange(4)).transpose(0, 1))  # (B, 9)
    want = np.concatenate([
        h[d].numpy() @ heads.weight[d, :s].detach().numpy().T + heads.bias[d, :s].detach().numpy()
        for d, s in enumerate(sizes)
    ], axis=1)
    np.testing.assert_allclose(flat.detach().numpy(), want, rtol=1e-5, atol=1e-5)
    for d, s in enumerate(sizes):
        np.testing.assert_allclose(heads.column(h[d], d).detach().numpy(),
                                   want[:, sum(sizes[:d]) : sum(sizes[:d]) + s], rtol=1e-5,
                                   atol=1e-5)


def test_column_heads_normal_init_and_marginal_start():
    torch.manual_seed(0)
    heads = ColumnHeads([2, 1, 2], 400, init=False)
    heads.normal_(std=0.5)
    w = heads.weight.detach()
    assert (w[1, 1:] == 0).all()  # padding stays zero
    assert abs(float(w[[0, 2]].std()) - 0.5) < 0.02
    theta0 = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    independent = torch.tensor([False, False, True, True, True])
    heads.init_marginals(theta0, independent)
    np.testing.assert_array_equal(heads.bias.detach().numpy(), [[1, 2], [3, 0], [4, 5]])
    assert (heads.weight[1:, :, :].detach()[[0, 1, 1], [0, 0, 1]] == 0).all()
    assert (heads.weight[0].detach() != 0).all()


# Columns 0, 2 and 5 share key "a" (sizes 2, 2, 3: head 0 serves 0 and 2, column 5 gets its
# own head of size 3); columns 1 and 4 share "b"; column 3 is alone.
TIED_SIZES = [2, 3, 2, 1, 3, 3]
TIED_KEYS = ["a", "b", "a", "c", "b", "a"]


def _untied_copy(tied):
    """Separate heads holding copies of the tied heads' weights, column by column."""
    untied = ColumnHeads(TIED_SIZES, tied.weight.shape[-1], exact=tied.exact)
    with torch.no_grad():
        untied.weight.copy_(tied.weight[tied.head_index])
        untied.bias.copy_(tied.bias[tied.head_index])
    return untied


@pytest.mark.parametrize("exact", [True, False])
def test_tied_heads_equal_separate_heads_with_copied_weights(exact):
    torch.manual_seed(0)
    tied = ColumnHeads(TIED_SIZES, 5, exact=exact, tie_keys=TIED_KEYS)
    assert tied.n_heads == 4 and tied.weight.shape == (4, 3, 5)
    assert tied.head_index.tolist() == [0, 1, 0, 2, 1, 3]
    with torch.no_grad():
        tied.bias.normal_()
    untied = _untied_copy(tied)
    h = torch.randn(6, 7, 5)
    torch.testing.assert_close(tied.all_columns(h.transpose(0, 1)),
                               untied.all_columns(h.transpose(0, 1)), rtol=0, atol=0)
    for d in range(6):
        torch.testing.assert_close(tied.column(h[d], d), untied.column(h[d], d), rtol=0, atol=0)
    # A shared head learns from every column it serves: its gradient is the sum of theirs.
    tied.all_columns(h.transpose(0, 1)).square().sum().backward()
    untied.all_columns(h.transpose(0, 1)).square().sum().backward()
    torch.testing.assert_close(tied.weight.grad[0], untied.weight.grad[0] + untied.weight.grad[2])
    torch.testing.assert_close(tied.bias.grad[1], untied.bias.grad[1] + untied.bias.grad[4])


def test_one_shared_head_is_one_matmul_and_equals_separate_heads():
    torch.manual_seed(0)
    tied = ColumnHeads([4] * 5, 6, exact=False, tie_keys=[0] * 5)
    assert tied.n_heads == 1
    untied = ColumnHeads([4] * 5, 6, exact=False)
    with torch.no_grad():
        tied.bias.normal_()
        untied.weight.copy_(tied.weight.expand(5, 4, 6))
        untied.bias.copy_(tied.bias.expand(5, 4))
    h = torch.randn(3, 5, 6)  # (B, D, H)
    want = (h.numpy() @ tied.weight[0].detach().numpy().T + tied.bias[0].detach().numpy())
    np.testing.assert_allclose(tied.all_columns(h).detach().numpy(), want.reshape(3, 20),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tied.all_columns(h).detach().numpy(),
                               untied.all_columns(h).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_tied_heads_draw_per_head_and_refuse_a_marginal_start():
    torch.manual_seed(0)
    tied = ColumnHeads(TIED_SIZES, 300, init=False, tie_keys=TIED_KEYS)
    tied.uniform_(0.5)
    w = tied.weight.detach()
    assert (w[0, 2:] == 0).all() and (w[2, 1:] == 0).all()  # padding stays zero
    real = torch.cat([w[0, :2].flatten(), w[1].flatten(), w[2, :1].flatten(), w[3].flatten()])
    assert real.abs().max() <= 0.5
    assert abs(float(real.var()) - 0.25 / 3) < 0.005  # U(-a, a) has variance a^2 / 3
    with pytest.raises(ValueError, match="columns 0 and 1 share one output head"):
        tied.init_marginals(torch.zeros(sum(TIED_SIZES)),
                            torch.zeros(sum(TIED_SIZES), dtype=torch.bool))
    with pytest.raises(ValueError, match="tie_keys has 2 entries for 6 columns"):
        ColumnHeads(TIED_SIZES, 4, tie_keys=["a", "b"])


def test_untied_keys_leave_column_heads_as_without_keys():
    """Distinct keys are no tie: same draws, same layout, same outputs as tie_keys=None."""
    torch.manual_seed(3)
    plain = ColumnHeads([1, 3, 2], 4)
    torch.manual_seed(3)
    keyed = ColumnHeads([1, 3, 2], 4, tie_keys=["x", "y", "z"])
    assert torch.equal(plain.weight, keyed.weight)
    h = torch.randn(3, 2, 4)
    assert torch.equal(plain(h, torch.arange(3)), keyed(h, torch.arange(3)))


VALUE_KINDS = ["binary", "categorical", "continuous", "categorical", "continuous", "binary"]
VALUE_SIZES = [1, 3, 1, 3, 1, 1]


def _value_rows():
    rng = np.random.RandomState(0)
    x = np.column_stack([rng.randint(0, 2, 9), rng.randint(0, 3, 9), rng.normal(size=9),
                         rng.randint(0, 3, 9), rng.normal(size=9), rng.randint(0, 2, 9)])
    return torch.as_tensor(x, dtype=torch.float32)


@pytest.mark.parametrize("tie_keys", [None, ["b", "c", "r", "c", "r", "b"]])
def test_value_embedding_of_one_column_is_the_slice_of_the_full_embedding(tie_keys):
    torch.manual_seed(0)
    emb = ValueEmbedding(VALUE_KINDS, VALUE_SIZES, 4, tie_keys)
    with torch.no_grad():
        emb.bias.normal_()
    x = _value_rows()
    full = emb.embed_values(x)  # (9, 6, 4)
    for d in range(6):
        torch.testing.assert_close(emb.embed_column(x[:, d], d), full[:, d], rtol=0, atol=0)
    # Independently: a code picks a table row of its column's block, a number x w + b.
    table, w, b = (p.detach().numpy() for p in (emb.table, emb.weight, emb.bias))
    blocks = [0, 2, None, 5, None, 8] if tie_keys is None else [0, 2, None, 2, None, 0]
    rows = [None, None, 0, None, 1, None] if tie_keys is None else [None, None, 0, None, 0, None]
    for d in range(6):
        v = x[:, d].numpy()
        want = (table[blocks[d] + v.astype(int)] if rows[d] is None
                else v[:, None] * w[rows[d]] + b[rows[d]])
        np.testing.assert_allclose(full[:, d].detach().numpy(), want, rtol=1e-6)
    assert emb.table.shape[0] == (10 if tie_keys is None else 5)


def test_value_embedding_refuses_tied_columns_of_different_kinds_and_draws_nothing_uninit():
    with pytest.raises(ValueError, match="columns 1 and 3 share the tie key 'k'"):
        ValueEmbedding(["binary", "categorical", "binary", "categorical"], [1, 3, 1, 4], 2,
                       tie_keys=[0, "k", 0, "k"])
    state = torch.random.get_rng_state()
    emb = ValueEmbedding(VALUE_KINDS, VALUE_SIZES, 4, init=False)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not emb.table.any() and not emb.weight.any()


def test_tie_keys_of_a_schema_tie_one_kind_and_one_category_list():
    frame = pd.DataFrame({"a": list("xyzx"), "b": list("zyxx"), "c": list("xyxy"),
                          "f": [True, False, True, True], "g": [False, True, True, False],
                          "v": [0.1, 2.3, -1.7, 0.4], "w": [3.1, 0.2, 1.9, -0.8],
                          "k": [1, 5, 2, 9], "m": [3, 0, 7, 4], "h": [0.5, 1.0, 2.5, 1.5]})
    schema = TabularSchema.from_data(frame, quantization={"k": 1, "m": 1, "h": 0.5})
    assert schema.feature_types[5:] == ["continuous"] * 2 + ["quantized"] * 3
    keys = tie_keys_of(schema)
    assert keys[0] == keys[1] != keys[2]  # {x, y, z} twice, then {x, y}
    assert keys[3] == keys[4] and keys[5] == keys[6] and keys[3] != keys[5]
    assert keys[7] == keys[8] != keys[9] and keys[7] != keys[5]  # steps 1, 1, 0.5


def test_shift_right_puts_the_start_first_and_drops_the_last_position():
    x = torch.arange(12.0).view(2, 3, 2)
    start = torch.tensor([-1.0, -2.0])
    out = shift_right(x, start)
    np.testing.assert_array_equal(out[:, 0].numpy(), [[-1, -2], [-1, -2]])
    np.testing.assert_array_equal(out[:, 1:].numpy(), x[:, :2].numpy())
    codes = torch.tensor([[3, 1, 2]])
    np.testing.assert_array_equal(shift_right(codes, 9).numpy(), [[9, 3, 1]])


def test_sample_stepwise_with_a_full_pass_step_draws_what_the_plain_loop_draws():
    """Any step that returns the right parameters gives sample_plain's draws bit for bit: here
    the step is the full pass itself (two orderings, every column kind), and the state it
    threads counts the steps."""
    from skar.models.rnn import RNN

    torch.manual_seed(0)
    families = [Bernoulli(), Categorical(3), Mixture(2), Bernoulli()]
    cond = ColumnConditionals(families)
    net = RNN([1, 3, 1, 1], ["binary", "categorical", "continuous", "binary"],
              [f.n_params for f in families], hidden_size=8, n_orderings=2, order="random",
              seed=1)
    module = DensityModule(net, cond).eval()

    def step(x, i, member, state):
        assert state == i
        d = int(net.ordering(member)[i])
        return module.params(x, member)[:, cond.offsets[d] : cond.offsets[d + 1]], state + 1

    plain = sample_plain(module, 300, torch.Generator().manual_seed(4))
    stepwise = sample_stepwise(module, 300, torch.Generator().manual_seed(4),
                               lambda n, device, dtype: 0, step)
    assert torch.equal(plain, stepwise)
    assert len(set(plain[:, 1].tolist())) == 3 and plain[:, 2].std() > 0
