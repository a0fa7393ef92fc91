"""Studies (`swnn study`, `swnn regress`): validation before any work, a tiny study end to end, the cache.

The tiny study trains for 2 iterations on 24² sections and generates 24³ samples: its numbers are meaningless as
fidelity, the tests check the plumbing (what is written, what is reused, what is recomputed).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from reports import regress
from reports.study import fidelity, load_study, prepare_study, run_study
from swnn.cli import main

TINY_TRAINING = """
[training]
iterations = 2
section = 24
scales = [1]
directions = 8
blocks = 2
channels = 4
template = 5
calibration_size = 16
"""

# Few lattice-Boltzmann steps: the permeability of such small, barely trained samples only has to exist here
# (its convergence is physics/permeability's tests' business); a non-converged run becomes a note of the report.
TINY_PHYSICS = """
[physics]
axes = [0]

[physics.permeability]
max_steps = 100
check_every = 50
"""


def _write_references(folder: Path) -> None:
    from scipy import ndimage

    rng = np.random.default_rng(7)
    field = ndimage.gaussian_filter(rng.normal(size=(32, 32, 32)), 2, mode="wrap")
    np.save(folder / "volume.npy", (field > np.quantile(field, 0.6)).astype(np.uint8))
    image = ndimage.gaussian_filter(rng.normal(size=(48, 48)), 2)
    np.save(folder / "image.npy", (image > np.quantile(image, 0.65)).astype(np.uint8))


def _study_text(extra_conditions: str = "") -> str:
    return (
        'name = "tiny"\nsamples = 1\nsize = 24\nr_max = 10\n'
        + TINY_TRAINING
        + TINY_PHYSICS
        + '\n[[references]]\nsource = "volume.npy"\nconditions = ["stochastic", 0.3]\n'
        + f'\n[[references]]\nsource = "image.npy"\nvoxel_size = 2e-6\nconditions = ["stochastic"{extra_conditions}]\n'
    )


@pytest.fixture(scope="module", autouse=True)
def _fixed_code_tags():
    # Models, samples and physics results are cached under a hash of the sources they depend on (swnn/,
    # physics/), so that changed code is rerun; fixed here so that an edit of those folders while these tests
    # run does not change what they find cached.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("reports.study.cache._code_tag", lambda module: "fixed")
        yield patch


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny study run once through the command line: (study file, study folder)."""
    folder = tmp_path_factory.mktemp("study")
    _write_references(folder)
    toml = folder / "tiny.toml"
    toml.write_text(_study_text())
    output = folder / "out"
    assert main(["study", str(toml), "-o", str(output), "--quiet", "--device", "cpu"]) == 0
    return toml, output


def _fails_with(capsys, argv, pattern: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) >= 1 and err.startswith("swnn study: error:")
    assert re.search(pattern, err), err


# ---------------------------------------------------------------------------------------------------------
# Validation: one clear error, nothing done
# ---------------------------------------------------------------------------------------------------------


def test_unknown_keys_are_one_error_before_any_work(tmp_path, capsys):
    _write_references(tmp_path)
    text = _study_text().replace("samples = 1", "sampels = 1").replace("iterations = 2", "iteration = 2")
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(ValueError) as error:
        load_study(tmp_path / "bad.toml")
    message = str(error.value)
    assert "unknown key 'sampels' in the study" in message
    assert (
        "unknown key 'iteration' in [training]" in message and "iterations" in message
    )  # lists accepted keys
    _fails_with(capsys, ["study", str(tmp_path / "bad.toml"), "-o", str(tmp_path / "out")], "sampels")
    assert not (tmp_path / "out").exists()


def test_coarse_noise_of_several_sides_in_a_study_file(tmp_path):
    # a TOML list of increasing odd sides is the training setting's tuple; decreasing sides are one error line
    _write_references(tmp_path)
    (tmp_path / "s.toml").write_text(
        _study_text().replace("iterations = 2", "iterations = 2\ncoarse_noise = [7, 15]")
    )
    assert load_study(tmp_path / "s.toml").training.config().coarse_noise == (7, 15)
    (tmp_path / "s.toml").write_text(
        _study_text().replace("iterations = 2", "iterations = 2\ncoarse_noise = [15, 7]")
    )
    with pytest.raises(ValueError, match=r"coarse_noise must be 0 \(none\), an odd side .* got \(15, 7\)"):
        load_study(tmp_path / "s.toml")


