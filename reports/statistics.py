"""Statistics behind swnn's verdicts: summaries, agreement, a regression rule of known power, RVE size.

:func:`summarize` gives an ensemble's mean with a Student t interval (exact for normal values),
:func:`median_interval` its median with a distribution-free interval (for skewed measures such as permeability),
:func:`proportion` a fraction of successes with the exact Clopper–Pearson interval. :func:`agreement` asks
whether samples agree with a reference's own spread (Welch's t test on the means, the two-sample
Kolmogorov–Smirnov test as a second opinion), :func:`binomial_agreement` the same of a percolation probability
(Fisher's exact test).

**The regression rule.** For each measure, :func:`shift_test` (:func:`proportion_test` for a proportion)
estimates the shift d = mean(study) − mean(baseline) and its p-value; :func:`decide` says that a measure
regresses when (1) its p-value is significant at its Holm-adjusted level (:func:`holm`, family level α), and
(2) the shift exceeds **half the tolerance**: d > tolerance/2 where worse means larger (``"greater"``, an
RMSE), |d| > tolerance/2 where worse means a shift either way (``"two-sided"``, a mean fraction or mean ln
conductivity). Half the tolerance is the midpoint between "unchanged" and "worse by one tolerance": a
significant but tiny shift (the same study trained on another machine) is not a regression, while a
tolerance-sized degradation is caught with the probability given by :func:`power`. The literal rule "worse by
more than the tolerance" would catch a tolerance-sized degradation only half the time, the estimated shift
then falling on either side of the tolerance with equal chance. An unchanged family raises a false alarm with
probability at most about α (Holm's guarantee, exact but for Welch's approximate df; (2) only lowers it).

**Power.** :func:`power` is the probability that the rule fires on one measure of normal samples at a
per-measure level α (α/m, Bonferroni's, for a family of m measures: Holm's power is at least that) when the
true shift equals the tolerance. The estimated shift is D ~ N(shift, σs²/ns + σb²/nb), independent of the two
sample variances (scaled χ² variables), which fix the Welch ŝe, df̂ and the rule's threshold
max(tolerance/2, t_{1−α, df̂}·ŝe) (α/2 when two-sided); the power P(D > threshold) (+ P(D < −threshold)) is
averaged over a 64 × 64 grid of the variances' quantiles, exact up to that quadrature. (The normal
approximation, ŝe = se and df̂ = the true Welch df, is optimistic at few samples: 0.53 instead of 0.40 with
2 + 2 samples.) :func:`proportion_power` is exact, a sum over every pair of counts.

**Representative volume.** :func:`s2_map` is the periodic two-point probability at every lag vector,
:func:`integral_range` A = Σ_r (S2(r) − φ²)/(φ(1 − φ)) (Lantuéjoul 1991), :func:`fraction_std` the standard
deviation of a window's phase fraction, D²(V) = φ(1 − φ)·A/V for V voxels well above A (Kanit et al. 2003,
Eq. 17), and :func:`rev_size` the size at which a coefficient of variation falls below a threshold.

References: Welch, Biometrika 34 (1947) 28; Holm, Scand. J. Stat. 6 (1979) 65; Clopper & Pearson,
Biometrika 26 (1934) 404; Newcombe, Stat. Med. 17 (1998) 873; Lantuéjoul, J. Microsc. 161 (1991) 387; Kanit
et al., Int. J. Solids Struct. 40 (2003) 3647.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from physics._validation import check_count as _count
from physics._validation import check_probability as _probability
from physics.integral_range import fraction_std, integral_range, s2_map

__all__ = [
    "Agreement",
    "MedianInterval",
    "Proportion",
    "ShiftTest",
    "Summary",
    "agreement",
    "binomial_agreement",
    "decide",
    "fraction_std",
    "holm",
    "integral_range",
    "median_interval",
    "power",
    "proportion",
    "proportion_power",
    "proportion_test",
    "rev_size",
    "s2_map",
    "samples_for_power",
    "shift_test",
    "summarize",
]

_ALTERNATIVES = ("greater", "two-sided")
_QUANTILES = (np.arange(64) + 0.5) / 64  # midpoints of 64 equal-probability bins


class _Result:
    def to_dict(self) -> dict:
        """The fields as Python numbers and strings (NaN and inf stay floats, written NaN, Infinity)."""
        return asdict(self)


@dataclass(frozen=True)
class Summary(_Result):
    """Mean, standard deviation (ddof=1) and Student t interval of n finite values (``method`` "t").

    ``std``, ``ci_low`` and ``ci_high`` are NaN for n < 2, every number is NaN for n = 0.
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float
    method: str = "t"


