"""benchmarks.rock_isotropy: the directional two-point function (closed forms) and its summary."""

import json

import numpy as np
import pytest

from benchmarks.rock_isotropy import FAMILIES, STEPS, directional_s2, summary


def _along_z(layers: np.ndarray, k: int) -> float:
    """S2 of a 1D indicator at lag k, over the positions whose partner is inside."""
    return float(np.mean(layers[:-k] & layers[k:])) if k else float(layers.mean())


def test_layers_are_fully_correlated_along_their_plane_and_not_across_it():
    n = 40
    layers = (np.arange(n) // 4) % 2 == 0  # slabs 4 voxels thick across z
    pore = np.broadcast_to(layers[:, None, None], (n, n, n)).copy()
    row = directional_s2(pore)
    phi = float(pore.mean())

    def normalised(s2: float) -> float:
        return (s2 - phi**2) / (phi - phi**2)

    # a step along y or x stays in its slab (normalised S2 = 1); a step that moves z by k sees the 1D
    # indicator's S2. Axes: 2 of 3 stay; face diagonals: the 2 in the (y, x) plane stay, 4 move z; body
    # diagonals: all 4 move z
    for k in range(1, STEPS + 1):
        across = normalised(_along_z(layers, k))
        # exact up to float64 means of 0/1 over ≤ 64,000 positions
        assert row["s2_axis"][k - 1] == pytest.approx((2 + across) / 3, abs=1e-5)
        assert row["s2_face"][k - 1] == pytest.approx((2 + 4 * across) / 6, abs=1e-5)
        assert row["s2_body"][k - 1] == pytest.approx(across, abs=1e-5)
    assert len(FAMILIES["face"]) == 6 and len(FAMILIES["body"]) == 4


def test_the_families_do_not_depend_on_which_axis_is_which():
    rng = np.random.default_rng(0)
    pore = rng.random((24, 24, 24)) < 0.3
    row, turned = directional_s2(pore), directional_s2(pore.transpose(2, 0, 1))
    for family in FAMILIES:  # each family is closed under permutations of the axes: the same means
        assert np.allclose(row[f"s2_{family}"], turned[f"s2_{family}"], atol=1e-5)


def test_summary_reads_each_name_with_intervals(tmp_path):
    rows = [
        {
            "name": "m",
            "i": i,
            "fraction": 0.2,
            "s2_axis_at": 0.2,
            "s2_face_at": 0.2,
            "s2_body_at": 0.1 + 0.02 * i,
            "F": 20.0 + i,
            "phiF": 4.0,
            "F_converged": True,
        }
        for i in range(5)
    ]
    out = tmp_path / "rows.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    entry = summary(out)["m"]
    # closed forms: mean of 20..24 is 22; body/axis ratios 0.5..0.9, mean 0.7
    assert entry["n"] == 5 and entry["F"][0] == pytest.approx(22.0)
    assert entry["body_over_axis"][0] == pytest.approx(0.7) and entry["F_converged"] is True
    assert entry["F"][1] < 22.0 < entry["F"][2]


def test_volumes_measured_without_formation_factor_are_summarised_without_it(tmp_path):
    from benchmarks.rock_isotropy import measure

    rng = np.random.default_rng(0)
    pore = rng.random((16, 16, 16)) < 0.3
    row = measure(pore, formation=False)
    assert "F" not in row and row["fraction"] == pytest.approx(pore.mean())
    assert row["s2_axis_at"] == directional_s2(pore)["s2_axis_at"]  # the same estimator with or without F
    out = tmp_path / "rows.jsonl"
    out.write_text("".join(json.dumps({"name": "m", "i": i, **row}) + "\n" for i in range(3)))
    entry = summary(out)["m"]
    assert entry["n"] == 3 and "F" not in entry and "F_converged" not in entry
    # three equal rows: the interval collapses on the value
    assert entry["s2_axis_at"][0] == pytest.approx(round(row["s2_axis_at"], 4))