def test_missing_reference_file_is_an_error(tmp_path, capsys):
    _write_references(tmp_path)
    (tmp_path / "volume.npy").unlink()
    (tmp_path / "s.toml").write_text(_study_text())
    with pytest.raises(FileNotFoundError, match="volume.npy"):
        load_study(tmp_path / "s.toml")
    _fails_with(capsys, ["study", str(tmp_path / "s.toml"), "-o", str(tmp_path / "out")], "does not exist")
    assert not (tmp_path / "out").exists()


def test_unreachable_fraction_fails_before_training(tmp_path, monkeypatch):
    import swnn.training

    def no_training(*args, **kwargs):
        raise AssertionError("nothing may be trained before the study is checked")

    monkeypatch.setattr(swnn.training, "train", no_training)
    _write_references(tmp_path)
    # white noise at 30 %: no 5×5 window is 95 % white (binomial tail ~1e-9 per window), so η = 0.95 is out
    # of the reachable range; the first reference (fine) comes before it, and nothing is trained for it either
    noise = (np.random.default_rng(0).random((48, 48)) < 0.3).astype(np.uint8)
    np.save(tmp_path / "image.npy", noise)
    (tmp_path / "s.toml").write_text(_study_text(extra_conditions=", 0.95"))
    study = load_study(tmp_path / "s.toml")
    with pytest.raises(
        ValueError, match=r"reference 'image', condition eta=0.95: .*unreachable.*reachable range"
    ):
        run_study(study, tmp_path / "out", progress=False, device="cpu")
    assert not (tmp_path / "out").exists()


def test_bad_values_and_a_non_study_folder(tmp_path):
    from reports.study import study_from_dict

    data = {
        "size": 16,
        "r_max": 20,
        "conditions": ["stochastic", 1.5],
        "physics": {"axes": [3], "permeability": {"axis": 1}},
        "references": [{"source": "builtin:nope"}],
    }
    with pytest.raises(ValueError) as error:
        study_from_dict(data, origin="s.toml")
    message = str(error.value)
    for expected in ("r_max", "1.5", "[physics].axes", "[physics.permeability].axis", "builtin:nope"):
        assert expected in message
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("")
    study = study_from_dict({"references": [{"source": "builtin:labyrinth"}]})
    with pytest.raises(FileExistsError, match="holds no study"):
        run_study(study, tmp_path / "busy", progress=False)


def test_references_with_their_own_training_settings(tmp_path):
    from reports.study import study_from_dict
    from reports.study.cache import _Cache
    from reports.study.plan import _Modules, build_plan

    def reference(name, training=None):
        table = {"source": "builtin:labyrinth", "name": name}
        return table if training is None else {**table, "training": training}

    data = {
        "training": {"iterations": 5},
        "references": [
            reference("a"),
            reference("b", {"iterations": 7, "lineal_weight": 1.0}),
            reference("c", {"template": 5}),
        ],
    }
    study = study_from_dict(data)
    a, b, c = study.references
    assert study.training_config(a).iterations == 5 and study.training_config(a).lineal_weight == 0
    assert study.training_config(b).iterations == 7 and study.training_config(b).lineal_weight == 1
    # laid over the study's [training]: what c does not name comes from it
    assert study.training_config(c).iterations == 5 and study.training_config(c).template == 5
    plan = build_plan(
        study,
        prepare_study(study),
        _Modules({}, ()),
        _Cache(tmp_path),
        train_precision="fp32",
        generate_precision="fp32",
    )
    assert [m.config.iterations for m in plan.models] == [5, 7, 5]
    assert plan.models[0].key != plan.models[1].key  # same image, different settings: two models
    assert study.to_dict()["references"][1]["training"]["overrides"] == {
        "iterations": 7,
        "lineal_weight": 1.0,
    }
    assert all(r.training is None for r in study.with_profile("quick").references)
    data["references"][1]["training"] = {"iterations": 0, "bogus": 1}
    with pytest.raises(ValueError) as error:
        study_from_dict(data, origin="s.toml")
    for expected in ("[[references]] #2.training", "bogus", "iterations must be at least 1"):
        assert expected in str(error.value)


def test_default_study_is_valid():
    study = load_study()
    assert study.name == "default" and study.size == 64
    assert {r.source for r in study.references} == {"builtin:labyrinth", "builtin:sandstone"}
    assert any(c.controlled for r in study.references for c in r.conditions)  # the control figure has data
    assert {"conductivity", "permeability"} <= set(study.metrics)
    loaded = prepare_study(study)  # loads the built-ins, checks every target fraction
    assert len(loaded) == 2
    assert study.with_profile("paper").training_config().iterations == 2000


