"""`swnn regress` (reports.regress): a check with a known false-alarm rate and a known power.

The study folders here are hand-made ``metrics.csv`` files of normal samples, so that the rule's error rates
can be simulated against what reports.statistics computes.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest

from reports import regress
from swnn.cli import main

SIGMA = {"fraction_error": 0.004, "s2_rmse": 0.002, "lineal_path_rmse": 0.004}


def _study(
    folder,
    rng,
    *,
    n=24,
    shift=None,
    runs=("a / stochastic", "b / stochastic"),
    size=64,
    ratios=None,
    device=None,
):
    """A study folder whose samples' measures are normal around fixed means (plus ``shift`` per measure)."""
    shift = shift or {}
    rows = []
    for run in runs:
        reference, condition = run.split(" / ")
        for i in range(n):
            for metric, sigma in SIGMA.items():
                base = 0.0 if metric == "fraction_error" else 0.01
                value = base + shift.get(metric, 0.0) + sigma * rng.standard_normal()
                rows.append((reference, condition, "sample", i, metric, None, value))
            for metric, values in (ratios or {}).items():
                rows.append((reference, condition, "sample", i, metric, 0, values[i]))
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        rows, columns=["reference", "condition", "role", "sample", "metric", "axis", "value"]
    )
    frame.to_csv(folder / "metrics.csv", index=False)
    (folder / "study.json").write_text(
        json.dumps({"name": "synthetic", "settings": {"size": size, "samples": n}, "device": device})
    )
    return folder


def test_an_unchanged_code_rarely_cries_wolf(tmp_path):
    # 200 reruns of an unchanged study against one baseline: the family false-alarm rate is at most 1%; the
    # count of alarms is binomial, so 2 + 4·sqrt(200·0.01) ≈ 7.7 bounds it with overwhelming probability.
    rng = np.random.default_rng(11)
    baseline = regress.write_baseline(_study(tmp_path / "base", rng), tmp_path / "baseline.json")
    alarms = sum(not regress.check(_study(tmp_path / f"s{i}", rng), baseline).passed for i in range(200))
    assert alarms <= 7


def test_a_one_tolerance_degradation_is_caught_with_the_stated_power(tmp_path):
    rng = np.random.default_rng(12)
    baseline = regress.write_baseline(_study(tmp_path / "base", rng), tmp_path / "baseline.json")
    worse = {"s2_rmse": regress.TOLERANCES["s2_rmse"]}
    caught, powers = 0, []
    for i in range(100):
        report = regress.check(_study(tmp_path / f"s{i}", rng, shift=worse), baseline)
        change = next(c for c in report.changes if c.run == "a / stochastic" and c.metric == "s2_rmse")
        powers.append(change.power)
        caught += change.status == "regressed"
    # σ = 0.002 against a tolerance of 0.005 with 24 + 24 samples: the power is near 1, and it is judged
    assert min(powers) >= regress.POWER
    # the power is computed from the baseline's spread; the simulated rate must not fall below it by more
    # than the binomial 4σ of 100 trials
    expected = float(np.mean(powers))
    assert caught >= 100 * expected - 4 * math.sqrt(100 * expected * (1 - expected)) - 1


def test_a_shift_of_the_fraction_either_way_away_from_the_target_regresses(tmp_path):
    rng = np.random.default_rng(13)
    baseline = regress.write_baseline(_study(tmp_path / "base", rng), tmp_path / "baseline.json")
    for sign in (+1, -1):
        report = regress.check(
            _study(tmp_path / f"s{sign}", rng, shift={"fraction_error": sign * 0.02}), baseline
        )
        status = {(c.run, c.metric): c.status for c in report.changes}
        assert status[("a / stochastic", "fraction_error")] == "regressed"
        assert not report.passed


def test_a_significant_change_smaller_than_half_the_tolerance_passes(tmp_path):
    # 2000 samples make a shift of 0.2 tolerance highly significant; it is still no regression
    rng = np.random.default_rng(14)
    baseline = regress.write_baseline(_study(tmp_path / "base", rng, n=2000), tmp_path / "baseline.json")
    shift = {"s2_rmse": 0.2 * regress.TOLERANCES["s2_rmse"]}
    report = regress.check(_study(tmp_path / "s", rng, n=2000, shift=shift), baseline)
    change = next(c for c in report.changes if c.run == "a / stochastic" and c.metric == "s2_rmse")
    assert change.pvalue < 1e-6 and change.status == "ok" and report.passed


def test_an_improvement_is_reported_not_failed(tmp_path):
    rng = np.random.default_rng(15)
    baseline = regress.write_baseline(
        _study(tmp_path / "base", rng, shift={"s2_rmse": 0.01}), tmp_path / "baseline.json"
    )
    report = regress.check(_study(tmp_path / "s", rng), baseline)
    assert report.passed
    assert {c.status for c in report.changes if c.metric == "s2_rmse"} == {"improved"}


