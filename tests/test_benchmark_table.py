"""benchmarks/table.py on a hand-made pytest-benchmark JSON: the Eq. 22 fit and the markdown rows."""

from __future__ import annotations

import json

import pytest

from benchmarks.table import fit_eq22, load_results, main, predict_eq22, render

# Times lying exactly on T = c + τ·(N/128)³: the least-squares fit must return τ and c to round-off.
TAU, OVERHEAD = 0.25, 1.5
INFO = {"device": "cpu", "cpu": "Test CPU", "threads": 2, "commit": "abc1234"}


def _benchmark(module: str, test: str, params: dict, mean: float, **extra) -> dict:
    param = "-".join(str(v) for v in params.values())
    return {
        "name": f"{test}[{param}]",
        "fullname": f"benchmarks/{module}.py::{test}[{param}]",
        "params": params,
        "stats": {"mean": mean, "rounds": 1},
        "extra_info": {**INFO, **extra},
    }


def _results() -> dict:
    generation = [
        _benchmark(
            "bench_generation",
            "test_generate_volume",
            {"size": n},
            OVERHEAD + TAU * (n / 128) ** 3,
            peak_rss_mib=100.0 + n,
        )
        for n in (128, 512, 1024)
    ]
    training = [
        _benchmark(
            "bench_reconstruction",
            "test_training_iteration",
            {"size": 128, "precision": "bf16", "profile": "quick"},
            0.5,
        )
    ]
    descriptors = [
        _benchmark(
            "bench_descriptors",
            "test_s2_vs_porespy",
            {"size": 128},
            4.0,
            ours_s=0.1,
            porespy_s=4.0,
            speedup=40.0,
        )
    ]
    return {"benchmarks": generation + training + descriptors, "datetime": "2026-01-01T00:00:00"}


def test_fit_recovers_tau_and_overhead():
    sizes = [128, 512, 1024]
    fit = fit_eq22(sizes, [OVERHEAD + TAU * (n / 128) ** 3 for n in sizes])
    # exact data: only round-off of a 3×2 least-squares solve (~1e-13 s)
    assert fit.tau_rec == pytest.approx(TAU, abs=1e-9)
    assert fit.overhead == pytest.approx(OVERHEAD, abs=1e-9)
    assert fit.max_residual < 1e-9
    assert predict_eq22(fit, 512, 10, 250.0) == pytest.approx(250.0 + 10 * (OVERHEAD + 64 * TAU), abs=1e-9)
    with pytest.raises(ValueError, match="two distinct"):
        fit_eq22([512, 512], [1.0, 1.0])


def test_markdown_rows_and_cli(tmp_path):
    source = tmp_path / "results-test.json"
    source.write_text(json.dumps(_results()))
    other = tmp_path / "notes.json"
    other.write_text(json.dumps({"not": "a benchmark"}))
    cases, sources, skipped = load_results([source, other])
    assert sources == [source] and skipped == [other] and len(cases) == 5

    text = render(cases, sources)
    assert "| generation 512³ (swnn generate → zarr) | 17.5 s, peak 612 MiB | 16–18 s |" in text
    assert "| generation 1024³ (swnn generate → zarr) | 130 s, peak 1124 MiB | 140–157 s |" in text
    assert "training, quick profile, bf16, total (500 it), estimated from s/it | 250 s" in text
    assert "| training, paper profile, fp32, per iteration | not measured |" in text
    assert "| 0.25 | 1.5 |" in text  # τ_rec and c of the fit
    # N = 512, k = 10: 250 s + 10 × (1.5 + 64 × 0.25) s
    assert f"| 512³ | 10 | {250 + 10 * (OVERHEAD + 64 * TAU):.0f} s (results-test.json) |" in text
    assert "speedup=40" in text and "Test CPU, 2 threads, commit abc1234" in text
    assert "## Conductivity\n\nnot measured" in text

    out = tmp_path / "TABLE-test.md"
    assert main([str(source), str(other), "-o", str(out)]) == 0
    assert out.read_text() == text
    assert main([str(tmp_path / "missing.json")]) == 2