def test_paper_data_study_is_valid(shared_data):
    # the study file of the README's paper-data table: its relative paths reach ../shared/data
    study = load_study(Path(__file__).parents[1] / "reports" / "studies" / "paper_data.toml")
    assert [r.name for r in study.references] == ["M1", "M2", "M3", "M4", "berea"]
    loaded = prepare_study(study)
    assert len(loaded) == 5
    # Berea trains on its 128³ crop and is compared with the 400³ scan it was cut from (voxels 136:264)
    berea = loaded[-1]
    assert berea.training_input.shape == (128,) * 3 and berea.truth.shape == (400,) * 3
    np.testing.assert_array_equal(berea.truth[136:264, 136:264, 136:264], berea.training_input)


def test_training_on_chosen_slices_of_a_volume(tmp_path):
    from reports.study import study_from_dict

    _write_references(tmp_path)
    table = {"source": "volume.npy", "slices": ["0:10", "2:20"]}
    study = study_from_dict({"size": 16, "r_max": 8, "references": [table]}, base=tmp_path)
    (loaded,) = prepare_study(study)
    volume = np.load(tmp_path / "volume.npy")
    assert len(loaded.training_input) == 2 and loaded.truth.shape == volume.shape  # compared with the volume
    np.testing.assert_array_equal(loaded.training_input[0], volume[10])
    np.testing.assert_array_equal(loaded.training_input[1], volume[:, :, 20])
    with pytest.raises(ValueError, match=r"'0-10' is not AXIS:INDEX"):
        study_from_dict({"references": [{**table, "slices": ["0-10"]}]}, base=tmp_path)
    for source, slices, message in (
        ("volume.npy", ["1:32"], r"slice 1:32 is beyond .*volume.*, which has 32 sections along axis 1"),
        ("image.npy", ["0:0"], "slices need a 3D reference"),
    ):
        study = study_from_dict(
            {"size": 16, "r_max": 8, "references": [{"source": source, "slices": slices}]}, base=tmp_path
        )
        with pytest.raises(ValueError, match=message):
            prepare_study(study)


@pytest.mark.parametrize(
    "name",
    [
        "berea_rock.toml",
        "berea_rock_levers.toml",
        "berea_rock_lineal.toml",
        "berea_rock_inputs.toml",
        "berea_rock_sections.toml",
        "berea_rock_receptive.toml",
        "berea_rock_levers256.toml",
    ],
)
def test_berea_rock_study_is_valid(shared_data, name):
    # the study files of the real-rock tables (docs/results.md): one slice, several training settings
    study = load_study(Path(__file__).parents[1] / "reports" / "studies" / name)
    assert len(study.references) >= 2 and all(Path(r.source).is_file() for r in study.references)
    assert all(r.truth is None or Path(r.truth).is_file() for r in study.references)
    runs = {
        (r.source, r.slices, json.dumps(study.training_config(r).to_dict(), sort_keys=True))
        for r in study.references
    }
    assert len(runs) == len(study.references)  # each reference trains on its own input or settings
    # k is compared with the band of the scan's 128³ pieces, computed along z in the mirror box
    assert study.physics.axes == (0,) and dict(study.physics.permeability).get("boundary") == "mirror"


def test_a_separate_truth_volume(tmp_path, capsys):
    _write_references(tmp_path)
    volume = np.load(tmp_path / "volume.npy")
    np.save(tmp_path / "scan.npy", np.tile(volume, (2, 2, 2)))
    text = _study_text().replace('source = "volume.npy"', 'source = "volume.npy"\ntruth = "scan.npy"')
    (tmp_path / "s.toml").write_text(text)
    loaded = prepare_study(load_study(tmp_path / "s.toml"))
    assert loaded[0].truth.shape == (64,) * 3 and loaded[0].training_input.shape == (32,) * 3
    # models are keyed by what they train on, not by the truth: another source gives other models
    np.save(tmp_path / "volume.npy", 1 - volume)
    other = prepare_study(load_study(tmp_path / "s.toml"))[0]
    assert other.sha256 == loaded[0].sha256 and other.training_sha256 != loaded[0].training_sha256
    np.save(tmp_path / "volume.npy", volume)
    # the truth must be the same material with the same labels: here a third phase appears
    three = np.tile(volume, (2, 2, 2))
    three[0, 0, 0] = 2
    np.save(tmp_path / "scan.npy", three)
    with pytest.raises(
        ValueError, match=r"reference 'volume': its truth .*scan.npy has 3 phases and its source 2"
    ):
        prepare_study(load_study(tmp_path / "s.toml"))
    (tmp_path / "scan.npy").unlink()
    _fails_with(capsys, ["study", str(tmp_path / "s.toml"), "-o", str(tmp_path / "out")], "truth.*scan.npy")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------------
