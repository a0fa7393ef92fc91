"""The representative-volume stage of a study: REV curves of each 3D truth and of one large sample."""

from __future__ import annotations

import dataclasses

import numpy as np

from .cache import _Cache, _key
from .plan import Plan

__all__ = ["REV_SAMPLE_INDEX", "rev_records"]

REV_SAMPLE_INDEX = 1_000_000
"""Sample index of the large sample (its noise is independent of the study's samples 0, 1, …)."""

_MAX_PIECES = {"fraction": 64, "conductivity": 8}


def _sizes(side: int) -> tuple[int, ...]:
    """Powers of two from 8 up to half of ``side`` (at least eight disjoint pieces at the largest)."""
    sizes, s = [], 8
    while s <= side // 2:
        sizes.append(s)
        s *= 2
    return tuple(sizes)


def _curves(volume: np.ndarray, sizes, *, phase: int, props, conductivities, device=None) -> dict:
    from reports.rev import rev_curve

    return {
        prop: rev_curve(
            volume,
            sizes,
            phase=phase,
            prop=prop,
            conductivities=conductivities,
            max_pieces=_MAX_PIECES[prop],
            device=device,
        ).to_dict()
        for prop in props
    }


def rev_records(study, plan: Plan, cache: _Cache, *, device, progress: bool = False) -> dict:
    """``{reference name: {"truth": {prop: RevCurve}, "sample": {prop: RevCurve}}}``, cached.

    The truth's curve is measured on the reference's own 3D volume; the sample's on one sample of twice the
    samples' side of the reference's first stochastic model (its first model when all are controlled).
    Fraction always; the effective conductivity along axis 0 when the study measures it, at the study's
    conductivities with the study phase as the second.
    """
    from reports.rev import RevCurve

    from .stages import generate_sample

    props = ("fraction", "conductivity") if "conductivity" in plan.groups else ("fraction",)
    conductivities = tuple(study.physics.conductivities)
    code = plan.samples[0].settings.get("code") if plan.samples else None
    out = {}
    bar = plan.references
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(bar, desc="representative volume", unit="reference", dynamic_ncols=True)
    for ref in bar:
        if not ref.has_volume:
            continue
        name = ref.settings.name
        curves = {}
        truth_sizes = _sizes(min(ref.truth.shape))
        payload = {
            "reference": ref.sha256,
            "phase": ref.settings.phase,
            "sizes": truth_sizes,
            "props": props,
            "conductivities": conductivities,
            "code": code,
        }

        def measured(key: str, volume, sizes, ref=ref) -> dict:
            """The cached curves ``key``, measured on ``volume()`` when missing."""
            record = cache.get("evaluations", key)
            if record is None:
                result = _curves(
                    volume(),
                    sizes,
                    phase=ref.settings.phase,
                    props=props,
                    conductivities=conductivities,
                    device=device,
                )
                record = cache.put("evaluations", key, {"result": result, "seconds": 0.0})
            return {p: RevCurve.from_dict(c) for p, c in record["result"].items()}

        curves["truth"] = measured(_key("rev-truth", payload), lambda ref=ref: ref.truth, truth_sizes)
        models = [s for s in plan.samples if s.reference == name]
        stochastic = [s for s in models if not s.condition.controlled] or models
        if stochastic:
            first = stochastic[0]
            side = 2 * study.size
            settings = {**first.settings, "sample": REV_SAMPLE_INDEX, "size": side}
            sample_key = _key("sample", settings)
            item = dataclasses.replace(
                first,
                key=sample_key,
                index=REV_SAMPLE_INDEX,
                size=side,
                settings=settings,
                path=cache.path("samples", sample_key, ".npy"),
            )
            sample = generate_sample(item, cache, device=device)
            sample_sizes = _sizes(side)
            key = _key("rev-sample", {**payload, "sample": sample_key, "sizes": sample_sizes})
            curves["sample"] = measured(
                key, lambda path=sample.path: np.load(path, allow_pickle=False), sample_sizes
            )
        out[name] = curves
    return out