@dataclass(frozen=True)
class MedianInterval(_Result):
    """The median of n finite values and its distribution-free interval from two order statistics.

    ``coverage`` is the interval's exact coverage for any continuous distribution (at least ``confidence``);
    ``ci_low``, ``ci_high`` and ``coverage`` are NaN when n is too small for any pair of order statistics to
    reach ``confidence`` (n ≤ 5 at 95 %), the median NaN for n = 0.
    """

    n: int
    median: float
    ci_low: float
    ci_high: float
    confidence: float
    coverage: float
    method: str = "order-statistics"


@dataclass(frozen=True)
class Proportion(_Result):
    """A fraction p = k / n of successes and its exact Clopper–Pearson interval (p is NaN for n = 0)."""

    n: int
    k: int
    p: float
    ci_low: float
    ci_high: float
    confidence: float
    method: str = "clopper-pearson"


@dataclass(frozen=True)
class ShiftTest(_Result):
    """Test of the shift of one measure from its baseline (:func:`decide` gives the verdict).

    Attributes
    ----------
    difference, se, df, statistic, pvalue : float
        d = mean(study) − mean(baseline), its Welch standard error, Welch–Satterthwaite df (NaN when both
        sides are constant), d / se (± inf when se = 0 < |d|) and the Welch t p-value, one-sided for
        "greater", else two-sided. From :func:`proportion_test`: d = p̂_study − p̂_baseline, the unpooled
        normal standard error, df = inf and Fisher's exact two-sided p-value.
    tolerance : float
    alternative, method : str
        "greater" (worse means larger) or "two-sided"; "welch" or "fisher".
    n_study, n_baseline : int
    """

    difference: float
    se: float
    df: float
    statistic: float
    pvalue: float
    tolerance: float
    alternative: str
    n_study: int
    n_baseline: int
    method: str = "welch"

    @property
    def effect(self) -> float:
        """The shift in the worse direction: d for "greater", |d| for "two-sided"."""
        return self.difference if self.alternative == "greater" else abs(self.difference)


@dataclass(frozen=True)
class Agreement(_Result):
    """Whether samples agree with a reference (the truth).

    Attributes
    ----------
    n_samples, n_truth, dropped : int
        Finite values used (trials for proportions), and non-finite values dropped on both sides.
    difference, ci_low, ci_high : float
        mean(samples) − mean(truth) and its 1 − alpha interval (Welch's; Newcombe's for proportions).
    pvalue, ks_pvalue, alpha : float
        Two-sided Welch t p-value (Fisher exact for proportions), which gives the verdict; the two-sample
        Kolmogorov–Smirnov p-value, a second opinion (NaN for proportions or a side of fewer than 5 values).
    verdict, method : str
        "differs" when pvalue < alpha, else "agrees"; "undetermined" when a side has fewer than 2 values
        (no trial for proportions). "welch" or "fisher".
    """

    n_samples: int
    n_truth: int
    dropped: int
    difference: float
    ci_low: float
    ci_high: float
    pvalue: float
    ks_pvalue: float
    alpha: float
    verdict: str
    method: str = "welch"


def _number(name: str, value: float, accepted: str, ok) -> float:
    number = isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)
    if not (number and ok(value)):
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return float(value)


def _positive(name: str, value: float, *, zero: bool = False) -> float:
    if zero:
        return _number(name, value, "a finite number >= 0", lambda v: v >= 0)
    return _number(name, value, "a finite number > 0", lambda v: v > 0)


def _counts(suffix: str, k: int, n: int, minimum: int) -> tuple[int, int]:
    """k successes out of n trials, checked; the parameters are named k and n followed by ``suffix``."""
    n, k = _count(f"n{suffix}", n, minimum), _count(f"k{suffix}", k, 0)
    if k > n:
        raise ValueError(f"k{suffix} must be an integer between 0 and n{suffix} = {n}, got {k}")
    return k, n


def _alternative(value: str) -> str:
    if value not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {value!r}")
    return value