# A tiny study end to end
# ---------------------------------------------------------------------------------------------------------


def test_tiny_study_writes_metrics_json_figures_and_html(tiny):
    _, output = tiny
    frame = pd.read_csv(output / "metrics.csv")
    assert list(frame.columns) == [
        "reference",
        "condition",
        "target_fraction",
        "role",
        "sample",
        "metric",
        "axis",
        "value",
        "unit",
    ]
    runs = set(zip(frame["reference"], frame["condition"], strict=True))
    assert runs == {("volume", "stochastic"), ("volume", "eta=0.3"), ("image", "stochastic")}
    # tidy: one row per reference × condition × sample × metric × axis
    keys = frame[["reference", "condition", "role", "sample", "metric", "axis"]].astype(str)
    assert not keys.duplicated().any()
    samples = frame[frame["role"] == "sample"]
    for metric in ("fraction", "fraction_error", "s2_rmse", "lineal_path_rmse", "specific_surface"):
        assert (samples["metric"] == metric).sum() == 3, metric
    controlled = samples[(samples["condition"] == "eta=0.3") & (samples["metric"] == "fraction_error")]
    fraction = samples[(samples["condition"] == "eta=0.3") & (samples["metric"] == "fraction")]
    # fraction_error is the sample's fraction minus the target η (exactly, by definition)
    assert controlled["value"].iloc[0] == pytest.approx(fraction["value"].iloc[0] - 0.3, abs=1e-12)

    summary = json.loads((output / "study.json").read_text())
    assert summary["format"] == "swnn-study/1"
    assert {"swnn", "torch", "numpy", "python"} <= set(summary["versions"])
    assert summary["device"]["type"] == "cpu"
    assert {"check", "train", "generate", "evaluate samples", "report"} <= set(summary["timings"]["stages"])
    assert summary["training_config"]["iterations"] == 2
    # each run says how well its training input knows its fraction (integral range); the report shows it
    image_run = next(
        r for r in summary["runs"] if r["reference"] == "image" and r["condition"] == "stochastic"
    )
    assert image_run["training_fraction_std"] > 0 and 0 < image_run["training_fraction"] < 1
    half_width = f"± {1.96 * image_run['training_fraction_std']:.4f}"
    assert any("image / stochastic: the training image is small" in note for note in summary["notes"])
    names = {p.name for p in (output / "figures").glob("*.png")}
    for run in ("volume-stochastic", "volume-eta0.3", "image-stochastic"):
        assert {f"sections-{run}.png", f"curves-{run}.png"} <= names
    assert {"control.png", "timings.png"} <= names

    html = (output / "index.html").read_text()
    assert half_width in html
    images = re.findall(r'<img src="([^"]*)"', html)
    assert len(images) == len(names)  # every figure embedded
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert 'src="http' not in html and "href=" not in html and "<script" not in html


def test_physics_figures_and_rows(tiny):
    pytest.importorskip("physics.conductivity")
    pytest.importorskip("physics.permeability")
    _, output = tiny
    names = {p.name for p in (output / "figures").glob("*.png")}
    assert {"properties.png", "fields-volume.png", "fields-image.png"} <= names
    frame = pd.read_csv(output / "metrics.csv")
    volume = frame[(frame["reference"] == "volume") & (frame["role"] == "sample")]
    ratio = volume[volume["metric"] == "conductivity_ratio"]["value"].to_numpy()
    k = volume[volume["metric"] == "conductivity"]["value"].to_numpy()
    reference_k = frame[(frame["reference"] == "volume") & (frame["role"] == "reference")]
    reference_k = reference_k[reference_k["metric"] == "conductivity"]["value"].iloc[0]
    np.testing.assert_allclose(ratio, k / reference_k, rtol=1e-12)  # the ratio is the quotient, by definition
    # the 2D image has no 3D ground truth: no ratios, and the report says so
    image = frame[frame["reference"] == "image"]
    assert not image["metric"].str.endswith("_ratio").any()
    assert any("2D reference" in n for n in json.loads((output / "study.json").read_text())["notes"])
    # permeability in m² where the reference has a voxel size
    assert (image["metric"] == "permeability_m2").any()


