"""The shared network blocks of skar.nn, checked against plain torch computations."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skar.base import make_orderings
from skar.nn import (
    ColumnHeads,
    MaskedConv2d,
    MaskedLinear,
    OrderingEnsemble,
    shift_right,
)


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


def test_shift_right_puts_the_start_first_and_drops_the_last_position():
    x = torch.arange(12.0).view(2, 3, 2)
    start = torch.tensor([-1.0, -2.0])
    out = shift_right(x, start)
    np.testing.assert_array_equal(out[:, 0].numpy(), [[-1, -2], [-1, -2]])
    np.testing.assert_array_equal(out[:, 1:].numpy(), x[:, :2].numpy())
    codes = torch.tensor([[3, 1, 2]])
    np.testing.assert_array_equal(shift_right(codes, 9).numpy(), [[9, 3, 1]])