def _values(name: str, values: object) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1D array of values, got shape {array.shape}")
    return array


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Difference of the means, Welch standard error and Welch–Satterthwaite df (NaN when se = 0)."""
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if va + vb > 0 else math.nan
    return float(a.mean() - b.mean()), math.sqrt(va + vb), float(df)


def _ratio(d: float, se: float) -> float:
    return d / se if se > 0 else math.copysign(math.inf, d) if d != 0 else 0.0


def _t_pvalue(d: float, se: float, df: float, alternative: str) -> float:
    """Welch t p-value; with se = 0, 0 for a shift in the tested direction, else 1."""
    if se == 0:
        return float(d <= 0) if alternative == "greater" else float(d == 0)
    if alternative == "greater":
        return float(stats.t.sf(d / se, df))
    return float(min(1.0, 2 * stats.t.sf(abs(d) / se, df)))


def summarize(values: object, *, confidence: float = 0.95) -> Summary:
    """Mean, standard deviation and Student t confidence interval of the finite values.

    ``values`` (array_like of any shape) are flattened and their NaN and ± inf dropped; ``confidence`` is the
    interval's coverage, strictly between 0 and 1.
    """
    confidence = _probability("confidence", confidence)
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[np.isfinite(array)]
    n, nan = int(array.size), math.nan
    if n < 2:
        return Summary(n, float(array[0]) if n else nan, nan, nan, nan, confidence)
    mean, std = float(array.mean()), float(array.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half, confidence)


def median_interval(values: object, *, confidence: float = 0.95) -> MedianInterval:
    """Median of the finite values with the distribution-free interval [x₍ⱼ₎, x₍ₙ₊₁₋ⱼ₎] of the order statistics.

    The number of values below the true median is B ~ Binomial(n, ½) whatever the distribution, so the
    interval between the j-th smallest and the j-th largest value covers the median with probability
    1 − 2·P(B ≤ j − 1) (Conover, Practical Nonparametric Statistics, 3rd ed. 1999, Sec. 3.2); j is the largest
    rank whose coverage is at least ``confidence``. ``values`` are flattened and their NaN and ± inf dropped,
    as in :func:`summarize`.
    """
    confidence = _probability("confidence", confidence)
    array = np.sort(np.asarray(values, dtype=np.float64).ravel())
    array = array[np.isfinite(array)]
    n, nan = int(array.size), math.nan
    median = float(np.median(array)) if n else nan
    # P(B ≤ j − 1) for j = 1 … n // 2; the coverage falls as j grows
    tails = stats.binom.cdf(np.arange(n // 2), n, 0.5)
    ranks = np.flatnonzero(1.0 - 2.0 * tails >= confidence)
    if ranks.size == 0:
        return MedianInterval(n, median, nan, nan, confidence, nan)
    j = int(ranks[-1]) + 1
    coverage = float(1.0 - 2.0 * tails[j - 1])
    return MedianInterval(n, median, float(array[j - 1]), float(array[n - j]), confidence, coverage)


def proportion(k: int, n: int, *, confidence: float = 0.95) -> Proportion:
    """k successes out of n trials with the exact Clopper–Pearson interval.

    The interval is [B(α/2; k, n − k + 1), B(1 − α/2; k + 1, n − k)] in beta quantiles, α = 1 − confidence,
    its lower end 0 when k = 0 and upper end 1 when k = n (so [0, 1] for n = 0); its coverage is at least
    ``confidence`` whatever the true p.
    """
    confidence = _probability("confidence", confidence)
    k, n = _counts("", k, n, 0)
    tail = (1 - confidence) / 2
    low = 0.0 if k == 0 else float(stats.beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - tail, k + 1, n - k))
    return Proportion(n, k, k / n if n else math.nan, low, high, confidence)


def shift_test(study: object, baseline: object, *, tolerance: float, alternative: str) -> ShiftTest:
    """Welch test of the shift of one measure from its baseline (the rule: see the module docstring).

    Parameters
    ----------
    study, baseline : array_like of shape (n,)
        Per-sample values, at least 2 on each side, all finite: a NaN or infinite sample (a missing measure,
        a sample without a flow path) means something to the caller, which must judge it rather than drop it.
    tolerance : float
        Degradation the check must catch, > 0 (used by :func:`decide`).
    alternative : {"greater", "two-sided"}
        Whether worse means larger, or a shift either way.
    """
    tolerance, alternative = _positive("tolerance", tolerance), _alternative(alternative)
    a, b = _values("study", study), _values("baseline", baseline)
    for name, array in (("study", a), ("baseline", b)):
        if array.size < 2 or not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise ValueError(f"{name} must hold >= 2 values, all finite; got {array.size}, {bad} non-finite")
    d, se, df = _welch(a, b)
    pvalue = _t_pvalue(d, se, df, alternative)
    return ShiftTest(d, se, df, _ratio(d, se), pvalue, tolerance, alternative, a.size, b.size)


def proportion_test(
    k_study: int, n_study: int, k_baseline: int, n_baseline: int, *, tolerance: float
) -> ShiftTest:
    """Two-sided Fisher exact test of the shift of a proportion (a percolation probability) from baseline."""
    tolerance = _positive("tolerance", tolerance)
    (ks, ns), (kb, nb) = (
        _counts("_study", k_study, n_study, 1),
        _counts("_baseline", k_baseline, n_baseline, 1),
    )
    ps, pb = ks / ns, kb / nb
    d, se = ps - pb, math.sqrt(ps * (1 - ps) / ns + pb * (1 - pb) / nb)
    pvalue = float(stats.fisher_exact([[ks, ns - ks], [kb, nb - kb]]).pvalue)
    return ShiftTest(d, se, math.inf, _ratio(d, se), pvalue, tolerance, "two-sided", ns, nb, "fisher")


def holm(pvalues: object, *, alpha: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Holm–Bonferroni step-down correction of a family of p-values.

    The j-th smallest of m p-values gets min(1, max_{i ≤ j} (m − i + 1)·p_(i)) and is rejected when that is at
    most ``alpha``: a family-wise error rate of at most ``alpha``, and every rejection of Bonferroni's
    (m·p ≤ alpha) among them. Returns ``reject`` (ndarray of bool of shape (m,)) and ``adjusted`` (float64),
    in the input's order.
    """
    alpha, p = _probability("alpha", alpha), _values("pvalues", pvalues)
    outside = ~((p >= 0) & (p <= 1))
    if outside.any():
        raise ValueError(f"pvalues must lie in [0, 1], got {p[outside][:5]}")
    order, m = np.argsort(p, kind="stable"), p.size
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted <= alpha, adjusted


