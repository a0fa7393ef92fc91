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
            "--phase 3 does not occur",
        ),
        (lambda: (np.arange(512).reshape(8, 8, 8) % 2).astype(np.uint8), ["--rmax", "20"], "--rmax 20"),
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


@pytest.mark.parametrize(
    "metric, extra, advice",
    [
        # 4 lattice-Boltzmann steps: one check of k, never two quiet ones, so the run cannot converge
        ("permeability", ["--max-steps", "4"], "--max-steps or --tau"),
        # one conjugate-gradient iteration cannot reach tol=1e-4 on a random two-phase volume
        ("conductivity", ["--max-iterations", "1"], "--max-iterations"),
    ],
)
def test_not_converged_exits_3_and_writes_the_json(tmp_path, capsys, metric, extra, advice):
    # 12³: at 8³ the multigrid's coarsest grid is the whole volume, solved exactly in one iteration
    vol = (np.random.default_rng(2).random((12, 12, 12)) < 0.6).astype(np.uint8)
    np.save(tmp_path / "v.npy", vol)
    out = tmp_path / "m.json"
    args = ["evaluate", str(tmp_path / "v.npy"), "--metrics", f"fraction,{metric}", "--axes", "0"]
    assert main([*args, *extra, "-o", str(out)]) == 3
    data = json.loads(out.read_text())
    assert data["converged"] is False and data[metric]["per_axis"][0]["converged"] is False
    assert data["warnings"] and data["fraction"] == pytest.approx(vol.mean(), abs=0)
    err = capsys.readouterr().err
    assert f"not converged: {metric} along axis 0 (volume)" in err and advice in err
    assert "Traceback" not in err


def test_solver_options_pass_through(tmp_path):
    # the plates of test_permeability_metric_plates_exact: tau changes the steps, not k (the magic Λ = 3/16
    # makes k independent of the viscosity exactly for straight channels; 1e-4 as there)
    vol = np.ones((2, 6, 2), dtype=np.uint8)
    vol[:, 5, :] = 0
    np.save(tmp_path / "plates.npy", vol)
    out = tmp_path / "m.json"
    args = ["evaluate", str(tmp_path / "plates.npy"), "--metrics", "permeability", "--axes", "0"]
    assert main([*args, "--tau", "1.5", "--permeability-tol", "1e-6", "-o", str(out)]) == 0
    data = json.loads(out.read_text())["permeability"]
    assert data["options"] == {"tau": 1.5, "tol": 1e-6}
    assert data["per_axis"][0]["k"] == pytest.approx(5 / 6 * (25 + 0.5) / 12, rel=1e-4)


def test_2d_image_with_permeability_gives_a_note(tmp_path, capsys):
    np.save(tmp_path / "image.npy", (np.random.default_rng(3).random((16, 16)) < 0.5).astype(np.uint8))
    out = tmp_path / "m.json"
    assert (
        main(["evaluate", str(tmp_path / "image.npy"), "--metrics", "fraction,permeability", "-o", str(out)])
        == 0
    )
    data = json.loads(out.read_text())
    reason = "permeability needs a 3D volume; this input is a 2D image"
    assert data["permeability"] == {"per_axis": [], "reason": reason}
    assert data["notes"] == [reason] and data["converged"] is True
    assert f"note: volume: {reason}" in capsys.readouterr().out


