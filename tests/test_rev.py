"""Representative volume (reports.rev): the spread of sub-volume properties against their side."""

import numpy as np
import pytest

from reports.rev import RevCurve, rev_curve


def test_fraction_spread_of_independent_voxels_follows_the_binomial_law():
    # iid voxels: the fraction of an s³ piece has std sqrt(φ(1 − φ) / s³) exactly in expectation
    phi = 0.3
    volume = (np.random.default_rng(7).random((96, 96, 96)) < phi).astype(np.uint8)
    curve = rev_curve(volume, (4, 8, 16), max_pieces=512)
    assert curve.n == (512, 512, 216)
    for size, n, std in zip(curve.sizes, curve.n, curve.std, strict=True):
        expected = np.sqrt(phi * (1 - phi) / size**3)
        # the sample std of n values is within ~4/sqrt(2(n−1)) of the truth with overwhelming probability
        assert std == pytest.approx(expected, rel=4 / np.sqrt(2 * (n - 1)))
    assert curve.cv[0] > curve.cv[1] > curve.cv[2]


def test_conductivity_of_a_layered_volume_does_not_vary_between_pieces():
    # layers normal to x, conducting in series along... axis 0 runs along the layers: parallel rule, exact
    volume = np.zeros((16, 16, 16), dtype=np.uint8)
    volume[:, :, ::4] = 1
    curve = rev_curve(volume, (8,), prop="conductivity", conductivities=(1.0, 2.0))
    assert curve.n == (8,)
    assert curve.mean[0] == pytest.approx(0.25 * 2.0 + 0.75 * 1.0, rel=1e-6)  # solver tolerance
    assert curve.std[0] == pytest.approx(0.0, abs=1e-6)
    assert RevCurve.from_dict(curve.to_dict()) == curve


def test_conductivity_pieces_are_solved_on_the_given_device(monkeypatch):
    import physics.conductivity

    devices, solve = [], physics.conductivity.effective_conductivity

    def recorded(*args, **kwargs):
        devices.append(kwargs.get("device"))
        return solve(*args, **kwargs)

    monkeypatch.setattr(physics.conductivity, "effective_conductivity", recorded)
    volume = np.zeros((16, 16, 16), dtype=np.uint8)
    volume[:, :, ::4] = 1
    rev_curve(volume, (8,), prop="conductivity", device="cpu")
    assert devices == ["cpu"] * 8


def test_unknown_property_is_refused():
    with pytest.raises(ValueError, match="prop must be"):
        rev_curve(np.zeros((8, 8, 8), dtype=np.uint8), (4,), prop="permeability")