def decide(tests: Sequence[ShiftTest], *, alpha: float = 0.01) -> np.ndarray:
    """Which measures of a family regress: Holm-significant at ``alpha`` and effect > tolerance / 2.

    Returns an ndarray of bool of shape (len(tests),).
    """
    significant, _ = holm([t.pvalue for t in tests], alpha=alpha)
    return significant & np.array([t.effect > t.tolerance / 2 for t in tests], dtype=bool)


def power(
    *,
    sigma_study: float,
    n_study: int,
    sigma_baseline: float,
    n_baseline: int,
    tolerance: float,
    alpha: float,
    alternative: str,
    shift: float | None = None,
) -> float:
    """Probability that the rule fires on one measure of normal samples (see the module docstring).

    Parameters
    ----------
    sigma_study, n_study, sigma_baseline, n_baseline : float, int, float, int
        Standard deviation of one sample's value (>= 0, not both 0) and number of samples (>= 2) of each side.
    tolerance, alpha : float
        The measure's tolerance, and its own level (α/m for a family of m measures at family level α).
    alternative : {"greater", "two-sided"}
    shift : float, optional
        The true shift; the tolerance by default (0 gives the false-alarm rate).
    """
    tolerance, alpha = _positive("tolerance", tolerance), _probability("alpha", alpha)
    alternative = _alternative(alternative)
    shift = tolerance if shift is None else _number("shift", shift, "a finite number", lambda v: True)
    sides = [
        (_positive(f"sigma_{name}", sigma, zero=True), _count(f"n_{name}", n, 2))
        for name, sigma, n in (("study", sigma_study, n_study), ("baseline", sigma_baseline, n_baseline))
    ]
    if sides[0][0] == sides[1][0] == 0:
        raise ValueError("sigma_study and sigma_baseline must not both be 0, got 0 and 0")
    vs, vb = (sigma**2 / n * stats.chi2.ppf(_QUANTILES, n - 1) / (n - 1) for sigma, n in sides)
    vs, vb = vs[:, None], vb[None, :]  # (64, 1), (1, 64): quantiles of ŝ²/n of the study and the baseline
    df = (vs + vb) ** 2 / (vs**2 / (sides[0][1] - 1) + vb**2 / (sides[1][1] - 1))
    crit = stats.t.ppf(1 - (alpha if alternative == "greater" else alpha / 2), df)
    threshold = np.maximum(tolerance / 2, crit * np.sqrt(vs + vb))  # (64, 64)
    se = math.sqrt(sum(sigma**2 / n for sigma, n in sides))
    chance = stats.norm.sf((threshold - shift) / se)
    if alternative == "two-sided":
        chance = chance + stats.norm.cdf((-threshold - shift) / se)
    return float(chance.mean())


