"""Seconds per Anderson mixing of the permeability run of any checkout, at the size of a given sample.

It times ``physics._anderson.Anderson`` of the checkout found first on ``PYTHONPATH``, at depth 10, on a state
of 19 × NODES float32 populations (the central 256³ Berea crop has 3.3 million pore nodes), as the mixed phase of
:func:`physics.permeability` calls it: a block of steps (here a cheap affine map of the state in place), then one
mixing. Each round is 16 mixings; it appends one JSON line per round to ``OUT`` with the mean of mixings 12–16
(the history full) and the total of the 16 (the mixed phase of that crop has 14). Run it from each checkout in
turn, alternating, so that both see the same state of the machine:

    cd CHECKOUT && PYTHONPATH=. python PATH/TO/benchmarks/anderson_rate.py OUT.jsonl LABEL [NODES] [ROUNDS]

It works with the mixing that returns the next state (``mix(x, g)``, with ``copy_state``) and with the one that
overwrites the state in place (``start(state)``, then ``mix(state)``).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

_MIXINGS = 16


def _round(nodes: int) -> list[float]:
    from physics import _anderson

    state = np.random.default_rng(0).standard_normal((19, nodes)).astype(np.float32)
    mixing, times = _anderson.Anderson(10), []
    in_place = hasattr(mixing, "start")
    if in_place:
        mixing.start(state)
    else:
        x = _anderson.copy_state(state)
    for _ in range(_MIXINGS):
        state *= np.float32(0.999)  # the block of steps
        state += np.float32(1e-3)
        start = time.perf_counter()
        if in_place:
            mixing.mix(state)
        else:
            x = mixing.mix(x, _anderson.copy_state(state))
            state[...] = x
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str]) -> None:
    out, label = argv[0], argv[1]
    nodes = int(argv[2]) if len(argv) > 2 else 3_300_000
    rounds = int(argv[3]) if len(argv) > 3 else 2
    _round(1_000)  # compiles or loads the numba passes
    with open(out, "a") as stream:
        for _ in range(rounds):
            times = _round(nodes)
            line = {
                "label": label,
                "nodes": nodes,
                "depth": 10,
                "mean_of_mixings_12_16_s": round(float(np.mean(times[11:])), 4),
                "total_of_16_s": round(float(np.sum(times)), 3),
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            stream.write(json.dumps(line) + "\n")
            stream.flush()
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
