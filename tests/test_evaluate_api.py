"""physics.evaluate and physics.compare on evaluations: the phase rule, r_max, the JSON, an absent phase, warnings."""

import json

import numpy as np
import pytest

from physics import Evaluation, compare, describe, evaluate
from physics._validation import as_indicator, check_r_max
from physics.chords import chord_length_distribution
from physics.connectivity import connectivity
from physics.correlation import radial_two_point, two_point_probability
from physics.lineal_path import lineal_path
from physics.surface import specific_surface

DESCRIPTORS = ("fraction", "s2", "lineal_path", "chord_length", "specific_surface", "connectivity")
ADDED_KEYS = {"r_max", "notes", "warnings", "converged"}


def random_labels(shape, fraction, seed):
    return (np.random.default_rng(seed).random(shape) < fraction).astype(np.uint8)


def describe_as_before(volume, *, metrics, phase, r_max):
    """``physics.describe`` as it was before ``physics.evaluate`` (commit f734632), from the descriptor functions."""
    indicator = as_indicator(volume, phase=phase)
    if "s2" in metrics or "lineal_path" in metrics:
        r_max = check_r_max(indicator.shape, r_max, range(indicator.ndim))
    result = {"shape": [int(s) for s in indicator.shape], "phase": int(phase)}
    if "fraction" in metrics:
        result["fraction"] = int(indicator.sum()) / indicator.numel()
    if "s2" in metrics:
        result["s2"] = two_point_probability(indicator, r_max=r_max).to_dict()
        result["s2"]["radial"] = radial_two_point(indicator, r_max=r_max).to_dict()
    if "lineal_path" in metrics:
        result["lineal_path"] = lineal_path(indicator, r_max=r_max).to_dict()
    if "chord_length" in metrics:
        result["chord_length"] = chord_length_distribution(indicator).to_dict()
    if "specific_surface" in metrics:
        result["specific_surface"] = specific_surface(indicator)
    if "connectivity" in metrics:
        result["connectivity"] = connectivity(indicator).to_dict()
    return result


# --- the rule of the studied phase ------------------------------------------------------------------------


def test_phase_rule_inverse_volume_gives_identical_k_eff():
    # phase 1 of a volume and phase 0 of its inverse are the same pore space: the rule gives the solver the
    # same indicator and conductivities, so k_eff agrees to round-off (1e-12; it is in fact bit-identical)
    volume = random_labels((12, 12, 12), 0.4, seed=1)
    direct = evaluate(volume, metrics=("conductivity",), phase=1)
    inverse = evaluate(1 - volume, metrics=("conductivity",), phase=0)
    assert direct.converged and inverse.converged
    assert [r.axis for r in direct.conductivity] == [0, 1, 2]
    for a, b in zip(direct.conductivity, inverse.conductivity, strict=True):
        assert a.k_eff == pytest.approx(b.k_eff, rel=1e-12, abs=0)
        # Wiener bounds for 40 % of 0.026 in 1.4 (the studied phase is the poor conductor)
        phi = volume.mean()
        assert 1 / (phi / 0.026 + (1 - phi) / 1.4) < a.k_eff < phi * 0.026 + (1 - phi) * 1.4
    assert direct.to_dict()["conductivity"]["conductivities"] == {"phase": 0.026, "other": 1.4}


def test_phase_rule_every_other_label_is_solid():
    # three labels, phase 2 studied: labels 0 and 1 both conduct 1.4, so the rule equals the explicit
    # per-label list (1.4, 1.4, 0.026) exactly (the same conductance field on the same grid; 1e-12 is round-off)
    labels = np.random.default_rng(2).integers(0, 3, size=(10, 10, 10)).astype(np.uint8)
    rule = evaluate(labels, metrics=("conductivity",), phase=2, axes=(0,))
    explicit = evaluate(
        labels, metrics=("conductivity",), phase=2, axes=(0,), conductivities=(1.4, 1.4, 0.026)
    )
    assert rule.conductivity[0].k_eff == pytest.approx(explicit.conductivity[0].k_eff, rel=1e-12, abs=0)
    assert explicit.to_dict()["conductivity"]["conductivities"] == {"per_label": [1.4, 1.4, 0.026]}


def test_explicit_conductivities_need_one_value_per_label():
    binary = random_labels((8, 8, 8), 0.5, seed=3)
    labels3 = np.random.default_rng(3).integers(0, 3, size=(8, 8, 8)).astype(np.uint8)
    with pytest.raises(ValueError, match=r"conductivities must have exactly 3 value\(s\).*received 2"):
        evaluate(labels3, metrics=("conductivity",), conductivities=(1.4, 0.026))
    with pytest.raises(ValueError, match=r"conductivities must have exactly 2 value\(s\).*received 3"):
        evaluate(binary, metrics=("conductivity",), conductivities=(1.4, 0.026, 3.0))
    with pytest.raises(TypeError, match="conductivities must be a sequence"):
        evaluate(binary, metrics=("conductivity",), conductivities=1.4)
    # the paper's (solid 0, pore 1) given explicitly for phase 1 is the rule: the same numbers exactly
    explicit = evaluate(binary, metrics=("conductivity",), conductivities=(1.4, 0.026), axes=(1,))
    rule = evaluate(binary, metrics=("conductivity",), axes=(1,))
    assert explicit.conductivity[0].k_eff == rule.conductivity[0].k_eff


