"""`swnn evaluate`: the documented JSON shape, comparison against 2D and 3D references, clear errors."""

import json

import numpy as np
import pytest

from physics.correlation import two_point_probability
from swnn.cli import main


@pytest.fixture
def volume_file(tmp_path):
    rng = np.random.default_rng(0)
    vol = (rng.random((24, 26, 28)) < 0.3).astype(np.uint8)
    path = tmp_path / "v.npy"
    np.save(path, vol)
    return path, vol


def test_json_shape_and_values(tmp_path, volume_file):
    path, vol = volume_file
    image = (np.random.default_rng(1).random((40, 40)) < 0.3).astype(np.uint8) * 255
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "ref.png")
    out = tmp_path / "m.json"
    assert (
        main(
            ["evaluate", str(path), "--reference", str(tmp_path / "ref.png"), "--rmax", "10", "-o", str(out)]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert data["shape"] == [24, 26, 28] and data["phase"] == 1
    assert data["fraction"] == pytest.approx(vol.mean(), abs=0)
    assert data["s2"]["r"] == list(range(11))
    assert len(data["s2"]["per_axis"]) == 3 and len(data["s2"]["mean"]) == 11
    expected = two_point_probability(vol, r_max=10)
    np.testing.assert_array_equal(np.array(data["s2"]["per_axis"]), expected.per_axis)
    assert {"r", "s2"} <= set(data["s2"]["radial"])
    assert {"r", "per_axis", "mean"} <= set(data["lineal_path"])
    for key in ("chord_length", "specific_surface", "connectivity"):
        assert key in data
    assert len(data["reference"]["s2"]["per_axis"]) == 2
    ref_fraction = (image == 255).mean()
    assert data["comparison"]["fraction_error"] == pytest.approx(vol.mean() - ref_fraction, abs=1e-12)
    assert data["comparison"]["s2_rmse"] >= 0


def test_metrics_subset_and_builtin_reference(tmp_path, volume_file):
    path, _ = volume_file
    out = tmp_path / "m.json"
    args = [
        "evaluate",
        str(path),
        "--metrics",
        "fraction,s2",
        "--reference",
        "builtin:particles",
        "-o",
        str(out),
    ]
    assert main([*args, "--rmax", "8"]) == 0
    data = json.loads(out.read_text())
    assert "lineal_path" not in data and "chord_length" not in data
    assert len(data["reference"]["s2"]["per_axis"]) == 3  # the built-in's 3D volume: axis by axis


@pytest.mark.parametrize(
    "make, extra, message",
    [
        (lambda: np.random.default_rng(0).random((8, 8, 8)), [], "must be segmented"),
        (lambda: np.where(np.eye(8)[None] > 0, np.nan, 1.0) * np.ones((8, 1, 1)), [], "NaN"),
        (
            lambda: np.zeros((8, 8, 8), dtype=np.uint8) + np.eye(8, dtype=np.uint8)[None],
            ["--phase", "3"],
            "phase=3 does not occur",
        ),
        (lambda: (np.arange(512).reshape(8, 8, 8) % 2).astype(np.uint8), ["--rmax", "20"], "r_max"),
        (
            lambda: (np.arange(512).reshape(8, 8, 8) % 2).astype(np.uint8),
            ["--metrics", "fraction,nope"],
            "nope",
        ),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, make, extra, message):
    np.save(tmp_path / "bad.npy", make())
    out = tmp_path / "m.json"
    assert main(["evaluate", str(tmp_path / "bad.npy"), "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_conductivity_metric_layers_exact(tmp_path):
    # layers normal to axis 0 in a periodic box: flow along axis 1 sees the arithmetic mean exactly (1e-6,
    # the solver's documented accuracy on layered media), flow along axis 0 the harmonic mean
    vol = np.zeros((8, 6, 6), dtype=np.uint8)
    vol[::2] = 1
    np.save(tmp_path / "layers.npy", vol)
    out = tmp_path / "m.json"
    args = ["evaluate", str(tmp_path / "layers.npy"), "--metrics", "fraction,conductivity", "--axes", "0,1"]
    assert main([*args, "--conductivities", "2.0", "1.0", "-o", str(out)]) == 0
    per_axis = json.loads(out.read_text())["conductivity"]["per_axis"]
    assert [p["axis"] for p in per_axis] == [0, 1] and all(p["converged"] for p in per_axis)
    assert per_axis[1]["k_eff"] == pytest.approx(1.5, rel=1e-6)
    assert per_axis[0]["k_eff"] == pytest.approx(1 / (0.5 / 2.0 + 0.5 / 1.0), rel=1e-6)


def test_permeability_metric_plates_exact(tmp_path):
    # 5 fluid nodes between one-voxel walls normal to axis 1, periodic: along axis 0 TRT (Λ = 3/16) with
    # half-way bounce-back gives the lattice solution k = φ (N² + ½)/12 exactly; 1e-4 covers float32
    # round-off and the default convergence test (tests/test_permeability.py measures 5e-8 to 7e-6).
    # Along axis 1 the walls close every path: k = 0 with its reason, without a run.
    vol = np.ones((2, 6, 2), dtype=np.uint8)
    vol[:, 5, :] = 0
    np.save(tmp_path / "plates.npy", vol)
    out = tmp_path / "m.json"
    args = ["evaluate", str(tmp_path / "plates.npy"), "--metrics", "fraction,permeability", "--axes", "0,1"]
    assert main([*args, "--voxel-size", "2e-6", "-o", str(out)]) == 0
    data = json.loads(out.read_text())["permeability"]
    along, across = data["per_axis"]
    expected = 5 / 6 * (25 + 0.5) / 12
    assert along["axis"] == 0 and along["converged"] and along["steps"] > 0
    assert along["k"] == pytest.approx(expected, rel=1e-4)
    assert along["k_m2"] == pytest.approx(along["k"] * 4e-12, rel=1e-12)  # voxel² × (2 µm)²
    assert along["k_darcy"] == pytest.approx(along["k_m2"] / 9.869233e-13, rel=1e-12)
    assert along["mlups"] > 0
    assert across["k"] == 0.0 and across["steps"] == 0 and across["reason"]
    assert data["boundary"] == "periodic" and data["voxel_size"] == 2e-6


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--metrics", "fraction,permeabilty"], "accepted names"),
        (["--metrics", "permeability", "--voxel-size", "-1"], "--voxel-size"),
        (["--metrics", "permeability", "--axes", "0,3"], "--axes"),
    ],
)
def test_physics_options_are_checked(tmp_path, capsys, extra, message):
    np.save(tmp_path / "v.npy", (np.arange(512).reshape(8, 8, 8) % 2).astype(np.uint8))
    out = tmp_path / "m.json"
    assert main(["evaluate", str(tmp_path / "v.npy"), "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()