def test_default_rmax_adapts_to_the_volume(tmp_path, volume_file):
    path, _ = volume_file  # 24 × 26 × 28: r_max 23
    out = tmp_path / "m.json"
    assert main(["evaluate", str(path), "--metrics", "fraction,s2,lineal_path", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["r_max"] == 23 and data["s2"]["r"] == list(range(24))


def test_volume_without_the_phase_beside_a_reference(tmp_path, capsys):
    # a reconstruction that lost a phase of its reference is evaluated (fraction 0, a note), not refused;
    # without a reference, a phase the volume lacks is bad input (test_bad_input_is_one_clear_line)
    rng = np.random.default_rng(4)
    np.save(tmp_path / "lost.npy", (rng.random((10, 10, 10)) < 0.5).astype(np.uint8))  # labels 0, 1
    np.save(tmp_path / "ref.npy", rng.integers(0, 3, size=(10, 10, 10)).astype(np.uint8))  # labels 0, 1, 2
    out = tmp_path / "m.json"
    args = ["evaluate", str(tmp_path / "lost.npy"), "--reference", str(tmp_path / "ref.npy"), "--phase", "2"]
    assert main([*args, "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["fraction"] == 0.0 and "phase=2 does not occur" in data["notes"][0]
    assert data["comparison"]["fraction_error"] == pytest.approx(-data["reference"]["fraction"], abs=0)
    assert "note: volume: phase=2 does not occur" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "lost.npy"), "--phase", "2", "-o", str(out), "--force"]) == 2


@pytest.mark.parametrize("debug", [None, "environment", "flag"])
@pytest.mark.parametrize("error", [RuntimeError, TypeError, ImportError])
def test_internal_error_exits_70(tmp_path, capsys, monkeypatch, debug, error):
    # a TypeError or an ImportError inside swnn is a bug, not bad input: its traceback must not be lost
    import physics

    def broken(*args, **kwargs):
        raise error("boom")

    monkeypatch.setattr(physics, "evaluate", broken)
    if debug == "environment":
        monkeypatch.setenv("SWNN_DEBUG", "1")
    else:
        monkeypatch.delenv("SWNN_DEBUG", raising=False)
    np.save(tmp_path / "v.npy", np.eye(8, dtype=np.uint8)[None].repeat(8, axis=0))
    out = tmp_path / "m.json"
    flag = ["--debug"] if debug == "flag" else []
    assert main(["evaluate", str(tmp_path / "v.npy"), "-o", str(out), *flag]) == 70
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        f"swnn evaluate: internal error, a bug in swnn: {error.__name__}: boom (please report"
    )
    assert ("Traceback" in err) == (debug is not None)
    assert not out.exists()


def test_help_documents_exit_statuses_and_solver_options(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for line in (
        "0   ok",
        "2   bad input",
        "3   a solver did not converge",
        "4   not comparable",
        "70  internal",
    ):
        assert line in text
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    for option in ("--max-steps", "--tau", "--permeability-tol", "--max-iterations", "--conductivity-tol"):
        assert option in text


def test_reference_reading_options_apply_to_the_reference(tmp_path, volume_file):
    path, vol = volume_file
    # a grey-scale reference (many levels) needs its own threshold; the labelled volume must not get it
    grey = np.random.default_rng(2).integers(0, 256, size=(24, 26, 28)).astype(np.uint8)
    grey.tofile(tmp_path / "ref.raw")
    out = tmp_path / "m.json"
    common = ["evaluate", str(path), "--reference", str(tmp_path / "ref.raw"), "--metrics", "fraction,s2"]
    layout = ["--reference-raw-shape", "24", "26", "28", "--reference-raw-dtype", "uint8"]
    assert main([*common, *layout, "--reference-threshold", "178", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["fraction"] == pytest.approx(vol.mean())  # the volume as it is
    assert result["reference"]["fraction"] == pytest.approx((grey > 178).mean())  # the threshold applied
    assert main([*common, *layout, "-o", str(out), "--force"]) == 2  # 256 grey levels without a threshold


def test_every_phase_of_a_three_phase_volume_and_its_reference(tmp_path):
    rng = np.random.default_rng(4)
    volume = rng.choice(3, size=(20, 20, 20), p=[0.5, 0.3, 0.2]).astype(np.uint8)
    reference = rng.choice(3, size=(20, 20, 20), p=[0.5, 0.3, 0.2]).astype(np.uint8)
    np.save(tmp_path / "v.npy", volume)
    np.save(tmp_path / "r.npy", reference)
    out = tmp_path / "m.json"
    argv = ["evaluate", str(tmp_path / "v.npy"), "--reference", str(tmp_path / "r.npy"), "--phase", "all"]
    assert main([*argv, "--metrics", "fraction,s2", "--rmax", "5", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert sorted(result["phases"]) == ["0", "1", "2"] and result["converged"] is True
    for phase, r in result["phases"].items():
        fraction = float(np.mean(volume == int(phase)))
        assert r["fraction"] == pytest.approx(fraction, abs=1e-12)
        assert r["reference"]["fraction"] == pytest.approx(float(np.mean(reference == int(phase))), abs=1e-12)
        # S2(0) of a phase is its fraction, on every axis (exact)
        assert [axis[0] for axis in r["s2"]["per_axis"]] == pytest.approx([fraction] * 3, abs=1e-12)
        assert r["comparison"]["fraction_error"] == pytest.approx(r["fraction"] - r["reference"]["fraction"])
    assert sum(r["fraction"] for r in result["phases"].values()) == pytest.approx(1.0, abs=1e-12)
