"""The notebook API (``import swnn``): the README's Python quick start, at a tiny size, and its contracts."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import swnn

# The quick start's calls with training cut to a few iterations on small sections (the plumbing is tested
# here, fidelity in the studies).
TINY = dict(iterations=3, section=24, scales=(1,), directions=8, blocks=1, channels=4, template=3)
TINY.update(calibration_size=16, calibration_volumes=1)


@pytest.fixture(scope="module")
def model_and_reference(tmp_path_factory):
    ref = swnn.load_reference("builtin:particles")
    path = tmp_path_factory.mktemp("api") / "m.pt"
    return swnn.train(ref, profile="quick", seed=0, output=path, **TINY), ref


def test_the_quick_start_runs_as_written(model_and_reference, tmp_path):
    model, ref = model_and_reference
    assert ref.name == "builtin:particles" and ref.n_phases == 2
    assert ref.volume.shape == (128, 128, 128) and ref.image.shape == (128, 128)
    vol = swnn.generate(model, shape=(24, 24, 24), seed=1)
    assert isinstance(vol, np.ndarray) and vol.dtype == np.uint8 and vol.shape == (24, 24, 24)
    assert set(np.unique(vol)) <= {0, 1}
    # the same seed and sample give the same volume, another sample another one
    np.testing.assert_array_equal(vol, swnn.generate(model, shape=24, seed=1))
    assert not np.array_equal(vol, swnn.generate(model, shape=24, seed=1, sample=1))
    path = swnn.generate_to(tmp_path / "v.zarr", model, shape=(24, 24, 24), seed=1)
    np.testing.assert_array_equal(swnn.read_microstructure(path), vol)  # streamed equals in memory
    provenance = json.loads((tmp_path / "v.zarr.json").read_text())
    assert provenance["seed"] == 1 and provenance["model_sha256"] == model.model_hash()
    assert provenance["model"].endswith("m.pt")  # the file the model was saved to
    ev = swnn.evaluate(vol, metrics=["fraction", "s2", "conductivity"])
    assert isinstance(ev, swnn.Evaluation) and ev.fraction == pytest.approx(vol.mean())
    cmp = swnn.compare(ev, swnn.evaluate(ref.volume))
    assert isinstance(cmp, swnn.Comparison) and cmp.lineal_path_rmse is None  # ev holds no lineal path
    assert cmp.fraction_error == pytest.approx(vol.mean() - ref.volume.mean())


def test_a_model_file_loads_back_equal(model_and_reference):
    model, _ = model_and_reference
    loaded = swnn.load_model(model.path)
    assert loaded.model_hash() == model.model_hash()
    assert loaded.metadata.training["losses"] == model.metadata.training["losses"]
    assert len(loaded.metadata.training["losses"]) == TINY["iterations"]
    np.testing.assert_array_equal(swnn.generate(loaded, 16, seed=2), swnn.generate(model.path, 16, seed=2))


def test_train_takes_arrays_and_names_bad_settings():
    from swnn.training import TrainingCallback

    class Losses(TrainingCallback):
        def __init__(self):
            self.seen = []

        def on_iteration(self, state, done, loss):
            self.seen.append((done, loss))

    image = (np.add.outer(np.arange(32), np.arange(32)) // 4 % 2).astype(np.uint8)
    losses = Losses()
    model = swnn.train(image, callbacks=[losses], **TINY)
    assert model.metadata.reference.name == "array"
    assert [done for done, _ in losses.seen] == [1, 2, 3]
    assert model.metadata.training["final_loss"] == pytest.approx(np.mean([loss for _, loss in losses.seen]))
    # each iteration's loss is kept in the model, to 5 significant digits
    np.testing.assert_allclose(
        model.metadata.training["losses"], [loss for _, loss in losses.seen], rtol=1e-4
    )
    with pytest.raises(
        ValueError, match=r"unknown training settings \['iteration'\]; accepted: .*iterations"
    ):
        swnn.train(image, iteration=3)
    with pytest.raises(ValueError, match="profile must be one of paper, quick, rock, got .fast."):
        swnn.train(image, profile="fast")
    from swnn.training import PROFILES

    # quick plus the lineal-path term and coarse noise, with the smoothing that matches the interfaces, the best
    # of three candidates
    assert PROFILES["rock"] == PROFILES["quick"].replace(
        lineal_weight=30.0, coarse_noise=7, smoothing="auto", retries=2, candidates=3
    )
    # the command line lists the profiles without importing the training module: its choices must follow
    from swnn.cli_args import parser

    commands = parser()._subparsers._group_actions[0].choices
    for command in ("train", "study"):
        (option,) = [a for a in commands[command]._actions if "--profile" in a.option_strings]
        assert sorted(option.choices) == sorted(PROFILES)
    with pytest.raises(ValueError, match="reference must be a 2D or 3D array"):
        swnn.train(np.zeros((2, 2, 2, 2), dtype=np.uint8))
    # arrays follow the label convention (0/255 are phases 0/1), alone or several pooled
    from swnn.api import training_input

    images, n_phases, name = training_input([image * 255, image.T * 255])
    assert n_phases == 2 and name == "array+array" and all(set(np.unique(i)) == {0, 1} for i in images)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shape": 0}, "shape must be a positive int or three positive ints"),
        ({"shape": (4, 4)}, "shape must be a positive int or three positive ints"),
        ({"shape": 16, "block": 4}, "block must be at least 8 voxels, got 4"),
    ],
)
def test_generate_names_bad_arguments(model_and_reference, kwargs, message):
    model, _ = model_and_reference
    with pytest.raises(ValueError, match=message):
        swnn.generate(model, **kwargs)


def test_generate_to_runs_its_blocks_on_the_threads_asked(model_and_reference, tmp_path, monkeypatch):
    import torch

    import swnn.distributed
    import swnn.generation

    model, _ = model_and_reference
    with pytest.raises(ValueError, match="threads must be a positive integer or None, got 0"):
        swnn.generate_to(tmp_path / "bad.npy", model, 16, threads=0)
    assert not (tmp_path / "bad.npy").exists()
    seen, generate = [], swnn.generation.generate

    def counted(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return generate(*args, **kwargs)

    monkeypatch.setattr(swnn.generation, "generate", counted)
    before = torch.get_num_threads()
    swnn.generate_to(tmp_path / "one.npy", model, 16, threads=1)
    assert seen == [1] and torch.get_num_threads() == before  # in this process, restored after

    sent = []

    class Done:
        path = tmp_path / "d.zarr"

    monkeypatch.setattr(
        swnn.distributed, "generate_zarr", lambda *a, **k: sent.append(k["threads"]) or Done()
    )
    swnn.generate_to(tmp_path / "d.zarr", model, 16, client=object())
    swnn.generate_to(tmp_path / "d.zarr", model, 16, client=object(), threads=3)
    assert sent == [1, 3]  # one thread per Dask task unless asked


def test_import_is_lazy_and_lists_the_api():
    code = (
        "import sys, swnn; print(sorted(m for m in ('torch', 'physics', 'scipy') if m in sys.modules)); "
        "print(all(name in dir(swnn) for name in ('train', 'generate', 'generate_to', 'evaluate', 'compare')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "True"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        swnn.nope  # noqa: B018