def samples_for_power(
    *,
    sigma: float,
    n_baseline: int | None,
    tolerance: float,
    alpha: float,
    alternative: str,
    target: float = 0.9,
    n_max: int = 10_000,
    sigma_baseline: float | None = None,
) -> int | None:
    """Smallest number of study samples whose :func:`power` reaches ``target``.

    ``sigma`` is the spread of one study sample, and of one baseline sample unless ``sigma_baseline`` is
    given; ``n_baseline=None`` plans both sides with the same number of samples (a baseline rewritten from a
    study of that size). Returns None when no n_study <= ``n_max`` reaches the target, as when a fixed
    baseline alone is too noisy (as n_study grows, the power tends to that of sigma_study = 0). The power
    grows with n_study: the search doubles n_study, then bisects.
    """
    target, sigma = _probability("target", target), _positive("sigma", sigma)
    sigma_baseline = sigma if sigma_baseline is None else _positive("sigma_baseline", sigma_baseline)
    n_max = _count("n_max", n_max, 2)
    options = {"tolerance": tolerance, "alpha": alpha, "alternative": alternative}

    def reaches(n: int, spread: float = sigma) -> bool:
        baseline = {"sigma_baseline": sigma_baseline, "n_baseline": n if n_baseline is None else n_baseline}
        return power(sigma_study=spread, n_study=n, **baseline, **options) >= target

    if n_baseline is not None and not reaches(2, 0.0):
        return None
    low, high = 1, 2  # power(low) < target <= power(high), n = 1 standing for "too few"
    while not reaches(high):
        if high >= n_max:
            return None
        low, high = high, min(2 * high, n_max)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
    return high


def _fisher_pvalues(n_study: int, n_baseline: int) -> np.ndarray:
    """Two-sided Fisher exact p-value of every table, ndarray of shape (n_study + 1, n_baseline + 1)."""
    pvalues = np.empty((n_study + 1, n_baseline + 1))
    for total in range(n_study + n_baseline + 1):  # given the margins, k_study is hypergeometric
        k = np.arange(max(0, total - n_baseline), min(n_study, total) + 1)
        pmf = stats.hypergeom.pmf(k, n_study + n_baseline, total, n_study)
        ordered = np.sort(
            pmf
        )  # p: sum over the tables no more likely than this one (relative tolerance 1e-7)
        below = np.searchsorted(ordered, pmf * (1 + 1e-7), side="right")
        pvalues[k, total - k] = np.minimum(1.0, np.concatenate([[0.0], np.cumsum(ordered)])[below])
    return pvalues


def proportion_power(
    *,
    p_baseline: float,
    n_study: int,
    n_baseline: int,
    tolerance: float,
    alpha: float,
    p_study: float | None = None,
) -> float:
    """Probability that the rule fires on :func:`proportion_test`, exactly: a sum over every pair of counts.

    ``p_study`` defaults to p_baseline + tolerance, or p_baseline − tolerance when that would exceed 1.
    """
    tolerance, alpha = _positive("tolerance", tolerance), _probability("alpha", alpha)
    pb = _number("p_baseline", p_baseline, "a number in [0, 1]", lambda v: 0 <= v <= 1)
    default = pb + tolerance if pb + tolerance <= 1 else pb - tolerance
    ps = _number(
        "p_study", default if p_study is None else p_study, "a number in [0, 1]", lambda v: 0 <= v <= 1
    )
    ns, nb = _count("n_study", n_study, 1), _count("n_baseline", n_baseline, 1)
    ks, kb = np.arange(ns + 1)[:, None], np.arange(nb + 1)[None, :]
    fires = (_fisher_pvalues(ns, nb) <= alpha) & (np.abs(ks / ns - kb / nb) > tolerance / 2)
    return float((stats.binom.pmf(ks, ns, ps) * stats.binom.pmf(kb, nb, pb))[fires].sum())