def test_fidelity_equals_physics_compare(tiny):
    from physics.compare import compare, describe

    _, output = tiny
    sample = next((output / "cache" / "samples").glob("*.npy"))
    volume = np.load(sample)
    truth = np.load(output.parent / "volume.npy")
    image = np.load(output.parent / "image.npy")
    for reference in (truth, image):  # axis by axis against a volume; mean of the axes against an image
        ours = fidelity(describe(volume, r_max=10), describe(reference, r_max=10))
        theirs = compare(volume, reference, r_max=10)
        # the same formulas on the same arrays: equal to rounding
        assert ours["s2_rmse"] == pytest.approx(theirs.s2_rmse, rel=1e-12, abs=1e-15)
        assert ours["lineal_path_rmse"] == pytest.approx(theirs.lineal_path_rmse, rel=1e-12, abs=1e-15)
        assert ours["reference_fraction_error"] == pytest.approx(theirs.fraction_error, abs=1e-15)
        assert ours["axis_by_axis"] == theirs.axis_by_axis


# ---------------------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------------------


def _count_calls(monkeypatch):
    import swnn.generation
    import swnn.training

    calls = {"train": 0, "generate": 0}
    train, generate = swnn.training.train, swnn.generation.generate

    def counted_train(*args, **kwargs):
        calls["train"] += 1
        return train(*args, **kwargs)

    def counted_generate(*args, **kwargs):
        calls["generate"] += 1
        return generate(*args, **kwargs)

    monkeypatch.setattr(swnn.training, "train", counted_train)
    monkeypatch.setattr(swnn.generation, "generate", counted_generate)
    return calls


def test_rerun_reuses_every_item(tiny, monkeypatch):
    toml, output = tiny
    before = pd.read_csv(output / "metrics.csv")
    calls = _count_calls(monkeypatch)
    result = run_study(load_study(toml), output, progress=False, device="cpu")
    assert calls == {"train": 0, "generate": 0}
    timings = result.summary["timings"]
    assert all(m["cached"] for m in timings["models"]) and all(s["cached"] for s in timings["samples"])
    assert all(e["cached"] for e in timings["evaluations"])
    pd.testing.assert_frame_equal(pd.read_csv(output / "metrics.csv"), before)


def _copy_study(output: Path, folder: Path) -> Path:
    """A copy of the tiny study's folder (cache included) in ``folder``, beside its reference files."""
    copy = folder / "out"
    shutil.copytree(output, copy)
    for name in ("volume.npy", "image.npy"):
        shutil.copy(output.parent / name, folder / name)
    return copy