def test_measures_without_power_are_not_judged_and_say_their_power(tmp_path):
    rng = np.random.default_rng(16)
    baseline = regress.write_baseline(_study(tmp_path / "base", rng, n=3), tmp_path / "baseline.json")
    # even a large degradation is not judged with 3 + 3 samples: the check says so instead of passing it
    report = regress.check(_study(tmp_path / "s", rng, n=3, shift={"s2_rmse": 0.05}), baseline)
    assert report.passed
    judged = {c.status for c in report.changes}
    assert judged == {"not judged"}
    assert all(c.power < regress.POWER for c in report.changes)
    assert "not judged (power" in report.text() and "power " in report.text()


def test_permeability_is_judged_as_a_percolation_probability_and_ln_k_of_the_percolating(tmp_path):
    rng = np.random.default_rng(17)
    n = 100  # a change of the probability by 0.2 from 1 is judged (power over 90%) from about 80 samples
    flowing = np.exp(rng.normal(0.0, 0.05, n))
    baseline = regress.write_baseline(
        _study(tmp_path / "base", rng, n=n, ratios={"permeability_ratio": flowing}), tmp_path / "b.json"
    )
    stored = json.loads((tmp_path / "b.json").read_text())["runs"]["a / stochastic"]
    assert stored["percolation_probability"] == [1.0] * n
    assert stored["permeability_ratio"] == pytest.approx(np.log(flowing).tolist())
    # half of the samples lose their flow path: the probability regresses, ln k of the rest does not
    half = np.where(np.arange(n) % 2 == 0, 0.0, np.exp(rng.normal(0.0, 0.05, n)))
    report = regress.check(_study(tmp_path / "s", rng, n=n, ratios={"permeability_ratio": half}), baseline)
    status = {(c.run, c.metric): c.status for c in report.changes}
    assert status[("a / stochastic", "percolation_probability")] == "regressed"
    assert status[("a / stochastic", "permeability_ratio")] == "ok"


def test_a_study_of_other_runs_or_another_sample_side_is_not_comparable(tmp_path, capsys):
    rng = np.random.default_rng(18)
    baseline = regress.write_baseline(_study(tmp_path / "base", rng), tmp_path / "baseline.json")
    other_runs = _study(tmp_path / "runs", rng, runs=("a / stochastic",))
    with pytest.raises(
        regress.NotComparable, match="runs of the baseline missing from the study: b / stochastic"
    ):
        regress.check(other_runs, baseline)
    assert main(["regress", str(other_runs), "--baseline", str(baseline)]) == 4
    assert "not comparable" in capsys.readouterr().err
    assert main(["regress", str(_study(tmp_path / "side", rng, size=96)), "--baseline", str(baseline)]) == 4
    # another number of samples is comparable: the power says what it buys
    assert main(["regress", str(_study(tmp_path / "n", rng, n=30)), "--baseline", str(baseline)]) == 0


def test_a_study_in_another_precision_is_not_comparable(tmp_path, capsys):
    # models trained in bfloat16 and in float32 are different reconstructions: the check refuses to judge them
    rng = np.random.default_rng(20)
    base = _study(
        tmp_path / "base", rng, device={"training_precision": "bf16", "generation_precision": "bf16"}
    )
    baseline = regress.write_baseline(base, tmp_path / "baseline.json")
    fp32 = _study(
        tmp_path / "fp32", rng, device={"training_precision": "fp32", "generation_precision": "fp32"}
    )
    with pytest.raises(regress.NotComparable, match="training ran in fp32, the baseline's in bf16"):
        regress.check(fp32, baseline)
    assert main(["regress", str(fp32), "--baseline", str(baseline)]) == 4
    assert "generation ran in fp32" in capsys.readouterr().err
    same = _study(
        tmp_path / "same", rng, device={"training_precision": "bf16", "generation_precision": "bf16"}
    )
    assert main(["regress", str(same), "--baseline", str(baseline)]) == 0
    # a study or baseline that does not record its precision is compared as before
    assert main(["regress", str(_study(tmp_path / "none", rng)), "--baseline", str(baseline)]) == 0


def test_the_command_line_exits_1_on_a_regression_and_0_otherwise(tmp_path, capsys):
    rng = np.random.default_rng(19)
    base = _study(tmp_path / "base", rng)
    baseline = tmp_path / "baseline.json"
    assert main(["regress", str(base), "--write-baseline", str(baseline)]) == 0
    assert main(["regress", str(base), "--baseline", str(baseline)]) == 0  # a study against itself
    worse = _study(tmp_path / "worse", rng, shift={"lineal_path_rmse": 0.05})
    assert main(["regress", str(worse), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED:" in out and "lineal_path_rmse" in out and "FAILED" in out


def test_an_old_baseline_format_is_not_comparable(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"format": "swnn-regress-baseline/1", "runs": {}}))
    with pytest.raises(regress.NotComparable, match="rewrite it"):
        regress.check(_study(tmp_path / "s", np.random.default_rng(0)), old)


