"""Choosing among candidate runs (``TrainConfig.candidates``, swnn.selection)."""

import warnings

import numpy as np
import pytest

from physics import section_connectivity
from swnn.selection import model_connectivity, window_for
from swnn.training import TrainConfig, train
from tests.test_training_cli import TINY, _image


def test_candidates_keep_the_run_whose_sections_join_up_like_the_reference(tmp_path):
    image = _image()
    config = TINY.replace(candidates=3, seed=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = train(
            image, config=config, phase=1, output=tmp_path / "m.pt", progress=False, device="cpu"
        ).model
    # each run's checkpoint goes when the run is done, so the next candidate does not find another's
    assert not [w for w in caught if "checkpoint" in str(w.message) or "other settings" in str(w.message)]
    assert (tmp_path / "m.pt").exists() and not (tmp_path / "m.pt.ckpt").exists()
    training = model.metadata.training
    attempts = training["attempts"]
    assert [a["seed"] for a in attempts] == [4, 5, 6]
    # the reference's C is that of the image (and its transpose, the same C) in windows of the calibration side
    window = window_for([image], config.calibration_size)
    assert window == 16
    assert training["reference_section_connectivity"] == pytest.approx(
        section_connectivity(image, phase=1, window=window), abs=1e-12
    )
    distances = [
        abs(a["section_connectivity"] - training["reference_section_connectivity"]) for a in attempts
    ]
    assert training["chosen"] == int(np.argmin(distances))
    kept = attempts[training["chosen"]]
    assert training["config"]["seed"] == kept["seed"] and training["final_loss"] == kept["final_loss"]
    # the kept run is the run of its seed trained alone, and its C is that of its own samples' sections
    alone = train(
        image, config=config.replace(seed=kept["seed"], candidates=1), progress=False, device="cpu"
    ).model
    assert alone.model_hash() == model.model_hash()
    (single,) = alone.metadata.training["attempts"]
    assert [single[k] for k in ("seed", "final_loss", "smoothing")] == [
        kept[k] for k in ("seed", "final_loss", "smoothing")
    ]
    assert model_connectivity(
        alone, side=config.calibration_size, seed=kept["seed"], phase=1, window=window, device="cpu"
    ) == pytest.approx(kept["section_connectivity"], abs=1e-12)


def test_controlled_candidates_keep_the_lowest_final_loss():
    config = TINY.replace(candidates=2)
    model = train(_image(), config=config, target_fraction=0.3, progress=False, device="cpu").model
    training = model.metadata.training
    losses = [a["final_loss"] for a in training["attempts"]]
    assert len(losses) == 2 and training["chosen"] == int(np.argmin(losses))
    # C at the reference's fraction says nothing of a run at another fraction: not measured
    assert training["reference_section_connectivity"] is None
    assert all("section_connectivity" not in a for a in training["attempts"])


def test_candidates_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="candidates must be an integer ≥ 1"):
        TrainConfig(candidates=0)


def test_stalled_candidates_are_left_out_and_retried():
    from swnn.calibration import SmoothingWarning
    from tests.test_smoothing import _squares

    # one iteration stalls every seed (tests/test_smoothing.py): two candidates, no retry, both stall
    config = TINY.replace(iterations=1, section=24, smoothing="auto", candidates=2, retries=0, seed=5)
    with pytest.warns(SmoothingWarning) as caught:
        model = train(_squares(), config=config, progress=False, device="cpu").model
    messages = [str(w.message) for w in caught if issubclass(w.category, SmoothingWarning)]
    assert len(messages) == 2, messages
    assert messages[0].startswith("training with seed 5 stalled") and messages[0].endswith("it is left out")
    assert messages[1].startswith("smoothing 'auto': even σ = 2")  # no run converged: the last is kept
    training = model.metadata.training
    assert [a["seed"] for a in training["attempts"]] == [5, 6] and training["chosen"] == 1
    assert all("section_connectivity" not in a for a in training["attempts"])  # stalled runs are not measured
    # one retry replaces the first stall: three runs
    with pytest.warns(SmoothingWarning) as caught:
        model = train(_squares(), config=config.replace(retries=1), progress=False, device="cpu").model
    messages = [str(w.message) for w in caught if issubclass(w.category, SmoothingWarning)]
    assert "again with seed 6 (retry 1 of 1)" in messages[0] and messages[1].endswith("it is left out")
    assert [a["seed"] for a in model.metadata.training["attempts"]] == [5, 6, 7]


def test_candidates_on_cuda_keep_the_run_nearest_the_reference():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    image = _image()
    config = TINY.replace(candidates=2, seed=4)
    model = train(image, config=config, phase=1, progress=False, device="cuda").model
    training = model.metadata.training
    attempts = training["attempts"]
    assert [a["seed"] for a in attempts] == [4, 5]
    reference = training["reference_section_connectivity"]
    assert reference == pytest.approx(section_connectivity(image, phase=1, window=16), abs=1e-12)
    assert training["chosen"] == int(
        np.argmin([abs(a["section_connectivity"] - reference) for a in attempts])
    )
    kept = attempts[training["chosen"]]
    # measured again on the GPU, the kept model's C is the one recorded: cuDNN may choose another convolution
    # algorithm between calls, which can flip a few voxels at the threshold, so C (a share of 0 … 1) is held to
    # 0.01, a third of the spread of C between Berea seeds (0.240-0.275)
    again = model_connectivity(
        model, side=config.calibration_size, seed=kept["seed"], phase=1, window=16, device="cuda"
    )
    assert again == pytest.approx(kept["section_connectivity"], abs=0.01)
