"""The truth as a distribution (reports.truth): plans of pieces, and further draws of the built-ins."""

import inspect

import numpy as np
import pytest

from reports.truth import DRAW_SEED, plan_truth, truth_pieces
from swnn import references


def _boxes(plan):
    return [tuple(slice(o, o + plan.size) for o in piece.origin) for piece in plan.pieces]


def test_disjoint_pieces_tile_the_volume_without_overlap():
    plan = plan_truth((128, 96, 64), 32, 24)
    assert plan.source == "volume" and plan.overlap == 0.0
    assert plan.n == 4 * 3 * 2  # every disjoint tile
    covered = np.zeros((128, 96, 64), dtype=int)
    for box in _boxes(plan):
        covered[box] += 1
    assert covered.max() == 1 and covered.sum() == plan.n * 32**3


def test_more_pieces_than_fit_overlap_by_the_stated_amount():
    plan = plan_truth((128, 128, 128), 64, 20)
    assert plan.n == 20
    assert plan.overlap == pytest.approx(0.5)  # stride 32: 3 starts per axis, 27 ≥ 20
    assert len({p.origin for p in plan.pieces}) == 20
    assert "overlapping by 50%" in plan.description()


def test_fewer_pieces_than_fit_are_spread_and_depend_on_the_seed():
    a, b = plan_truth((400,) * 3, 64, 30, seed=0), plan_truth((400,) * 3, 64, 30, seed=1)
    assert a.n == b.n == 30 and a.overlap == 0.0
    assert [p.origin for p in a.pieces] != [p.origin for p in b.pieces]
    assert max(p.origin[0] for p in a.pieces) >= 256  # not only the first corner's tiles


def test_pieces_are_the_volume_cut_at_their_origin():
    volume = np.random.default_rng(3).integers(0, 2, (40, 40, 40), dtype=np.uint8)
    plan = plan_truth(volume.shape, 16, 5)
    for piece, array in truth_pieces(plan, volume):
        z, y, x = piece.origin
        np.testing.assert_array_equal(array, volume[z : z + 16, y : y + 16, x : x + 16])
        assert array.flags.c_contiguous and array.dtype == np.uint8


def test_a_builtin_draw_with_its_own_seed_is_the_builtin_volume():
    # exact invariant: the further draws come from the very generator of the built-in volume
    own_seed = inspect.signature(references._labyrinth).parameters["seed"].default
    np.testing.assert_array_equal(
        references.builtin_realization("labyrinth", seed=own_seed), references.generate_builtin("labyrinth")
    )


def test_builtin_pieces_come_from_independent_draws_of_twice_their_side():
    plan = plan_truth((128,) * 3, 16, 12, builtin="labyrinth", seed=2)
    assert plan.source == "draws" and plan.draw_side == 32
    draws = [p.draw for p in plan.pieces]
    assert draws[:8] == [DRAW_SEED + 2000] * 8 and draws[8:] == [DRAW_SEED + 2001] * 4
    pieces = list(truth_pieces(plan, builtin="labyrinth"))
    first = references.builtin_realization("labyrinth", seed=DRAW_SEED + 2000, shape=(32, 32, 32))
    np.testing.assert_array_equal(pieces[1][1], first[tuple(slice(o, o + 16) for o in pieces[1][0].origin)])
    # a draw's fraction is exact over the draw, so its pieces' mean is the built-in's fraction
    fractions = [array.mean() for _, array in pieces[:8]]
    assert np.mean(fractions) == pytest.approx(0.40, abs=1 / 32**3)
    assert np.std(fractions) > 0


def test_bad_plans_say_what_is_wrong():
    with pytest.raises(ValueError, match="count must be a positive integer"):
        plan_truth((64, 64, 64), 32, 0)
    with pytest.raises(ValueError, match="exceeds the truth's smallest side"):
        plan_truth((64, 64, 16), 32, 2)
    with pytest.raises(ValueError, match="3D volume"):
        plan_truth((64, 64), 32, 2)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        references.builtin_realization("labyrinth", seed=-1)