# --- r_max --------------------------------------------------------------------------------------------------


def test_adaptive_r_max_and_too_large_r_max():
    volume = random_labels((20, 20, 20), 0.3, seed=4)
    evaluation = evaluate(volume, metrics=("s2", "lineal_path"))
    assert evaluation.r_max == 19
    assert list(evaluation.s2.r) == list(range(20)) and evaluation.lineal_path.per_axis.shape == (3, 20)
    assert evaluation.to_dict()["r_max"] == 19
    assert evaluate(random_labels((40, 36), 0.3, seed=4), metrics=("s2",)).r_max == 32  # capped at 32
    with pytest.raises(ValueError, match=r"r_max=20 is too large for axis 0 of length 20"):
        evaluate(volume, metrics=("s2",), r_max=20)
    assert evaluate(volume, metrics=("fraction",)).r_max is None  # no lags asked for, none checked


# --- the JSON -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, phase, r_max",
    [((14, 16, 18), 1, 6), ((14, 16, 18), 0, 6), ((20, 22), 1, 9), ((20, 22), 1, None)],
)
def test_to_dict_is_describe_as_before(shape, phase, r_max):
    # the same descriptor functions on the same indicator: equal exactly, key order included
    volume = random_labels(shape, 0.4, seed=5)
    expected = describe_as_before(
        volume, metrics=DESCRIPTORS, phase=phase, r_max=min(shape) - 1 if r_max is None else r_max
    )
    evaluation = evaluate(volume, phase=phase, r_max=r_max)
    got = evaluation.to_dict()
    assert list(got)[: len(expected)] == list(expected)
    assert {key: got[key] for key in expected} == expected
    assert set(got) - set(expected) == ADDED_KEYS
    assert got["notes"] == [] and got["warnings"] == [] and got["converged"] is True
    assert describe(volume, phase=phase, r_max=r_max) == expected
    assert json.loads(json.dumps(got, allow_nan=False)) == got
    # the typed results name the studied phase, not the indicator's label
    assert evaluation.s2.phase == evaluation.connectivity.phase == phase


def test_metrics_subset_and_unknown_metric():
    volume = random_labels((10, 10, 10), 0.5, seed=6)
    got = evaluate(volume, metrics=("s2", "fraction")).to_dict()
    assert [k for k in got if k not in ADDED_KEYS] == ["shape", "phase", "fraction", "s2"]
    with pytest.raises(ValueError, match=r"unknown metrics \['porosity'\].*accepted names"):
        evaluate(volume, metrics=("fraction", "porosity"))


# --- compare ------------------------------------------------------------------------------------------------


def _assert_same(a, b):
    # the same formula on the same curves, sliced or computed to r_max: equal to round-off
    assert a.r_max == b.r_max and a.axis_by_axis == b.axis_by_axis
    for name in ("fraction_error", "s2_rmse", "lineal_path_rmse"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-12, abs=1e-15)


def test_compare_evaluations_equals_compare_arrays():
    volume = random_labels((16, 18, 20), 0.35, seed=7)
    truth = random_labels((16, 16, 16), 0.4, seed=8)
    image = random_labels((24, 24), 0.4, seed=9)
    metrics = ("fraction", "s2", "lineal_path")
    for reference in (truth, image):  # axis by axis, then the mean of the axes against a 2D image
        ours = compare(
            evaluate(volume, metrics=metrics, r_max=8), evaluate(reference, metrics=metrics, r_max=8)
        )
        _assert_same(ours, compare(volume, reference, r_max=8))
        assert ours.axis_by_axis == (reference.ndim == 3)
    assert compare(evaluate(volume), evaluate(volume)).s2_rmse == 0.0  # identical inputs give 0


def test_compare_uses_the_lags_both_evaluations_hold():
    volume = random_labels((16, 18, 20), 0.35, seed=7)
    reference = random_labels((12, 12), 0.4, seed=9)
    short, long = evaluate(volume, r_max=5), evaluate(reference, r_max=9)
    comparison = compare(short, long)
    assert comparison.r_max == 5
    _assert_same(comparison, compare(volume, reference, r_max=5))
    _assert_same(compare(long, evaluate(reference)), compare(reference, reference, r_max=9))
    _assert_same(compare(evaluate(volume), evaluate(reference), r_max=4), compare(volume, reference, r_max=4))
    with pytest.raises(ValueError, match=r"r_max=7 is larger than the lags both evaluations hold \(0 … 5"):
        compare(short, long, r_max=7)
    # adaptive r_max for arrays: the smaller volume's (11)
    assert compare(volume, reference).r_max == 11


