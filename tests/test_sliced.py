"""Sliced-Wasserstein distance (Eq. 16–18): invariants, the exact 1D case, and POT as an independent reference."""

import numpy as np
import pytest
import scipy.stats
import torch

from swnn import sliced
from swnn.sliced import random_directions, sliced_wasserstein, wasserstein_1d


def _points(n, d, seed):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, d))).double()


def test_directions_are_unit_and_seeded():
    a = random_directions(49, 64, generator=torch.Generator().manual_seed(3))
    b = random_directions(49, 64, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    # float32 normalisation: norms are 1 to a few ulps
    assert torch.allclose(a.norm(dim=0), torch.ones(64), atol=1e-6)


@pytest.mark.parametrize("p", [1, 2])
def test_identical_sets_give_zero_and_order_does_not_matter(p):
    x = _points(300, 5, 0)
    d = random_directions(5, 32, generator=torch.Generator().manual_seed(1)).double()
    assert sliced_wasserstein(x, x, d, p=p).item() == 0.0
    shuffled = x[torch.randperm(300, generator=torch.Generator().manual_seed(2))]
    assert sliced_wasserstein(x, shuffled, d, p=p).item() == 0.0


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("m", [200, 317])
def test_symmetric(p, m):
    x, y = _points(200, 4, 0), _points(m, 4, 1) + 0.5
    d = random_directions(4, 16, generator=torch.Generator().manual_seed(1)).double()
    # exact arithmetic on the same breakpoints: equal to round-off
    assert sliced_wasserstein(x, y, d, p=p).item() == pytest.approx(
        sliced_wasserstein(y, x, d, p=p).item(), rel=1e-12
    )


@pytest.mark.parametrize("n, m", [(100, 100), (100, 37), (53, 240)])
def test_one_dimension_equals_exact_wasserstein(n, m):
    rng = np.random.default_rng(5)
    u, v = rng.normal(size=n), rng.gamma(2.0, size=m)
    w1 = wasserstein_1d(torch.from_numpy(u)[None], torch.from_numpy(v)[None], p=1).item()
    # scipy integrates |F_u − F_v| exactly; both are exact, so they agree to round-off
    assert w1 == pytest.approx(scipy.stats.wasserstein_distance(u, v), rel=1e-10)
    d = torch.ones(1, 1, dtype=torch.float64)
    sw = sliced_wasserstein(torch.from_numpy(u)[:, None], torch.from_numpy(v)[:, None], d, p=1).item()
    assert sw == pytest.approx(w1, rel=1e-12)


def test_one_dimension_p2_closed_form():
    # Two shifted copies of one sample: W_2² equals the squared shift exactly.
    u = torch.linspace(0, 1, 101, dtype=torch.float64)[None]
    assert wasserstein_1d(u, u + 0.25, p=2).item() == pytest.approx(0.0625, rel=1e-12)


@pytest.mark.parametrize("p", [1, 2])
def test_matches_pot_on_same_projections(p):
    ot = pytest.importorskip("ot", reason="POT (test extra) is the independent reference")
    x, y = _points(150, 6, 0), _points(150, 6, 1) * 1.3
    d = random_directions(6, 40, generator=torch.Generator().manual_seed(9)).double()
    ours = sliced_wasserstein(x, y, d, p=p).item()
    theirs = ot.sliced_wasserstein_distance(x.numpy(), y.numpy(), projections=d.numpy(), p=p)
    # same projections, both exact for equal counts: agreement to round-off
    assert ours == pytest.approx(float(theirs), rel=1e-10)


def test_gradient_flows_to_x():
    x = _points(64, 3, 0).requires_grad_(True)
    y = _points(90, 3, 1)
    d = random_directions(3, 8, generator=torch.Generator().manual_seed(0)).double()
    sliced_wasserstein(x, y, d, p=2, root=False).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bad_shapes_are_clear():
    with pytest.raises(ValueError, match="directions"):
        sliced_wasserstein(torch.zeros(5, 3), torch.zeros(5, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        wasserstein_1d(torch.zeros(1, 3), torch.zeros(1, 3), p=3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sort_rows_is_torch_sort_with_its_gradient(dtype):
    # large enough to take the numpy path; distinct values (permutations), so the permutation and hence the
    # gradient of the gather are unique and must equal torch.sort's exactly
    g = torch.Generator().manual_seed(0)
    rows = torch.stack([torch.randperm(256, generator=g) for _ in range(300)]).to(dtype)
    assert rows.numel() >= sliced._NUMPY_SORT_MIN
    x = rows.clone().requires_grad_()
    weights = torch.randn(rows.shape, generator=g).to(dtype)
    ours, theirs = sliced.sort_rows(x), torch.sort(x, dim=-1).values
    assert ours.dtype == dtype and torch.equal(ours, theirs)
    (grad_ours,) = torch.autograd.grad((ours * weights).sum(), x)
    (grad_theirs,) = torch.autograd.grad((theirs * weights).sum(), x)
    assert torch.equal(grad_ours, grad_theirs)
    with torch.no_grad():
        assert torch.equal(sliced.sort_rows(x), theirs)