def agreement(samples: object, truth: object, *, alpha: float = 0.05) -> Agreement:
    """Whether samples agree with the truth's own spread: Welch's t test on the means, KS as a second opinion.

    ``samples`` and ``truth`` (array_like of shape (n,)) are per-sample values and the reference's own (for
    instance of its sub-volumes); non-finite values are dropped and counted. ``alpha`` is the test's level,
    and 1 − alpha the coverage of the difference's interval.
    """
    alpha = _probability("alpha", alpha)
    arrays = [_values("samples", samples), _values("truth", truth)]
    dropped = sum(int((~np.isfinite(x)).sum()) for x in arrays)
    a, b = (x[np.isfinite(x)] for x in arrays)
    if min(a.size, b.size) < 2:
        nan = math.nan
        return Agreement(a.size, b.size, dropped, nan, nan, nan, nan, nan, alpha, "undetermined")
    d, se, df = _welch(a, b)
    pvalue = _t_pvalue(d, se, df, "two-sided")
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se if se > 0 else 0.0
    ks = float(stats.ks_2samp(a, b).pvalue) if min(a.size, b.size) >= 5 else math.nan
    verdict = "differs" if pvalue < alpha else "agrees"
    return Agreement(a.size, b.size, dropped, d, d - half, d + half, pvalue, ks, alpha, verdict)


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    centre, half = (k + z * z / 2) / (n + z * z), z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    return centre - half, centre + half


def binomial_agreement(
    k_samples: int, n_samples: int, k_truth: int, n_truth: int, *, alpha: float = 0.05
) -> Agreement:
    """Whether a proportion (a percolation probability) agrees with the truth's: Fisher's exact test.

    The difference's interval is Newcombe's hybrid score interval (his method 10, from Wilson intervals).
    """
    alpha = _probability("alpha", alpha)
    (k1, n1), (k2, n2) = _counts("_samples", k_samples, n_samples, 0), _counts("_truth", k_truth, n_truth, 0)
    if min(n1, n2) == 0:
        nan = math.nan
        return Agreement(n1, n2, 0, nan, nan, nan, nan, nan, alpha, "undetermined", "fisher")
    (p1, p2), z = (k1 / n1, k2 / n2), float(stats.norm.isf(alpha / 2))
    (l1, u1), (l2, u2) = _wilson(k1, n1, z), _wilson(k2, n2, z)
    d = p1 - p2
    low, high = d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)
    pvalue = float(stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue)
    verdict = "differs" if pvalue < alpha else "agrees"
    return Agreement(n1, n2, 0, d, low, high, pvalue, math.nan, alpha, verdict, "fisher")


def rev_size(sizes: object, cv: object, *, threshold: float = 0.10) -> float | None:
    """Smallest size whose coefficient of variation falls below ``threshold``.

    ``sizes`` (array_like of shape (n,), increasing, > 0; voxels or side lengths, the answer has the same
    unit) and ``cv`` (>= 0 at each size; a NaN, such as the CV of a single sub-volume, marks a size not
    measured and is skipped). Returns the first measured size when it is already below, else the first
    crossing interpolated linearly in (log size, log cv), exact for a power law (or the first size with
    cv = 0, where the logarithm ends); None when the threshold is never reached.
    """
    threshold = _positive("threshold", threshold)
    sizes, cv = _values("sizes", sizes), _values("cv", cv)
    if sizes.size != cv.size or sizes.size == 0:
        raise ValueError(f"sizes and cv must have the same non-zero length, got {sizes.size} and {cv.size}")
    if not (np.isfinite(sizes).all() and (sizes > 0).all() and (np.diff(sizes) > 0).all()):
        raise ValueError(f"sizes must be finite, positive and strictly increasing, got {sizes}")
    if np.isinf(cv).any() or (cv < 0).any():
        raise ValueError(f"cv must be >= 0 or NaN (not measured), got {cv}")
    sizes, cv = sizes[~np.isnan(cv)], cv[~np.isnan(cv)]
    below = np.flatnonzero(cv < threshold)
    if below.size == 0:
        return None
    i = int(below[0])
    if i == 0 or cv[i] == 0:
        return float(sizes[i])
    x0, x1, y0, y1 = np.log(sizes[i - 1]), np.log(sizes[i]), np.log(cv[i - 1]), np.log(cv[i])
    return float(np.exp(x0 + (math.log(threshold) - y0) * (x1 - x0) / (y1 - y0)))
