"""``python -m reports.fidelity``: one row per sample, 3D volumes or, for 2D→2D, one larger image (tiny settings)."""

import json

import numpy as np
import pytest

from reports.fidelity import main, run_case

TINY = {
    "section": 20,
    "scales": [1],
    "template": 5,
    "directions": 8,
    "blocks": 2,
    "channels": 4,
    "calibration_size": 12,
    "calibration_volumes": 1,
}


@pytest.fixture
def reference(tmp_path):
    from scipy import ndimage

    field = ndimage.gaussian_filter(np.random.default_rng(0).normal(size=(48, 48)), 2)
    path = tmp_path / "ref.npy"
    np.save(path, (field > np.quantile(field, 0.7)).astype(np.uint8))
    return path


@pytest.mark.parametrize("dim", [3, 2])
def test_rows_per_sample_and_the_judged_shape(reference, dim, monkeypatch):
    import swnn.generation  # run_case imports generate from it when it runs

    shapes = []
    generate = swnn.generation.generate

    def recording(model, shape, **kwargs):
        shapes.append(tuple(shape))
        return generate(model, shape, **kwargs)

    monkeypatch.setattr(swnn.generation, "generate", recording)
    rows = list(
        run_case(
            str(reference), samples=2, size=40, iterations=2, progress=False, overrides={**TINY, "dim": dim}
        )
    )
    assert [r["sample"] for r in rows] == [0, 1]
    assert shapes == ([(40, 40, 40)] * 2 if dim == 3 else [(1, 160, 160)] * 2)
    for r in rows:
        assert r["fraction_error"] == pytest.approx(r["fraction"] - r["target_fraction"])
        assert 0 <= r["s2_rmse"] < 0.5 and r["overrides"]["dim"] == dim


def test_command_appends_json_lines_and_summarizes(reference, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    argv = [str(reference), "--size", "40", "--iterations", "2", "-o", str(out), "--quiet"]
    for key, value in TINY.items():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    assert main(argv) == 0
    assert main(argv) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["case"] == rows[1]["case"]
    capsys.readouterr()
    assert main(["--summarize", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.count("\n| ref.npy") == 1  # one line per case, the mean of its rows


def test_iterations_and_seed_are_options_not_overrides(reference):
    with pytest.raises(ValueError, match="--iterations"):
        next(run_case(str(reference), overrides={"iterations": 3}))


def test_receptive_field_floor_is_the_image_s2_beyond_the_reach():
    from reports.fidelity import receptive_field_floor

    image = (np.random.default_rng(1).random((30, 40)) < 0.3).astype(np.uint8)
    image[:, ::4] = 1  # correlations at every lag that is a multiple of 4 along axis 1
    phi = image.mean()

    def s2(r):  # brute force, mean of the two axes (REFERENCES.md: mean over valid pairs of I(x)·I(x+r))
        a = (image[r:, :] * image[: image.shape[0] - r, :]).mean()
        b = (image[:, r:] * image[:, : image.shape[1] - r]).mean()
        return (a + b) / 2

    r_max, blocks = 12, 2  # reach 2·2 + 1 = 5: lags 5 … 12 count
    expected = np.sqrt(sum((s2(r) - phi**2) ** 2 for r in range(5, r_max + 1)) / (r_max + 1))
    assert receptive_field_floor(image, blocks, r_max=r_max) == pytest.approx(expected, rel=1e-12)
    assert receptive_field_floor(image, 6, r_max=r_max) == 0.0  # reach 13 > r_max: nothing is out of reach


def test_spread_generates_each_whitening_with_the_models_threshold(reference, tmp_path):
    from swnn.generation import GenerationSettings, generate
    from swnn.model import load_model

    models = tmp_path / "models"
    argv = [str(reference), "--size", "40", "--iterations", "2", "-o", str(tmp_path / "r.jsonl"), "--quiet"]
    argv += ["--models", str(models)]
    for key, value in TINY.items():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    assert main(argv) == 0
    (path,) = models.glob("*.pt")
    out = tmp_path / "spread.jsonl"
    argv = ["--spread", str(path), "--whiten", "32", "0", "--samples", "3", "--size", "40", "-o", str(out)]
    assert main(argv + ["--reference", str(reference)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["whiten"] for r in rows] == [32, 0] and all(len(r["fractions"]) == 3 for r in rows)
    model = load_model(path)
    assert model.noise_whiten == 32  # new models whiten by default, so the first row is the model as saved
    own = [
        float(np.mean(generate(model, (40,) * 3, settings=GenerationSettings(seed=0), sample=s) == 1))
        for s in range(3)
    ]
    assert rows[0]["fractions"] == own
    assert rows[0]["std"] == pytest.approx(np.std(own, ddof=1)) and len(rows[0]["s2_rmse"]) == 3
    assert rows[1]["fractions"] != own  # plain noise is another field