def test_a_measure_without_spread_has_full_power_and_is_judged(tmp_path):
    # every sample with the same conductivity ratio (e.g. a solver's exact value on identical samples): a
    # rerun detects a one-tolerance change with certainty, and an unchanged rerun passes
    rng = np.random.default_rng(5)
    same = {"conductivity_ratio": np.ones(24)}
    folder = _study(tmp_path / "base", rng, ratios=same)
    rows = {(r["run"], r["metric"]): r for r in regress.self_power(pd.read_csv(folder / "metrics.csv"))}
    row = rows[("a / stochastic", "conductivity_ratio")]
    assert row["power"] == 1.0 and row["samples_needed"] == 2
    baseline = regress.write_baseline(folder, tmp_path / "baseline.json")
    assert regress.check(_study(tmp_path / "same", rng, ratios=same), baseline).passed
    worse = {"conductivity_ratio": np.full(24, math.exp(0.2))}  # twice the tolerance of ln ratio
    report = regress.check(_study(tmp_path / "worse", rng, ratios=worse), baseline)
    assert not report.passed


def test_a_folder_of_baselines_gives_the_one_of_the_study_precision(tmp_path, capsys):
    # one baseline per precision in a folder: a study is compared with the one of its own precision
    rng = np.random.default_rng(21)
    bf16 = {"training_precision": "bf16", "generation_precision": "bf16"}
    fp32 = {"training_precision": "fp32", "generation_precision": "fp32"}
    folder = tmp_path / "baselines"
    folder.mkdir()
    regress.write_baseline(_study(tmp_path / "b", rng, device=bf16), folder / "default.json")
    regress.write_baseline(_study(tmp_path / "f", rng, device=fp32), folder / "default-fp32.json")
    (folder / "notes.json").write_text("[1, 2]")  # not a baseline: ignored
    study = _study(tmp_path / "s", rng, device=fp32)
    assert regress.select_baseline(study, folder) == folder / "default-fp32.json"
    assert regress.check(study, folder).baseline == str(folder / "default-fp32.json")
    assert main(["regress", str(study), "--baseline", str(folder)]) == 0
    assert "default-fp32.json" in capsys.readouterr().out
    # worse in float32: the float32 baseline catches it
    worse = _study(tmp_path / "w", rng, device=fp32, shift={"lineal_path_rmse": 0.05})
    assert main(["regress", str(worse), "--baseline", str(folder)]) == 1
    capsys.readouterr()
    # no baseline of the study's side: not comparable, with what the folder holds
    side = _study(tmp_path / "side", rng, device=fp32, size=96)
    with pytest.raises(
        regress.NotComparable, match="no baseline in .* matches .*side 96.*holds: default-fp32"
    ):
        regress.select_baseline(side, folder)
    assert main(["regress", str(side), "--baseline", str(folder)]) == 4
    # two baselines of the same precision: ambiguous, not guessed
    regress.write_baseline(_study(tmp_path / "f2", rng, device=fp32), folder / "other-fp32.json")
    with pytest.raises(regress.NotComparable, match="2 baselines .* match"):
        regress.select_baseline(study, folder)


def test_the_family_keeps_every_measure_with_power_at_its_level(tmp_path):
    # two runs with three measures each; the fractions' spread gives a one-tolerance power of 0.88 at the
    # Bonferroni level 1%/6 of all six measures and 0.94 at 1%/2 (sigma 0.0076, 24 samples each; computed with
    # planned_power), while S2 and lineal path spread too widely for any power. The weak measures leave the
    # family one at a time, so the fractions are judged at 1%/2 with the stated power; each measure left out
    # reports the power, under 90%, it left with
    z = np.random.default_rng(22).standard_normal(24)
    z = (z - z.mean()) / z.std(ddof=1)
    sigma = {"fraction_error": 0.0076, "s2_rmse": 0.05, "lineal_path_rmse": 0.1}
    rows = [
        (
            reference,
            "stochastic",
            "sample",
            i,
            metric,
            None,
            (0.0 if metric == "fraction_error" else 0.2) + s * z[i],
        )
        for reference in ("a", "b")
        for metric, s in sigma.items()
        for i in range(24)
    ]
    for name in ("base", "study"):
        folder = tmp_path / name
        folder.mkdir()
        frame = pd.DataFrame(
            rows, columns=["reference", "condition", "role", "sample", "metric", "axis", "value"]
        )
        frame.to_csv(folder / "metrics.csv", index=False)
        (folder / "study.json").write_text(json.dumps({"name": "s", "settings": {"size": 64, "samples": 24}}))
    baseline = regress.write_baseline(tmp_path / "base", tmp_path / "baseline.json")
    report = regress.check(tmp_path / "study", baseline)
    judged = {(c.run, c.metric) for c in report.changes if c.status != "not judged"}
    assert judged == {("a / stochastic", "fraction_error"), ("b / stochastic", "fraction_error")}
    for change in report.changes:
        if change.status == "not judged":
            assert change.power < regress.POWER
        else:
            assert change.power >= regress.POWER
            assert change.power == pytest.approx(
                regress.planned_power("fraction_error", 0.0076 * z, n_study=24, alpha=regress.ALPHA / 2)
            )
