"""Tests of reports.statistics: closed forms, exact invariants, scipy on the same input, seeded simulations.

Simulated rates are checked within 4 binomial standard deviations, sqrt(p(1 − p)/R) for R repeats: a correct
implementation fails such a check with probability 6e-5, while the errors the checks are meant to catch (the
normal approximation of the power, a wrong df, a one-sided p-value where a two-sided one is due) move the rate
by more than that.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from reports.statistics import (
    ShiftTest,
    agreement,
    binomial_agreement,
    decide,
    fraction_std,
    holm,
    integral_range,
    median_interval,
    power,
    proportion,
    proportion_power,
    proportion_test,
    rev_size,
    s2_map,
    samples_for_power,
    shift_test,
    summarize,
)

REPEATS = 2000


def _band(p: float, repeats: int = REPEATS) -> float:
    return 4 * math.sqrt(p * (1 - p) / repeats)


def _windows(image: np.ndarray, side: int) -> np.ndarray:
    """Phase fraction of each non-overlapping side × side window of a 2D image."""
    rows, cols = image.shape[0] // side, image.shape[1] // side
    return image[: rows * side, : cols * side].reshape(rows, side, cols, side).mean(axis=(1, 3)).ravel()


# --- summaries --------------------------------------------------------------------------------------------


def test_t_interval_covers_the_true_mean_at_its_confidence():
    rng = np.random.default_rng(20240601)
    values = rng.normal(3.0, 2.0, size=(REPEATS, 5))
    covered = 0
    for row in values:
        summary = summarize(row, confidence=0.95)
        covered += summary.ci_low <= 3.0 <= summary.ci_high
    assert abs(covered / REPEATS - 0.95) < _band(0.95)


def test_median_interval_is_the_order_statistics_of_the_binomial_closed_form():
    values = np.random.default_rng(3).lognormal(size=24)
    result = median_interval(values)
    ordered = np.sort(values)
    # n = 24: P(B ≤ 6) = 0.0113 ≤ 0.025 < P(B ≤ 7) = 0.0320 for B ~ Bin(24, ½), so j = 7
    tail = sum(math.comb(24, i) for i in range(7)) / 2**24
    assert (result.ci_low, result.ci_high) == (ordered[6], ordered[17])
    assert result.coverage == pytest.approx(1 - 2 * tail, rel=1e-12) and result.coverage >= 0.95
    assert result.median == np.median(values) and result.n == 24


@pytest.mark.parametrize("n", [6, 7, 8, 9, 12, 17, 24, 27, 40, 41])
def test_median_interval_agrees_with_scipy_quantile_test(n):
    values = np.random.default_rng(n).normal(size=n)
    ours = median_interval(values, confidence=0.95)
    theirs = stats.quantile_test(values, q=np.median(values), p=0.5).confidence_interval(0.95)
    assert (ours.ci_low, ours.ci_high) == (theirs.low, theirs.high)


def test_median_interval_without_enough_values_and_with_non_finite_ones():
    # [min, max] of 5 values covers the median with probability 1 − 2/2⁵ < 0.95: no interval
    few = median_interval([3.0, 1.0, 2.0, 5.0, 4.0])
    assert few.median == 3.0 and math.isnan(few.ci_low) and math.isnan(few.coverage)
    assert math.isnan(median_interval([]).median) and median_interval([]).n == 0
    six = median_interval([np.nan, 6.0, 1.0, np.inf, 2.0, 3.0, 4.0, 5.0])  # NaN and inf dropped
    assert six.n == 6 and (six.ci_low, six.ci_high) == (1.0, 6.0) and six.coverage == 1 - 2 / 2**6


def test_median_interval_covers_a_skewed_median_as_often_as_it_says():
    rng = np.random.default_rng(11)
    draws = rng.lognormal(size=(REPEATS, 24))  # true median e⁰ = 1
    hits = [(r.ci_low <= 1.0 <= r.ci_high) for r in map(median_interval, draws)]
    coverage = median_interval(draws[0]).coverage
    assert abs(np.mean(hits) - coverage) < 4 * _band(coverage)


def test_summary_of_a_hand_worked_sample_and_of_too_few_values():
    summary = summarize([1.0, 2.0, 3.0, np.nan, np.inf])  # non-finite values dropped
    t = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # t_{0.975} with 2 df in closed form: (2u − 1)/sqrt(2u(1 − u))
    half = t / math.sqrt(3)  # times std 1 over sqrt(n)
    assert (summary.n, summary.mean, summary.std) == (3, 2.0, 1.0)
    assert summary.ci_low == pytest.approx(2 - half, rel=1e-12)
    assert summary.ci_high == pytest.approx(2 + half, rel=1e-12)
    assert json.loads(json.dumps(summary.to_dict()))["ci_high"] == summary.ci_high
    one = summarize([5.0, np.nan])
    assert one.n == 1 and one.mean == 5.0 and math.isnan(one.std) and math.isnan(one.ci_low)
    none = summarize([])
    assert none.n == 0 and all(math.isnan(v) for v in (none.mean, none.std, none.ci_low, none.ci_high))


def test_clopper_pearson_closed_forms_and_scipy():
    for n in (1, 7, 40):
        # Beta(1, n) and Beta(n, 1) quantiles in closed form: the ends of the k = 0 and k = n intervals
        assert proportion(0, n).ci_high == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-12)
        assert proportion(n, n).ci_low == pytest.approx(0.025 ** (1 / n), rel=1e-12)
        assert (proportion(0, n).ci_low, proportion(n, n).ci_high) == (0.0, 1.0)
    for k, n, confidence in ((3, 10, 0.95), (17, 40, 0.9), (1, 2, 0.99)):
        expected = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
        result = proportion(k, n, confidence=confidence)
        assert result.p == k / n
        assert (result.ci_low, result.ci_high) == pytest.approx((expected.low, expected.high), rel=1e-10)
    empty = proportion(0, 0)
    assert math.isnan(empty.p) and (empty.ci_low, empty.ci_high) == (0.0, 1.0)


def test_clopper_pearson_coverage_is_at_least_nominal_for_every_p():
    n, k = 20, np.arange(21)
    intervals = [proportion(int(i), n) for i in k]
    low, high = np.array([c.ci_low for c in intervals]), np.array([c.ci_high for c in intervals])
    for p in np.linspace(0.005, 0.995, 199):  # exact coverage: sum of the binomial pmf over covering k
        coverage = stats.binom.pmf(k, n, p)[(low <= p) & (p <= high)].sum()
        assert coverage >= 0.95 - 1e-12


# --- shift tests and the family correction -------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["greater", "two-sided"])
def test_shift_test_equals_scipy_welch(alternative):
    rng = np.random.default_rng(7)
    study, baseline = rng.normal(0.3, 1.0, 6), rng.normal(0.0, 2.5, 11)
    result = shift_test(study, baseline, tolerance=0.5, alternative=alternative)
    expected = stats.ttest_ind(study, baseline, equal_var=False, alternative=alternative)
    assert result.difference == pytest.approx(study.mean() - baseline.mean(), rel=1e-12)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-10)
    assert result.df == pytest.approx(expected.df, rel=1e-10)
    assert (result.n_study, result.n_baseline, result.method) == (6, 11, "welch")


def test_shift_test_of_constant_samples():
    same = shift_test([1.0, 1.0], [1.0, 1.0, 1.0], tolerance=0.1, alternative="two-sided")
    assert (same.statistic, same.pvalue) == (0.0, 1.0)
    worse = shift_test([2.0, 2.0], [1.0, 1.0], tolerance=0.1, alternative="greater")
    assert (worse.statistic, worse.pvalue) == (math.inf, 0.0)
    better = shift_test([0.0, 0.0], [1.0, 1.0], tolerance=0.1, alternative="greater")
    assert better.pvalue == 1.0


def test_holm_on_hand_worked_families():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running max 0.06 at the end
    reject, adjusted = holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    np.testing.assert_array_equal(reject, [True, False, False, True])
    # 0.01·3, 0.02·2, 0.03·1 = 0.03, 0.04, 0.03 -> 0.03, 0.04, 0.04: all rejected; Bonferroni (3p): the first
    reject, adjusted = holm([0.01, 0.02, 0.03], alpha=0.05)
    np.testing.assert_allclose(adjusted, [0.03, 0.04, 0.04], rtol=1e-12)
    assert reject.all()
    _, adjusted = holm([0.6, 0.7])  # 1.2 and 0.7, capped at 1 and kept monotone
    np.testing.assert_array_equal(adjusted, [1.0, 1.0])
    reject, adjusted = holm([])
    assert reject.shape == adjusted.shape == (0,)


def test_holm_is_never_less_powerful_than_bonferroni():
    rng = np.random.default_rng(11)
    for _ in range(300):
        m = int(rng.integers(1, 12))
        p = rng.uniform(0, 0.05, m) ** rng.uniform(0.5, 2)
        reject, adjusted = holm(p, alpha=0.01)
        bonferroni = np.minimum(1, m * p)
        assert (adjusted <= bonferroni + 1e-15).all() and (adjusted >= p).all()
        assert (reject | ~(bonferroni <= 0.01)).all()
        order = np.argsort(p)
        assert (np.diff(adjusted[order]) >= 0).all()


def test_decide_needs_significance_and_half_the_tolerance():
    def test(d, pvalue, alternative="two-sided"):
        return ShiftTest(d, 0.01, 10.0, d / 0.01, pvalue, 0.1, alternative, 5, 5)

    tests = [
        test(0.02, 1e-6),  # significant, but a fifth of the tolerance: the same study on another machine
        test(0.2, 0.2),  # large but not significant
        test(-0.06, 1e-6),  # significant, beyond half the tolerance, two-sided: regressed
        test(-0.2, 1e-6, "greater"),  # an improvement of an error measure
        test(0.06, 1e-6, "greater"),
    ]
    np.testing.assert_array_equal(decide(tests, alpha=0.01), [False, False, True, False, True])
    # Holm: 0.001·5, 0.002·4, 0.0025·3, 0.003·2 -> adjusted at most 0.008, four rejected (Bonferroni: two)
    tests = [test(0.2, 0.002), test(0.2, 0.0025), test(0.2, 0.003), test(0.2, 0.001), test(0.2, 0.5)]
    np.testing.assert_array_equal(decide(tests, alpha=0.01), [True, True, True, True, False])
    assert decide([]).shape == (0,)


# --- power of the rule ------------------------------------------------------------------------------------

POWER_CASES = [  # sigma_study, n_study, sigma_baseline, n_baseline, tolerance, alpha, alternative, seed
    (1.0, 2, 1.0, 2, 3.0, 0.05, "greater", 101),  # power 0.40; the normal approximation says 0.53
    (1.0, 3, 1.0, 3, 2.0, 0.05, "greater", 102),
    (2.0, 4, 1.0, 10, 2.5, 0.05, "two-sided", 103),  # unequal spreads and sizes: Welch's df matters
    (1.0, 10, 1.0, 10, 1.0, 0.01, "two-sided", 104),
]


@pytest.mark.parametrize(
    ("sigma_s", "n_s", "sigma_b", "n_b", "tolerance", "alpha", "alternative", "seed"), POWER_CASES
)
def test_power_and_false_alarm_rate_match_the_simulated_rule(
    sigma_s, n_s, sigma_b, n_b, tolerance, alpha, alternative, seed
):
    rng = np.random.default_rng(seed)
    sizes = {"sigma_study": sigma_s, "n_study": n_s, "sigma_baseline": sigma_b, "n_baseline": n_b}
    for shift in (tolerance, 0.0):
        fired = 0
        for _ in range(REPEATS):
            study, baseline = rng.normal(shift, sigma_s, n_s), rng.normal(0.0, sigma_b, n_b)
            result = shift_test(study, baseline, tolerance=tolerance, alternative=alternative)
            fired += bool(decide([result], alpha=alpha)[0])
        expected = power(**sizes, tolerance=tolerance, alpha=alpha, alternative=alternative, shift=shift)
        assert abs(fired / REPEATS - expected) < _band(expected), (shift, fired / REPEATS, expected)
        if shift == 0:
            assert fired / REPEATS <= alpha + _band(alpha)


def test_power_with_many_samples_reaches_the_normal_closed_forms():
    # 10 000 + 10 000 samples: ŝe and df̂ hardly vary, so the rule is D > max(tolerance / 2, z·se)
    se = math.sqrt(2 / 10_000)
    sizes = {"sigma_study": 1.0, "n_study": 10_000, "sigma_baseline": 1.0, "n_baseline": 10_000}
    # the significance threshold dominates: Φ(tolerance/se − z_{0.99}), the textbook power
    tolerance = 3 * se
    result = power(**sizes, tolerance=tolerance, alpha=0.01, alternative="greater")
    assert result == pytest.approx(stats.norm.cdf(3 - stats.norm.isf(0.01)), abs=2e-3)
    # half the tolerance (3 se) beats z_{0.995}·se = 2.58 se: P(D > 3 se) + P(D < −3 se), D ~ N(6 se, se²)
    tolerance = 6 * se
    result = power(**sizes, tolerance=tolerance, alpha=0.01, alternative="two-sided")
    assert result == pytest.approx(stats.norm.cdf(3) + stats.norm.cdf(-9), abs=1e-9)


def test_samples_for_power_is_the_smallest_sufficient_number():
    options = {"tolerance": 1.0, "alpha": 0.01, "alternative": "two-sided"}
    n = samples_for_power(sigma=1.0, n_baseline=50, target=0.9, **options)
    at = {
        m: power(sigma_study=1.0, n_study=m, sigma_baseline=1.0, n_baseline=50, **options) for m in (n - 1, n)
    }
    assert at[n] >= 0.9 > at[n - 1]
    # large samples: se = sqrt(1/n + 1/nb) = tolerance / (z_{0.99} + z_{0.9}) with t ≈ z (within 0.2 %)
    n = samples_for_power(sigma=1.0, n_baseline=20_000, tolerance=0.05, alpha=0.01, alternative="greater")
    se = 0.05 / (stats.norm.isf(0.01) + stats.norm.isf(0.1))
    assert n == pytest.approx(1 / (se**2 - 1 / 20_000), rel=2e-3)
    # the baseline alone too noisy: as n_study grows, se -> 1/√10 = 0.32, and the significance threshold
    # t_{0.995, 9}·0.32 = 1.03 exceeds the tolerance: the power stays below one half
    assert samples_for_power(sigma=1.0, n_baseline=10, **options) is None
    assert samples_for_power(sigma=1.0, n_baseline=50, n_max=10, **options) is None
    # both sides planned with n samples: se = sqrt(2/n), never limited by a fixed baseline
    n = samples_for_power(sigma=1.0, n_baseline=None, **options)
    at = {
        m: power(sigma_study=1.0, n_study=m, sigma_baseline=1.0, n_baseline=m, **options) for m in (n - 1, n)
    }
    assert at[n] >= 0.9 > at[n - 1]


# --- proportions ------------------------------------------------------------------------------------------


def test_proportion_test_equals_fisher_exact():
    result = proportion_test(28, 40, 54, 60, tolerance=0.2)
    expected = stats.fisher_exact([[28, 12], [54, 6]])
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-12)
    assert result.difference == pytest.approx(28 / 40 - 54 / 60, rel=1e-12)
    assert result.se == pytest.approx(math.sqrt(0.7 * 0.3 / 40 + 0.9 * 0.1 / 60), rel=1e-12)
    assert (result.df, result.alternative, result.method) == (math.inf, "two-sided", "fisher")


def test_proportion_power_equals_enumeration_with_scipy_fisher():
    ns, nb, pb, ps, tolerance, alpha = 8, 12, 0.3, 0.8, 0.3, 0.05
    expected = 0.0
    for ks in range(ns + 1):
        for kb in range(nb + 1):
            p = stats.fisher_exact([[ks, ns - ks], [kb, nb - kb]]).pvalue
            if p <= alpha and abs(ks / ns - kb / nb) > tolerance / 2:
                expected += stats.binom.pmf(ks, ns, ps) * stats.binom.pmf(kb, nb, pb)
    result = proportion_power(
        p_baseline=pb, p_study=ps, n_study=ns, n_baseline=nb, tolerance=tolerance, alpha=alpha
    )
    assert result == pytest.approx(expected, rel=1e-9)
    # p_study defaults to p_baseline + tolerance, or − tolerance where that would pass 1
    default = proportion_power(p_baseline=0.9, n_study=ns, n_baseline=nb, tolerance=0.3, alpha=alpha)
    explicit = proportion_power(
        p_baseline=0.9, p_study=0.6, n_study=ns, n_baseline=nb, tolerance=0.3, alpha=alpha
    )
    assert default == pytest.approx(explicit, rel=1e-12)  # 0.9 − 0.3 is 0.6000000000000001


def test_proportion_power_matches_the_simulated_rule():
    rng = np.random.default_rng(205)
    ns, nb, pb, ps, tolerance, alpha = 40, 60, 0.9, 0.7, 0.2, 0.01
    fired = 0
    for ks, kb in zip(rng.binomial(ns, ps, REPEATS), rng.binomial(nb, pb, REPEATS), strict=True):
        fired += bool(
            decide([proportion_test(int(ks), ns, int(kb), nb, tolerance=tolerance)], alpha=alpha)[0]
        )
    expected = proportion_power(
        p_baseline=pb, p_study=ps, n_study=ns, n_baseline=nb, tolerance=tolerance, alpha=alpha
    )
    assert abs(fired / REPEATS - expected) < _band(expected)


# --- agreement --------------------------------------------------------------------------------------------


def test_agreement_equals_scipy_welch_and_ks():
    rng = np.random.default_rng(31)
    samples, truth = rng.normal(0.5, 1.0, 8), rng.normal(0.0, 0.5, 30)
    result = agreement(np.append(samples, np.nan), truth, alpha=0.1)
    welch = stats.ttest_ind(samples, truth, equal_var=False)
    interval = welch.confidence_interval(confidence_level=0.9)
    assert result.pvalue == pytest.approx(welch.pvalue, rel=1e-10)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high), rel=1e-10)
    assert result.ks_pvalue == pytest.approx(stats.ks_2samp(samples, truth).pvalue, rel=1e-12)
    assert (result.n_samples, result.n_truth, result.dropped) == (8, 30, 1)
    assert result.verdict == ("differs" if welch.pvalue < 0.1 else "agrees")


def test_agreement_false_alarm_rate_and_interval_duality():
    rng = np.random.default_rng(32)
    differs = 0
    for _ in range(REPEATS):
        result = agreement(rng.normal(0, 1, 6), rng.normal(0, 1, 12), alpha=0.05)
        differs += result.verdict == "differs"
        # the interval excludes 0 exactly when the test rejects
        assert (result.ci_low > 0 or result.ci_high < 0) == (result.verdict == "differs")
    assert abs(differs / REPEATS - 0.05) < _band(0.05)  # Welch's test is close to exact for normal values


def test_agreement_undetermined_with_too_few_values():
    result = agreement([1.0, np.nan], [1.0, 2.0, 3.0])
    assert result.verdict == "undetermined" and result.n_samples == 1 and result.dropped == 1
    assert math.isnan(result.pvalue)
    assert math.isnan(agreement([1.0, 2.0, 3.0, 4.0], [1.0, 2.5, 3.0, 4.0, 6.0]).ks_pvalue)  # 4 < 5 values


@pytest.mark.parametrize(
    ("counts", "low", "high"),
    [  # Newcombe (1998), Stat. Med. 17, 873, Table II, method 10 (hybrid score), examples (a)-(f)
        ((56, 70, 48, 80), 0.0524, 0.3339),
        ((9, 10, 3, 10), 0.1705, 0.8090),
        ((6, 7, 2, 7), 0.0582, 0.8062),
        ((5, 56, 0, 29), -0.0381, 0.1926),
        ((0, 10, 0, 20), -0.1611, 0.2775),
        ((0, 10, 0, 10), -0.2775, 0.2775),
    ],
)
def test_binomial_agreement_interval_and_fisher(counts, low, high):
    result = binomial_agreement(*counts)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=5e-5)  # 4 printed decimals
    k1, n1, k2, n2 = counts
    assert result.pvalue == pytest.approx(
        stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue, rel=1e-12
    )
    assert result.verdict == ("differs" if result.pvalue < 0.05 else "agrees")
    assert binomial_agreement(0, 0, 3, 5).verdict == "undetermined"


# --- representative volume --------------------------------------------------------------------------------


def test_s2_map_equals_brute_force_and_the_per_axis_estimate():
    from physics.correlation import two_point_probability

    volume = (np.random.default_rng(41).random((12, 10, 8)) < 0.35).astype(np.uint8)
    s2 = s2_map(volume)
    assert s2[0, 0, 0] == pytest.approx(volume.mean(), abs=1e-12)
    for lag in [(1, 0, 0), (0, 3, 2), (5, -4, 7), (-1, -1, -1)]:
        shifted = np.roll(volume, shift=[-v for v in lag], axis=(0, 1, 2))  # shifted[x] = volume[x + lag]
        assert s2[lag] == pytest.approx((volume * shifted).mean(), abs=1e-12)
    per_axis = two_point_probability(volume, r_max=3, periodic=True).per_axis
    along = [s2[:4, 0, 0], s2[0, :4, 0], s2[0, 0, :4]]
    np.testing.assert_allclose(per_axis, along, atol=1e-12)


def test_integral_range_over_every_lag_is_zero():
    # Σ_r S2(r) = N φ² exactly for a periodic map, so Σ_r (S2 − φ²) = 0 up to round-off
    image = np.random.default_rng(42).random((48, 64)) < 0.4
    s2 = s2_map(image)
    assert abs(integral_range(s2, float(s2[0, 0]), r_max=10_000)) < 1e-9


def test_integral_range_and_window_spread_of_iid_voxels():
    # independent voxels: S2(r) = φ² for r ≠ 0, so A = 1 and the window fraction is binomial, sqrt(φ(1−φ)/V).
    # Over 30 seeds this estimate gave A = 1.001 ± 0.003 (largest 1.014).
    image = np.random.default_rng(43).random((1024, 1024)) < 0.3
    s2 = s2_map(image)
    fraction = float(s2[0, 0])
    assert integral_range(s2, fraction) == pytest.approx(1.0, abs=0.03)
    measured = _windows(image, 16).std(ddof=1)
    predicted = fraction_std(s2, fraction, size=(16, 16))
    assert predicted == pytest.approx(math.sqrt(fraction * (1 - fraction) / 256), rel=0.015)  # sqrt(1.03)
    # 4096 windows: the measured std has a relative standard error 1/sqrt(2·4095) = 1.1 %; 4σ = 4.4 %
    assert measured == pytest.approx(predicted, rel=0.045)


def test_integral_range_and_window_spread_of_random_blocks():
    # b × b blocks of iid labels: covariance φ(1−φ)(1 − |x|/b)(1 − |y|/b), whose lattice sum is b² exactly;
    # a window of m × m blocks averages m² iid labels: std sqrt(φ(1−φ)/m²) = sqrt(φ(1−φ)·b²/V).
    # Over 30 seeds this estimate gave A = 16.00 ± 0.13 (range 15.80 to 16.39) for b = 4.
    block = 4
    labels = np.random.default_rng(44).random((256, 256)) < 0.3
    image = labels.repeat(block, axis=0).repeat(block, axis=1)
    s2 = s2_map(image)
    fraction = float(s2[0, 0])
    assert integral_range(s2, fraction) == pytest.approx(block**2, abs=0.6)  # 4.6 standard deviations
    measured = _windows(image, 32).std(ddof=1)
    # 1024 windows: relative standard error of the std 2.2 %, with A's spread (0.8 %, half that in the std)
    # 4·sqrt(2.2² + 0.4²) % = 9 %
    assert measured == pytest.approx(fraction_std(s2, fraction, size=32 * 32), rel=0.09)


def test_integral_range_warns_when_the_image_does_not_resolve_it():
    image = np.zeros((16, 256), dtype=np.uint8)
    image[:, :128] = 1  # a half-plane: the covariance stays positive far beyond half the short side
    s2 = s2_map(image)
    with pytest.warns(RuntimeWarning, match="not resolve|larger than this image"):
        integral_range(s2, 0.5)


def test_rev_size_interpolates_a_power_law_exactly():
    sizes = np.array([8.0, 16.0, 32.0, 64.0, 128.0])
    cv = 0.8 * sizes**-0.5  # 0.1 at size (0.8 / 0.1)² = 64, 0.08 at size 100 (between 64 and 128)
    assert rev_size(sizes, cv, threshold=0.08) == pytest.approx(100.0, rel=1e-12)
    assert rev_size(sizes, cv, threshold=0.3) == 8.0  # already below at the smallest size
    assert rev_size(sizes, cv, threshold=0.01) is None
    # a size not measured (one sub-volume: NaN) is skipped; a CV of 0 ends the logarithm at that size
    gappy = cv.copy()
    gappy[[3, 4]] = np.nan
    assert rev_size(sizes, gappy, threshold=0.15) == pytest.approx((0.8 / 0.15) ** 2, rel=1e-12)
    assert rev_size(sizes, gappy, threshold=0.08) is None
    assert rev_size(sizes, [0.4, 0.2, 0.0, np.nan, np.nan], threshold=0.1) == 32.0


# --- argument checks --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: summarize([1.0, 2.0], confidence=1.5),
            "confidence must be a number strictly between 0 and 1",
        ),
        (lambda: proportion(5, 3), r"k must be an integer between 0 and n = 3, got 5"),
        (
            lambda: shift_test([1.0, np.nan], [1.0, 2.0], tolerance=0.1, alternative="greater"),
            "study must hold",
        ),
        (lambda: shift_test([1.0], [1.0, 2.0], tolerance=0.1, alternative="greater"), "study must hold >= 2"),
        (
            lambda: shift_test([1.0, 2.0], [1.0, 2.0], tolerance=0.1, alternative="less"),
            "alternative must be",
        ),
        (
            lambda: shift_test([1.0, 2.0], [1.0, 2.0], tolerance=0.0, alternative="greater"),
            "tolerance must be",
        ),
        (
            lambda: proportion_test(3, 2, 1, 2, tolerance=0.1),
            "k_study must be an integer between 0 and n_study",
        ),
        (lambda: holm([0.1, np.nan]), r"pvalues must lie in \[0, 1\]"),
        (
            lambda: power(
                sigma_study=0,
                n_study=3,
                sigma_baseline=0,
                n_baseline=3,
                tolerance=1,
                alpha=0.05,
                alternative="greater",
            ),
            "sigma_study and sigma_baseline must not both be 0",
        ),
        (
            lambda: power(
                sigma_study=1,
                n_study=1,
                sigma_baseline=1,
                n_baseline=3,
                tolerance=1,
                alpha=0.05,
                alternative="greater",
            ),
            "n_study must be an integer >= 2, got 1",
        ),
        (
            lambda: proportion_power(p_baseline=1.2, n_study=5, n_baseline=5, tolerance=0.1, alpha=0.05),
            "p_baseline",
        ),
        (lambda: integral_range(np.zeros(8), 0.5), "s2 must be a 2D or 3D map"),
        (lambda: integral_range(np.zeros((8, 8)), 1.0), "fraction must be a number strictly between 0 and 1"),
        (lambda: rev_size([1.0, 1.0], [0.2, 0.1]), "sizes must be finite, positive and strictly increasing"),
        (lambda: rev_size([1.0, 2.0], [0.2, -0.1]), r"cv must be >= 0 or NaN"),
    ],
)
def test_bad_arguments_are_named_in_the_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_non_integer_count_is_a_type_error():
    with pytest.raises(TypeError, match="n must be an integer, got float"):
        proportion(1, 2.5)


def test_representativity_of_several_images_of_random_blocks():
    from physics.integral_range import image_representativity

    # two independent images of 4 × 4 blocks of iid labels: A = 16 pixels (closed form, see above), and the
    # fraction of their union is a window of 2·256² pixels: std sqrt(φ(1−φ)·16 / (2·256²))
    rng = np.random.default_rng(45)
    images = [
        (rng.random((64, 64)) < 0.3).repeat(4, axis=0).repeat(4, axis=1).astype(np.uint8) for _ in range(2)
    ]
    r = image_representativity(images, phase=1)
    fraction = float(np.mean(images))
    assert r.fraction == fraction and r.resolved
    assert r.integral_range == pytest.approx(16, abs=0.6)  # as for one image above: 4.6 standard deviations
    expected = math.sqrt(fraction * (1 - fraction) * r.integral_range / (2 * 256**2))
    assert r.fraction_std == pytest.approx(expected, rel=1e-12) and r.half_width == 1.96 * r.fraction_std
    # a crop estimates A: the central 128² of each image gives the same A within its noise
    assert image_representativity(images, phase=1, max_side=128).integral_range == pytest.approx(16, abs=1.2)
    # a volume of 4³ blocks: A = 4³ voxels
    volume = (rng.random((16, 16, 16)) < 0.3).repeat(4, 0).repeat(4, 1).repeat(4, 2)
    assert image_representativity(volume, phase=1).integral_range == pytest.approx(64, rel=0.1)
    assert image_representativity(np.zeros((8, 8), np.uint8), phase=1) is None  # no phase, no uncertainty
