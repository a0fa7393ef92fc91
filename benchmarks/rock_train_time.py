"""Seconds per training iteration on this machine's CPU for each setting of the real-rock section table.

Median of iterations 2–4 of each setting (docs/results.md, "Berea: the training section"), trained on slice 200
of the Berea scan (or its three orthogonal slices); the training is stopped after 4 iterations, so no model is
written. Needs ../shared/data/berea.

    python -m benchmarks.rock_train_time OUT.jsonl THREADS [WORD]

With WORD, only the settings whose name contains it (e.g. ``dilated``).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from swnn._device import resolve_precision
from swnn.api import training_input
from swnn.training import PROFILES, TrainingCallback, train

DILATED = (1, 1, 2, 2, 4, 4, 1, 1)  # receptive field 33 (the profile's 8 blocks: 17)


class Stop(Exception):
    """Ends the training after the timed iterations."""


class Clock(TrainingCallback):
    """Wall-clock time at the start and after each iteration; stops after the fourth."""

    def on_start(self, state, start):
        self.t = [time.perf_counter()]

    def on_iteration(self, state, done, loss):
        self.t.append(time.perf_counter())
        if done >= 4:
            raise Stop


def main() -> None:
    torch.set_num_threads(int(sys.argv[2]))
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "berea"
    # read as the study reads its references: labels 0..n-1, pores = 0
    slice_, _, _ = training_input(data / "berea_slice_z200.png")
    three, _, _ = training_input(data / "berea_400.zip", slices=["0:200", "1:200", "2:200"])
    settings = {
        "64² (rock of 21f2909)": ({"section": 64}, slice_),
        "64², cd": ({"section": 64, "curve_directions": True}, slice_),
        "three slices, 64², cd": ({"section": 64, "curve_directions": True}, three),
        "128², cd": ({"curve_directions": True, "section": 128}, slice_),
        "three slices, 128², cd": ({"curve_directions": True, "section": 128}, three),
        "128², lineal 100": ({"section": 128, "lineal_weight": 100.0}, slice_),
        "128², 10 blocks": ({"section": 128, "blocks": 10}, slice_),
        "256² (rock)": ({"section": 256}, slice_),
        "three slices, 256²": ({"section": 256}, three),
        "64², dilated 1 1 2 2 4 4 1 1": ({"section": 64, "dilations": DILATED}, slice_),
        "128², dilated 1 1 2 2 4 4 1 1": ({"section": 128, "dilations": DILATED}, slice_),
        "256², dilated 1 1 2 2 4 4 1 1": ({"section": 256, "dilations": DILATED}, slice_),
        "256², scales 1 2 4 8": ({"section": 256, "scales": (1, 2, 4, 8)}, slice_),
        "400² (the whole slice)": ({"section": 400}, slice_),
    }
    if len(sys.argv) > 3:
        settings = {name: setting for name, setting in settings.items() if sys.argv[3] in name}

    with open(sys.argv[1], "a") as out:
        for name, (kw, img) in settings.items():
            clock = Clock()
            try:
                train(
                    img,
                    config=PROFILES["rock"].replace(iterations=500, **kw),
                    phase=0,
                    device="cpu",
                    progress=False,
                    callbacks=[clock],
                )
            except Stop:
                pass
            d = np.diff(clock.t)
            rec = {
                "setting": name,
                "first_s": round(d[0], 2),
                "seconds_per_iteration": round(float(np.median(d[1:])), 3),
                "threads": torch.get_num_threads(),
                "precision": resolve_precision("auto", torch.device("cpu")),
            }
            rec["estimate_500_min"] = round(500 * rec["seconds_per_iteration"] / 60, 1)
            print(json.dumps(rec, ensure_ascii=False), file=out, flush=True)
            print(rec, flush=True)


if __name__ == "__main__":
    main()