def test_force_keeps_the_old_cache_until_the_new_run_succeeds(tiny, tmp_path, monkeypatch):
    import swnn.training

    toml, output = tiny
    copy = _copy_study(output, tmp_path)
    cached = sorted(str(p.relative_to(copy)) for p in (copy / "cache").rglob("*"))

    def failing_train(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C during the forced rerun

    monkeypatch.setattr(swnn.training, "train", failing_train)
    with pytest.raises(KeyboardInterrupt):
        run_study(load_study(toml), copy, force=True, progress=False, device="cpu")
    assert sorted(str(p.relative_to(copy)) for p in (copy / "cache").rglob("*")) == cached
    assert not (copy / ".cache-replaced").exists()


def test_extending_a_study_runs_only_the_new_items(tiny, tmp_path, monkeypatch):
    toml, output = tiny
    copy = _copy_study(output, tmp_path)
    (tmp_path / "more.toml").write_text(
        _study_text(extra_conditions=", 0.3")
    )  # one new model, one new sample
    calls = _count_calls(monkeypatch)
    result = run_study(load_study(tmp_path / "more.toml"), copy, progress=False, device="cpu")
    assert calls == {"train": 1, "generate": 1}
    new = [m for m in result.summary["timings"]["models"] if not m["cached"]]
    assert [m["run"] for m in new] == ["image / eta=0.3"]
    new_evaluations = [e for e in result.summary["timings"]["evaluations"] if not e["cached"]]
    assert len(new_evaluations) == len(result.summary["timings"]["evaluations"]) // 4  # 1 sample of 4 is new

    # another r_max: the descriptors of references and samples are recomputed, nothing else
    text = (tmp_path / "more.toml").read_text().replace("r_max = 10", "r_max = 8")
    (tmp_path / "more.toml").write_text(text)
    calls.update(train=0, generate=0)
    result = run_study(load_study(tmp_path / "more.toml"), copy, progress=False, device="cpu")
    assert calls == {"train": 0, "generate": 0}
    rerun = {e["group"] for e in result.summary["timings"]["evaluations"] if not e["cached"]}
    assert rerun == {"descriptors"}
    assert len(pd.read_csv(copy / "metrics.csv").query("metric == 'fraction' and role == 'sample'")) == 4


def test_a_generation_condition_reuses_the_stochastic_model(tiny, tmp_path, monkeypatch):
    toml, output = tiny
    copy = _copy_study(output, tmp_path)
    mask = "band:0:0.25..0.75:1:0.3"
    (tmp_path / "masked.toml").write_text(_study_text(extra_conditions=f', {{ mask = "{mask}" }}'))
    calls = _count_calls(monkeypatch)
    run_study(load_study(tmp_path / "masked.toml"), copy, progress=False, device="cpu")
    assert calls == {"train": 0, "generate": 1}  # Y = G(X·M) from the image's stochastic model
    metrics = pd.read_csv(copy / "metrics.csv")
    assert f"mask={mask}" in set(metrics["condition"])
    sidecars = [json.loads(p.read_text()) for p in (copy / "cache" / "samples").glob("*.npy.json")]
    assert [s["mask"] for s in sidecars if "mask" in s] == [mask]


def test_bad_generation_conditions_are_errors(tmp_path):
    for table, message in (
        ("{ fraction = 1.5 }", "fraction must be a number in"),
        ('{ mask = "band:0:0.2..0.4", fraction = 0.3 }', "not a condition table"),
        ('{ fraction_profile = "0:0.2..0.4", mask_mode = "offset" }', "mask_mode must be one of"),
    ):
        (tmp_path / "bad.toml").write_text(_study_text(extra_conditions=f", {table}"))
        _write_references(tmp_path)
        with pytest.raises(ValueError, match=message):
            load_study(tmp_path / "bad.toml")


def test_a_changed_solver_recomputes_only_its_results(tiny, tmp_path, monkeypatch):
    pytest.importorskip("physics.conductivity")
    _, output = tiny
    copy = _copy_study(output, tmp_path)
    (tmp_path / "s.toml").write_text(_study_text())
    # the conductivity solver was edited, the permeability solver was not
    monkeypatch.setattr(
        "reports.study.cache._code_tag",
        lambda module: "edited" if module.__name__.endswith("conductivity") else "fixed",
    )
    calls = _count_calls(monkeypatch)
    result = run_study(load_study(tmp_path / "s.toml"), copy, progress=False, device="cpu")
    assert calls == {"train": 0, "generate": 0}
    rerun = {e["group"] for e in result.summary["timings"]["evaluations"] if not e["cached"]}
    assert rerun == {"conductivity"}


def test_the_solvers_compute_on_the_study_device(tiny, tmp_path, monkeypatch):
    import physics

    _, output = tiny
    copy = _copy_study(output, tmp_path)
    (tmp_path / "s.toml").write_text(_study_text())
    monkeypatch.setattr(
        "reports.study.cache._code_tag", lambda module: "edited" if "physics" in module.__name__ else "fixed"
    )
    devices, solve = [], physics.evaluate

    def recorded(*args, **kwargs):
        devices.append(kwargs.get("device"))
        return solve(*args, **kwargs)

    monkeypatch.setattr(physics, "evaluate", recorded)
    run_study(load_study(tmp_path / "s.toml"), copy, progress=False, device="cpu")
    # every solver run (references, truth pieces, samples) is told the study's device, not left to default
    assert devices and set(devices) == {torch.device("cpu")}


def test_a_changed_generator_regenerates_the_samples_not_the_models(tiny, tmp_path, monkeypatch):
    _, output = tiny
    copy = _copy_study(output, tmp_path)
    (tmp_path / "s.toml").write_text(_study_text())
    # the generator's sources were edited, the trainer's were not
    monkeypatch.setattr(
        "reports.study.cache._code_tag",
        lambda module: "edited" if module.__name__ == "swnn.generation" else "fixed",
    )
    calls = _count_calls(monkeypatch)
    result = run_study(load_study(tmp_path / "s.toml"), copy, progress=False, device="cpu")
    assert calls == {"train": 0, "generate": 3}  # the 3 samples, each measured anew
    timings = result.summary["timings"]
    assert all(m["cached"] for m in timings["models"]) and not any(s["cached"] for s in timings["samples"])
    assert not any(e["cached"] for e in timings["evaluations"])


def test_study_samples_carry_the_provenance_of_swnn_generate(tiny, tmp_path):
    from swnn.io import sidecar_path

    _, output = tiny
    runs = {
        (r["reference"], r["condition"]): r for r in json.loads((output / "study.json").read_text())["runs"]
    }
    run = runs[("volume", "stochastic")]
    model = output / "cache" / "models" / f"{run['model']}.pt"
    sample = output / "cache" / "samples" / f"{run['samples'][0]}.npy"
    ours = json.loads(sidecar_path(sample).read_text())
    generated = tmp_path / "generated.npy"
    argv = ["generate", str(model), "-o", str(generated), "--size", "24", "--seed", "0", "--device", "cpu"]
    assert main([*argv, "--quiet"]) == 0
    theirs = json.loads(sidecar_path(generated).read_text())
    assert set(ours) == set(theirs)
    expected = {"seed", "sample", "model_sha256", "swnn_version", "block", "precision", "reference"}
    assert expected | {"voxel_size", "shape", "dtype", "format"} <= set(ours)
    # the same model file, seed, sample index and precision: the same provenance, and the same voxels
    assert ours == theirs
    np.testing.assert_array_equal(np.load(sample), np.load(generated))
    # the voxel size of the study file is recorded where the reference has one
    image = output / "cache" / "samples" / f"{runs[('image', 'stochastic')]['samples'][0]}.npy"
    assert json.loads(sidecar_path(image).read_text())["voxel_size"] == 2e-6


# ---------------------------------------------------------------------------------------------------------
# Regression check
# ---------------------------------------------------------------------------------------------------------


def _small_study(folder: Path, **changes) -> Path:
    """The tiny study's volume reference alone, with more samples and the core metrics only."""
    text = (
        'name = "small"\nsamples = 16\nsize = 24\nr_max = 10\ntruth_samples = 0\nmetrics = ["fraction"]\n'
        + "".join(f"{k} = {v}\n" for k, v in changes.items())
        + TINY_TRAINING
        + '\n[[references]]\nsource = "volume.npy"\n'
    )
    toml = folder / "small.toml"
    toml.write_text(text)
    return toml


def test_regress_passes_other_samples_of_the_same_models_and_fails_a_degraded_study(
    tmp_path, monkeypatch, capsys
):
    from swnn.model import TrainedModel

    _write_references(tmp_path)
    baseline = tmp_path / "baseline.json"
    first = tmp_path / "first"
    assert main(["study", str(_small_study(tmp_path)), "-o", str(first), "--quiet", "--device", "cpu"]) == 0
    assert main(["regress", str(first), "--write-baseline", str(baseline)]) == 0
    # other samples of the same models (another sample seed): the check passes
    other = tmp_path / "other"
    toml = _small_study(tmp_path, sample_seed=1)
    assert main(["study", str(toml), "-o", str(other), "--quiet", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["regress", str(other), "--baseline", str(baseline)]) == 0
    report = regress.check(other, baseline)
    assert any(c.status != "not judged" for c in report.changes)  # the check has power for some measure
    # the same models with their threshold shifted: the samples' structure changes and the check fails
    shift = TrainedModel.threshold_for
    monkeypatch.setattr(TrainedModel, "threshold_for", lambda self, precision: shift(self, precision) - 0.5)
    degraded = tmp_path / "degraded"
    assert main(["study", str(toml), "-o", str(degraded), "--quiet", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["regress", str(degraded), "--baseline", str(baseline)]) == 1
    assert "REGRESSED:" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "precision"), [("default.json", "bf16"), ("default-fp32.json", "fp32")])
def test_committed_baseline_covers_the_default_study(name, precision, tmp_path):
    # reports/baselines holds the default study's baseline in each precision, each written from a run of the
    # default study on a 2-core CPU; each must name every reference × condition of the default study, carry
    # every tolerance, and be the one the folder gives a study of its precision
    folder = Path(__file__).parents[1] / "reports" / "baselines"
    baseline = regress._read_baseline(folder / name)
    assert baseline["study"] == "default"
    assert baseline["device"]["training_precision"] == baseline["device"]["generation_precision"] == precision
    study = load_study()
    labels = {
        f"{r.name} / {'stochastic' if c.target_fraction is None else f'eta={c.target_fraction:g}'}"
        for r in study.references
        for c in r.conditions
    }
    assert set(baseline["runs"]) == labels
    assert set(baseline["tolerances"]) == set(regress.TOLERANCES)
    assert baseline["size"] == study.size
    for run, measures in baseline["runs"].items():
        assert {"fraction_error", "s2_rmse", "lineal_path_rmse"} <= set(measures)
        reference = next(r for r in study.references if run.startswith(f"{r.name} / "))
        assert len(measures["fraction_error"]) == study.samples_of(reference)  # per-sample values
    design = {
        "name": "default",
        "settings": {"size": study.size},
        "device": {"training_precision": precision, "generation_precision": precision},
    }
    (tmp_path / "study.json").write_text(json.dumps(design))
    assert regress.select_baseline(tmp_path, folder) == folder / name


def test_profile_figure_compares_the_slices_with_the_request(tmp_path):
    from types import SimpleNamespace

    from reports.figures import profile_figure
    from reports.study.settings import Condition

    # every slice along axis 2 holds exactly the requested fraction 0.25 + 0.5 i / 15 of 16 × 16 voxels
    volume = np.zeros((16, 16, 16), np.uint8)
    for i in range(16):
        count = round((0.25 + 0.5 * i / 15) * 256)
        volume.reshape(256, 16)[:count, i] = 1
    np.save(tmp_path / "s.npy", volume)
    run = SimpleNamespace(
        condition=Condition(generate=(("fraction_profile", "2:0.25..0.75"),)),
        reference=SimpleNamespace(phase=1),
        samples=[SimpleNamespace(path=tmp_path / "s.npy", index=0)],
        title="graded",
    )
    figure = profile_figure(run, SimpleNamespace(size=16), tmp_path / "p.png")
    assert figure.path.is_file() and figure.group == "control"
    # the slices hold round(f · 256) voxels: within half a voxel of 256, RMSE < 0.002
    rmse = float(figure.caption.rsplit("request ", 1)[1].rstrip("."))
    assert rmse < 0.002


def test_rock_cache_reads_the_finished_items(tiny):
    from benchmarks.rock_cache import partial_figures

    toml, output = tiny
    figures = partial_figures(toml, output)
    frame = pd.read_csv(output / "metrics.csv")
    for reference in ("volume", "image"):
        rows = frame[(frame["reference"] == reference) & (frame["role"] == "sample")]
        fractions = rows.loc[rows["metric"] == "fraction", "value"]
        s2 = rows.loc[rows["metric"] == "s2_rmse", "value"]
        # every condition's samples of the reference, as the finished study wrote them
        assert sorted(figures[reference]["fraction"]) == pytest.approx(sorted(fractions), rel=1e-12)
        assert sorted(figures[reference]["s2_rmse"]) == pytest.approx(sorted(s2), rel=1e-12)
    pieces = frame[(frame["role"] == "truth") & (frame["metric"] == "fraction")]
    assert figures["truth"]["n"] == pieces["sample"].nunique()  # each piece once, not once per run


def test_curves_figure_of_many_samples_keeps_its_layout(tmp_path):
    # 72 samples (the default study's labyrinth) with one legend entry each collapsed the constrained layout
    # (matplotlib's "axes sizes collapsed to zero" warning); beyond one colour each, they share one entry.
    import warnings
    from types import SimpleNamespace

    from reports.figures import curves_figure

    r = np.arange(17)
    curve = {"r": r, "mean": 0.3 * np.exp(-r / 4.0) + 0.09}
    descriptors = {"s2": curve, "lineal_path": curve}
    fidelity = {"s2_rmse": 0.01, "lineal_path_rmse": 0.01}
    samples = [
        SimpleNamespace(index=i, fraction=0.3, description=descriptors, fidelity=fidelity) for i in range(72)
    ]
    run = SimpleNamespace(
        reference=SimpleNamespace(voxel_size=None),
        reference_description={**descriptors, "fraction": 0.3},
        samples=samples,
        condition=SimpleNamespace(controlled=False),
        title="labyrinth / stochastic",
        has_volume=True,
        target_fraction=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        curves_figure(run, SimpleNamespace(r_max=16), tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
