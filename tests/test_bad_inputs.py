"""Bad input to every command: one line ``swnn CMD: error: …`` (exit status 2; 4 for a study and a baseline
that measure different things), no traceback, and no file left behind.

Each case names the command's arguments (with ``{name}`` placeholders for the files of the ``files`` fixture),
the exit status and a pattern the message must contain. The files are made once; each case runs in a fresh
copy of them, and the folder must hold exactly the same names afterwards.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from swnn.cli import main

TINY = ["--iterations", "1", "--section", "16", "--scales", "1", "--directions", "4", "--blocks", "1"]
TINY += ["--channels", "4", "--template", "3", "--quiet"]


def _two_phase(shape, seed=0) -> np.ndarray:
    from scipy import ndimage

    field = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), 2, mode="wrap")
    return (field > np.quantile(field, 0.6)).astype(np.uint8)


class _Payload:
    """Unpickling this calls ``Path.touch(<folder>/pwned)``: a model file that would run code."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A folder of good and bad inputs, made once."""
    import zarr

    import swnn

    root = tmp_path_factory.mktemp("inputs")
    image = _two_phase((32, 32))
    volume = _two_phase((24, 24, 24), seed=1)
    Image.fromarray(image * 255).save(root / "good.png")
    np.save(root / "volume.npy", volume)
    (root / "not_an_image.png").write_text("x\n")
    (root / "empty.png").write_bytes(b"")
    np.save(root / "whole.npy", volume)
    data = (root / "whole.npy").read_bytes()
    (root / "truncated.npy").write_bytes(data[: len(data) // 2])
    (root / "whole.npy").unlink()
    tifffile.imwrite(root / "whole.tif", volume * 255)
    data = (root / "whole.tif").read_bytes()
    (root / "truncated.tif").write_bytes(data[: len(data) // 3])
    (root / "whole.tif").unlink()
    store = zarr.open_array(
        str(root / "truncated.zarr"), mode="w", shape=(24, 24, 24), chunks=(8, 8, 8), dtype="u1"
    )
    store[...] = volume
    chunk = next(p for p in (root / "truncated.zarr").rglob("*") if p.is_file() and p.name[0].isdigit())
    chunk.write_bytes(chunk.read_bytes()[:5])
    np.save(root / "four_d.npy", np.zeros((2, 2, 2, 2), dtype=np.uint8))
    np.save(root / "complex.npy", image.astype(np.complex64))
    (volume * 255).tofile(root / "volume.raw")
    np.save(root / "one_by_one.npy", np.ones((1, 1), dtype=np.uint8))
    np.save(root / "single_phase.npy", np.ones((16, 16), dtype=np.uint8))
    nan = image.astype(np.float32)
    nan[3, 3] = np.nan
    np.save(root / "nan.npy", nan)
    Image.fromarray(np.arange(1024, dtype=np.uint32).reshape(32, 32).astype(np.uint8)).save(root / "grey.png")
    rgb = np.stack([image * 255, image * 0, image * 255], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(root / "colour.png")
    (root / "folder").mkdir()
    (root / "a_file").write_text("")
    (root / "existing.pt").write_text("")
    (root / "existing.json").write_text("")
    (root / "existing.npy").write_text("")

    model = swnn.train(
        image,
        iterations=1,
        section=16,
        scales=(1,),
        directions=4,
        blocks=1,
        channels=4,
        template=3,
        calibration_size=16,
        calibration_volumes=1,
        output=root / "model.pt",
    )
    assert model is not None
    data = bytearray((root / "model.pt").read_bytes())
    (root / "truncated.pt").write_bytes(bytes(data[: len(data) // 2]))
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(b ^ 0xFF for b in data[middle : middle + 2000])
    (root / "flipped.pt").write_bytes(bytes(data))
    # well-formed, but its weights changed after their SHA-256 was stored
    import torch

    blob = torch.load(root / "model.pt", weights_only=True)
    next(iter(blob["state_dict"].values())).add_(0.5)
    torch.save(blob, root / "tampered.pt")
    # a zip archive (torch's format) whose data.pkl would run code when unpickled without weights_only
    torch.save({"format": "swnn-model/1", "payload": _Payload(str(root / "pwned"))}, root / "pickle.pt")
    assert not (root / "pwned").exists()
    (root / "pickle_plain.pt").write_bytes(pickle.dumps(_Payload(str(root / "pwned"))))

    (root / "study.toml").write_text("this is = not [ toml\n")
    (root / "baseline.json").write_text("{ not json")
    (root / "study").mkdir()  # a study folder in appearance: its metrics.csv has the columns regress reads
    (root / "study" / "metrics.csv").write_text(
        "reference,condition,role,sample,metric,axis,value\nr,stochastic,sample,0,fraction_error,,0.01\n"
    )
    return root


CONDUCTIVITY = [
    "evaluate",
    "{volume.npy}",
    "-o",
    "{new.json}",
    "--metrics",
    "conductivity",
    "--conductivities",
]

# (arguments, exit status, pattern of the message)
CASES = [
    # --- train: the reference
    (
        ["train", "{not_an_image.png}", "-o", "{new.pt}"],
        2,
        r"not_an_image.png: not a readable image file: empty, truncated or of another format$",
    ),
    (["train", "{empty.png}", "-o", "{new.pt}"], 2, r"empty.png: not a readable image"),
    (
        ["train", "{good.png}", "-o", "{new.pt}", "--region", "blob:1"],
        2,
        r"--region 'blob:1': expected labels",
    ),
    (["train", "{good.png}", "-o", "{new.pt}", "--region", "labels:1"], 2, r"holds a single phase"),
    (
        ["generate", "{model.pt}", "-o", "{new.npy}", "--size", "8", "--global", "{volume.npy}"],
        2,
        r"--global .*volume.npy has shape",
    ),
    (["train", "{truncated.npy}", "-o", "{new.pt}"], 2, r"truncated.npy: not a readable NPY"),
    (["train", "{truncated.tif}", "-o", "{new.pt}"], 2, r"truncated.tif: not a readable TIFF"),
    (["train", "{truncated.zarr}", "-o", "{new.pt}"], 2, r"truncated.zarr: not a readable zarr"),
    (["train", "{four_d.npy}", "-o", "{new.pt}"], 2, r"expected a 2D image or 3D volume"),
    (["train", "{complex.npy}", "-o", "{new.pt}"], 2, r"complex.npy.*dtype complex64"),
    (
        ["train", "{volume.raw}", "-o", "{new.pt}"],
        2,
        r"needs its shape and dtype.*--raw-shape Z Y X and --raw-dtype",
    ),
    (
        ["train", "{volume.raw}", "-o", "{new.pt}", "--raw-shape", "24", "24", "24", "--raw-dtype", "foo"],
        2,
        r"'foo' is not a voxel type",
    ),
    (["train", "{one_by_one.npy}", "-o", "{new.pt}"], 2, r"one_by_one.npy.*(one phase|1 phase|too small)"),
    (["train", "{single_phase.npy}", "-o", "{new.pt}"], 2, r"single_phase.npy.*phase"),
    (["train", "{nan.npy}", "-o", "{new.pt}"], 2, r"nan.npy.*(NaN|finite)"),
    (["train", "{grey.png}", "-o", "{new.pt}"], 2, r"grey levels.*--threshold T"),
    (["train", "{colour.png}", "-o", "{new.pt}"], 2, r"unequal R, G, B"),
    (["train", "{missing.png}", "-o", "{new.pt}"], 2, r"missing.png: no such file"),
    (["train", "{folder}", "-o", "{new.pt}"], 2, r"folder: a folder, not an image or volume file"),
    # --- train: the destination and the options, checked before any training
    (["train", "{good.png}", "-o", "{missing_folder}/m.pt"], 2, r"missing_folder does not exist"),
    (["train", "{good.png}", "-o", "{a_file}/m.pt"], 2, r"a_file is not a folder"),
    (["train", "{good.png}", "-o", "{existing.pt}"], 2, r"existing.pt exists; pass --force"),
    (["train", "{good.png}", "-o", "{new.pt}", "--fraction", "1.5"], 2, r"fraction.*1.5"),
    (["train", "{good.png}", "-o", "{new.pt}", "--fraction", "0.99"], 2, r"0.99.*reachable range"),
    (["train", "{good.png}", "-o", "{new.pt}", "--phase", "5"], 2, r"phase must be one of 0\.\.1.*got 5"),
    (["train", "{good.png}", "-o", "{new.pt}", "--iterations", "0"], 2, r"iterations"),
    # --- generate
    (["generate", "{truncated.pt}", "-o", "{new.npy}", "--size", "8"], 2, r"truncated.pt: not an swnn model"),
    (["generate", "{flipped.pt}", "-o", "{new.npy}", "--size", "8"], 2, r"flipped.pt.*(SHA-256|not an swnn)"),
    (
        ["generate", "{tampered.pt}", "-o", "{new.npy}", "--size", "8"],
        2,
        r"tampered.pt: the weights do not match the SHA-256",
    ),
    (["generate", "{pickle.pt}", "-o", "{new.npy}", "--size", "8"], 2, r"pickle.pt: not an swnn model"),
    (["generate", "{pickle_plain.pt}", "-o", "{new.npy}", "--size", "8"], 2, r"pickle_plain.pt: not an swnn"),
    (["generate", "{good.png}", "-o", "{new.npy}", "--size", "8"], 2, r"good.png: not an swnn model"),
    (["generate", "{model.pt}", "-o", "{new.npy}", "--size", "0"], 2, r"shape.*positive.*0"),
    (["generate", "{model.pt}", "-o", "{new.npy}", "--shape", "4", "0", "4"], 2, r"shape.*positive"),
    (
        ["generate", "{model.pt}", "-o", "{new.npy}", "--size", "16", "--block", "1"],
        2,
        r"block must be at least 8 voxels, got 1",
    ),
    (["generate", "{model.pt}", "-o", "{new.npy}", "--size", "8", "--samples", "0"], 2, r"samples"),
    (
        ["generate", "{model.pt}", "-o", "{new.npy}", "--size", "8", "--threads", "0"],
        2,
        r"--threads must be at least 1, got 0",
    ),
    (
        ["generate", "{model.pt}", "-o", "{existing.npy}", "--size", "8"],
        2,
        r"existing.npy exists; pass --force",
    ),
    (["generate", "{model.pt}", "-o", "{new.xyz}", "--size", "8"], 2, r"unsupported volume format '.xyz'"),
    (
        ["generate", "{model.pt}", "-o", "{missing_folder}/v.npy", "--size", "8"],
        2,
        r"missing_folder does not exist",
    ),
    (
        ["generate", "{model.pt}", "-o", "{new.npy}", "--size", "8", "--mask", "wobble:0:1"],
        2,
        r"unknown kind",
    ),
    (
        ["generate", "{model.pt}", "-o", "{new.npy}", "--size", "8", "--mask", "gradient:3:0..1"],
        2,
        r"axis must be 0, 1 or 2.*expected gradient:AXIS:A..B",
    ),
    (
        ["generate", "{model.pt}", "-o", "{new.npy}", "--size", "8", "--mask", "gradient:0:0..2"],
        2,
        r"takes values 0..2; --mask-mode multiply needs values in \[0, 1\]",
    ),
    (
        ["generate", "{model.pt}", "-o", "{new.npy}", "--size", "8", "--mask", "{volume.npy}"],
        2,
        r"volume.npy has shape .*; the volume's is \(8, 8, 8\)",
    ),
    (
        [
            "generate",
            "{model.pt}",
            "-o",
            "{new.npy}",
            "--size",
            "8",
            "--mask",
            "constant:1",
            "--mask-values",
            "0:1",
        ],
        2,
        r"--mask-values must be LABEL=VALUE pairs",
    ),
    (
        ["generate", "{model.pt}", "-o", "{new.npy}", "--size", "8", "--fraction", "1.5"],
        2,
        r"--fraction must be in",
    ),
    # --- evaluate
    (
        ["evaluate", "{volume.npy}", "-o", "{new.json}", "--metrics", "fraction,porosity"],
        2,
        r"unknown metrics",
    ),
    (["evaluate", "{volume.npy}", "-o", "{new.json}", "--rmax", "30"], 2, r"--rmax 30 is too large"),
    (["evaluate", "{volume.npy}", "-o", "{new.json}", "--phase", "7"], 2, r"--phase 7 does not occur"),
    (["evaluate", "{volume.npy}", "-o", "{new.json}", "--phase", "-1"], 2, r"phase"),
    ([*CONDUCTIVITY, "1", "2", "3"], 2, r"conductivities must have exactly 2 value\(s\).*received 3"),
    ([*CONDUCTIVITY, "1", "-2"], 2, r"conductivities must all be positive"),
    (["evaluate", "{volume.npy}", "-o", "{new.json}", "--axes", "5"], 2, r"--axes"),
    (["evaluate", "{not_an_image.png}", "-o", "{new.json}"], 2, r"not a readable image"),
    (["evaluate", "{volume.npy}", "-o", "{missing_folder}/m.json"], 2, r"missing_folder does not exist"),
    (["evaluate", "{volume.npy}", "-o", "{existing.json}"], 2, r"existing.json exists; pass --force"),
    (
        ["evaluate", "{volume.npy}", "-o", "{new.json}", "--reference", "{truncated.tif}"],
        2,
        r"not a readable TIFF",
    ),
    # --- study
    (["study", "{missing.toml}", "-o", "{out}"], 2, r"missing.toml"),
    (["study", "{study.toml}", "-o", "{out}"], 2, r"study.toml.*(TOML|toml)"),
    (["study", "{good.png}", "-o", "{out}"], 2, r"good.png"),
    (["study", "-o", "{a_file}"], 2, r"a_file exists and is not a folder"),
    # --- regress
    (["regress", "{missing_study}", "--baseline", "{baseline.json}"], 2, r"missing_study"),
    (["regress", "{folder}", "--baseline", "{baseline.json}"], 2, r"folder/metrics.csv does not exist"),
    (["regress", "{study}", "--baseline", "{baseline.json}"], 2, r"baseline.json is not valid JSON"),
    (["regress", "{study}", "--write-baseline", "{existing.json}"], 2, r"existing.json exists; pass --force"),
]


def _fill(argv: list[str], folder: Path) -> list[str]:
    return [re.sub(r"\{([^}]+)\}", lambda m: str(folder / m.group(1)), a) for a in argv]


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("argv, status, pattern", CASES, ids=[" ".join(c[0][:4]) for c in CASES])
def test_bad_input_is_one_line_and_leaves_nothing(files, tmp_path, capsys, caplog, argv, status, pattern):
    folder = tmp_path / "work"
    shutil.copytree(files, folder)
    before = _listing(folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(_fill(argv, folder)) == status
    # nothing else reaches the terminal: no warning, no library log message
    assert not caught, [str(w.message) for w in caught]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"swnn {argv[0]}: error: "), err
    assert re.search(pattern, err), err
    assert _listing(folder) == before  # no output, no temporary file, no checkpoint
    assert not (folder / "pwned").exists()  # no pickled payload ran


def test_the_table_covers_every_command():
    counts = {
        command: sum(c[0][0] == command for c in CASES)
        for command in ("train", "generate", "evaluate", "study", "regress")
    }
    assert min(counts.values()) >= 2 and sum(counts.values()) >= 30, counts


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root may write anywhere")
def test_read_only_output_folder(files, tmp_path, capsys):
    folder = tmp_path / "work"
    shutil.copytree(files, folder)
    locked = folder / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        argv = ["train", str(folder / "good.png"), "-o", str(locked / "m.pt"), *TINY]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "locked" in err and "writable" in err and "Traceback" not in err
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_ctrl_c_in_train_keeps_a_checkpoint_and_the_rerun_resumes(files, tmp_path, capsys, monkeypatch):
    import swnn.training

    folder = tmp_path / "work"
    shutil.copytree(files, folder)
    real_step, calls = swnn.training.TrainingState.step, []

    def step(self, interrupt_at=None):
        calls.append(1)
        if interrupt_at is not None and len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return real_step(self)

    model = folder / "m.pt"
    argv = ["train", str(folder / "good.png"), "-o", str(model), *TINY, "--iterations", "5"]
    monkeypatch.setattr(swnn.training.TrainingState, "step", lambda self: step(self, interrupt_at=3))
    assert main(argv) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert not model.exists()
    import torch

    assert torch.load(f"{model}.ckpt", weights_only=True)["iteration"] == 2  # two iterations were done
    calls.clear()
    monkeypatch.setattr(swnn.training.TrainingState, "step", lambda self: step(self))
    assert main(argv) == 0
    assert len(calls) == 3  # the rerun did the three iterations left
    assert model.exists() and not Path(f"{model}.ckpt").exists()


def test_ctrl_c_in_generate_leaves_nothing(files, tmp_path, capsys, monkeypatch):
    import swnn.noise

    folder = tmp_path / "work"
    shutil.copytree(files, folder)
    before = _listing(folder)
    real_region, calls = swnn.noise.NoiseField.region, []

    def region(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # after the first block was written
            raise KeyboardInterrupt
        return real_region(self, *args, **kwargs)

    monkeypatch.setattr(swnn.noise.NoiseField, "region", region)
    for suffix in (".npy", ".tif", ".zarr"):
        calls.clear()
        argv = ["generate", str(folder / "model.pt"), "-o", str(folder / f"v{suffix}"), "--size", "16"]
        assert main([*argv, "--block", "8", "--quiet"]) == 130
        assert "interrupted" in capsys.readouterr().err
        assert _listing(folder) == before, suffix