def test_compare_refuses_mixed_inputs_and_compares_the_common_curves():
    volume = random_labels((10, 10, 10), 0.5, seed=10)
    with pytest.raises(TypeError, match="two Evaluations or two arrays; received Evaluation and ndarray"):
        compare(evaluate(volume), volume)
    # evaluations are compared on the curves both hold; the one missing from either has no RMSE
    partial = compare(evaluate(volume), evaluate(volume, metrics=("fraction", "s2")))
    assert partial.s2_rmse == 0.0 and partial.lineal_path_rmse is None
    assert partial.to_dict()["lineal_path_rmse"] is None
    fractions = compare(evaluate(volume, metrics=("fraction",)), evaluate(volume))
    assert (
        fractions.fraction_error == 0.0 and fractions.s2_rmse is None and fractions.lineal_path_rmse is None
    )
    with pytest.raises(ValueError, match="phase=0 does not match the evaluations"):
        compare(evaluate(volume), evaluate(volume), phase=0)


# --- an absent phase, a 2D image, the solvers' warnings ---------------------------------------------------


def test_absent_phase_is_evaluated_with_a_note():
    volume = np.zeros((8, 8, 8), dtype=np.uint8)
    volume[:, :, 0] = 2  # labels 0 and 2, phase 1 absent
    metrics = (*DESCRIPTORS, "conductivity", "permeability")
    evaluation = evaluate(volume, metrics=metrics, phase=1, axes=(0,))
    assert evaluation.fraction == 0.0
    assert any("phase=1 does not occur" in note for note in evaluation.notes)
    assert not evaluation.s2.per_axis.any() and not evaluation.lineal_path.mean.any()
    assert evaluation.specific_surface == 0.0 and evaluation.connectivity.n_clusters == 0
    assert evaluation.chord_length.counts.sum() == 0
    # no pore: the rule leaves a uniform solid, k_eff = 1.4; the linear profile is exact, the only error is
    # 1.4 stored in float32 (relative 1.7e-8), within 1e-7
    assert evaluation.conductivity[0].k_eff == pytest.approx(1.4, rel=1e-7)
    (flow,) = evaluation.permeability
    assert flow.k == 0.0 and flow.steps == 0 and flow.converged and "does not occur" in flow.reason
    assert evaluation.converged
    data = evaluation.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["s2"]["radial"]["s2"] == [0.0] * 8
    # and it compares: fraction error is minus the other's fraction
    other = random_labels((8, 8, 8), 0.25, seed=11)
    assert compare(evaluation, evaluate(other)).fraction_error == -other.mean()


def test_2d_image_has_no_permeability_but_a_note():
    image = random_labels((16, 16), 0.5, seed=12)
    evaluation = evaluate(image, metrics=("fraction", "permeability", "conductivity"))
    assert evaluation.permeability == ()
    assert evaluation.notes == ("permeability needs a 3D volume; this input is a 2D image",)
    assert evaluation.to_dict()["permeability"] == {"per_axis": [], "reason": evaluation.notes[0]}
    assert [r.axis for r in evaluation.conductivity] == [0, 1]  # conduction works in 2D


def test_solver_warnings_are_kept_as_data():
    # one conjugate-gradient iteration cannot reach tol=1e-4 on a random two-phase volume; under
    # filterwarnings=error an emitted ConvergenceWarning would fail this test
    volume = random_labels((12, 12, 12), 0.4, seed=13)
    evaluation = evaluate(
        volume, metrics=("conductivity",), axes=(0, 2), conductivity_options={"max_iterations": 1}
    )
    assert not evaluation.converged
    assert evaluation.not_converged == (("conductivity", 0), ("conductivity", 2))
    assert len(evaluation.warnings) == 2 and all("did not converge" in w for w in evaluation.warnings)
    assert evaluation.conductivity_options == (("max_iterations", 1),)
    assert evaluation.to_dict()["converged"] is False
    with pytest.raises(
        ValueError, match=r"conductivity_options has unknown or reserved keys \['conductivities'\]"
    ):
        evaluate(volume, metrics=("conductivity",), conductivity_options={"conductivities": (1, 2)})
    with pytest.raises(
        ValueError, match=r"permeability_options has unknown or reserved keys \['max_iterations'\]"
    ):
        evaluate(volume, metrics=("permeability",), permeability_options={"max_iterations": 1})


def test_evaluation_is_frozen():
    evaluation = evaluate(random_labels((8, 8), 0.5, seed=14), metrics=("fraction",))
    assert isinstance(evaluation, Evaluation)
    with pytest.raises(AttributeError):
        evaluation.phase = 0
