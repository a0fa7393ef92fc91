"""The study report ``index.html``: one self-contained file (figures embedded as PNG data URIs, inline CSS),
readable without a server or network."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence

__all__ = ["render"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
.meta { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; max-width: 70em; }
.notes { background: #fff8e1; border: 1px solid #f0d890; padding: 0.6em 1em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""

_GROUPS = (
    ("ensembles", "Ensembles against the truth's own spread"),
    ("sections", "Sections in three directions"),
    ("curves", "Two-point probability and lineal path"),
    ("properties", "Effective properties"),
    ("fields", "Temperature and velocity fields"),
    ("control", "Control of the fraction"),
    ("timings", "Timings"),
)

_FILES = (
    (
        "metrics.csv",
        "tidy table, one row per reference × condition × (reference or sample) × metric (× axis)",
    ),
    (
        "summary.csv",
        "one row per reference × condition × metric × axis: n, mean, std, 95% CI of the samples and of the "
        "truth pieces, the test of agreement",
    ),
    (
        "study.json",
        "settings, truth plans, regression power, resolved training configuration, versions, timings",
    ),
    ("figures/*.png", "the figures above, one PNG each"),
    ("cache/", "finished models, samples (.npy) and evaluations, reused by a rerun"),
)


def _escape(value) -> str:
    return html.escape(str(value))


def _number(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence], text_columns: int = 1) -> str:
    head = "".join(
        f'<th class="{"text" if i < text_columns else ""}">{_escape(h)}</th>' for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"text" if i < text_columns else ""}">{_escape(c)}</td>' for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _target(fraction: float, std: float | None, condition: str) -> str:
    """The target fraction; a stochastic run's with the 95 % half-width the training input knows it to."""
    if std is None or condition != "stochastic":
        return _number(fraction)
    return f"{_number(fraction)} ± {1.96 * std:.4f}"


def _fidelity_table(summary: Mapping, frame) -> str:
    samples = frame[frame["role"] == "sample"]
    ground = {(r["reference"], r["condition"]): r["ground_truth"] for r in summary["runs"]}
    known = {(r["reference"], r["condition"]): r.get("training_fraction_std") for r in summary["runs"]}
    rows = []
    for (reference, condition), group in samples.groupby(["reference", "condition"], sort=False):

        def values(metric, group=group):
            return group.loc[group["metric"] == metric, "value"].astype(float)

        fractions = values("fraction")
        spread = f" ± {fractions.std():.4f}" if len(fractions) > 1 else ""
        row = [
            reference,
            condition,
            ground.get((reference, condition), ""),
            _target(float(group["target_fraction"].iloc[0]), known.get((reference, condition)), condition),
            f"{fractions.mean():.4f}{spread}",
            _number(values("fraction_error").abs().mean()),
            _number(values("s2_rmse").mean()),
            _number(values("lineal_path_rmse").mean()),
        ]
        for metric in ("conductivity_ratio", "permeability_ratio"):
            v = values(metric)
            row.append(_number(v.mean(), 3) if len(v) else "—")
        rows.append(row)
    headers = [
        "reference",
        "condition",
        "compared with",
        "target fraction (± 95 % of the training input)",
        "achieved fraction",
        "|fraction error|",
        "S₂ RMSE",
        "L RMSE",
        "k_eff ratio",
        "permeability ratio",
    ]
    return _table(headers, rows, text_columns=3)  # the unit column is text too, right-aligned like numbers


def _timing_table(rows: Sequence[Mapping]) -> str:
    from reports.figures import format_timing, timing_columns

    columns = timing_columns(rows)
    cells = [[format_timing(row.get(key), fmt) for key, _, fmt in columns] for row in rows]
    return _table([header for _, header, _ in columns], cells, text_columns=2)


def _image(path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_escape(path.name)}">'


def _sample_counts(summary: Mapping) -> str:
    """``72`` when every run has as many samples, else ``72 or 128``."""
    counts = sorted({len(run.get("samples", [])) for run in summary["runs"]})
    return " or ".join(str(c) for c in counts) if counts else str(summary["settings"]["samples"])


def _pvalue(value) -> str:
    value = float(value)
    if not math.isfinite(value):
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _summary_table(table) -> str:
    headers = [
        "reference",
        "condition",
        "metric",
        "axis",
        "unit",
        "n",
        "mean",
        "95% CI",
        "truth n",
        "truth mean",
        "truth 95% CI",
        "p",
        "verdict",
    ]
    rows = []
    for row in table.itertuples(index=False):
        axis = "" if str(row.axis) in ("<NA>", "nan", "None") else int(row.axis)
        digits = 3 if math.isfinite(float(row.mean)) and abs(float(row.mean)) >= 10 else 4
        rows.append(
            [
                row.reference,
                row.condition,
                row.metric,
                axis,
                row.unit,
                "" if str(row.n) == "<NA>" else row.n,
                _number(float(row.mean), digits),
                f"{_number(float(row.ci_low), digits)} … {_number(float(row.ci_high), digits)}",
                "" if str(row.truth_n) == "<NA>" else row.truth_n,
                _number(float(row.truth_mean), digits),
                f"{_number(float(row.truth_ci_low), digits)} … {_number(float(row.truth_ci_high), digits)}",
                _pvalue(row.pvalue),
                "" if not isinstance(row.verdict, str) else row.verdict,
            ]
        )
    return _table(headers, rows, text_columns=3)  # the unit column is text too, right-aligned like numbers


def _power_table(rows: Sequence[Mapping]) -> str:
    body = [
        [
            r["run"],
            r["metric"],
            r["n"],
            f"{100 * r['power']:.0f}%",
            "—" if r.get("samples_needed") is None else r["samples_needed"],
        ]
        for r in rows
    ]
    return _table(["run", "measure", "samples", "power", "samples for 90%"], body, text_columns=2)


def render(
    summary: Mapping, frame, figures: Sequence, timing_rows: Sequence[Mapping], summary_table=None
) -> str:
    """The report as one HTML string.

    Parameters
    ----------
    summary : dict
        The content of ``study.json``.
    frame : pandas.DataFrame
        The tidy metrics table.
    figures : sequence of reports.figures.Figure
        Written PNGs, embedded as data URIs in the order of their groups.
    timing_rows : sequence of dict
        :func:`reports.study.timing_table`.
    """
    device = summary["device"]
    versions = ", ".join(f"{k} {v}" for k, v in summary["versions"].items() if v)
    settings = summary["settings"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>swnn study: {_escape(summary['name'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Study “{_escape(summary['name'])}”</h1>",
        '<p class="meta">',
        f"{len(summary['runs'])} reference × condition runs, {_sample_counts(summary)} sample(s) of "
        f"{settings['size']}³ each, training profile <b>{_escape(settings['training']['profile'])}</b> "
        f"({summary['training_config']['iterations']} iterations). "
        f"Started {_escape(summary['started'])} on {_escape(device.get('name', device['type']))} "
        f"({_escape(device['type'])}, {device.get('threads')} threads; training {device['training_precision']}, "
        f"generation {device['generation_precision']}). Study file: {_escape(summary.get('source'))}.<br>"
        f"{_escape(versions)}</p>",
    ]
    if summary.get("notes"):
        parts.append('<div class="notes"><b>Notes</b><ul>')
        parts += [f"<li>{_escape(n)}</li>" for n in summary["notes"]]
        parts.append("</ul></div>")
    parts.append("<h2>Fidelity</h2>")
    parts.append(
        "<p>Mean over the samples of each run. The fraction error is against the target (η, or the training "
        "image's fraction for stochastic runs); S₂ and L RMSE over r ≤ "
        f"{settings['r_max']} voxels against the reference's 3D ground truth axis by axis, or against the 2D image "
        "(mean of the sample's three axes against the image's two); property ratios are sample / reference "
        "(its central crop of the samples' size). The achieved fraction is the mean ± the standard deviation "
        "between samples (not of the mean: see the next table for confidence intervals).</p>"
    )
    parts.append(_fidelity_table(summary, frame))
    if summary_table is not None and len(summary_table):
        parts.append("<h2>Samples against the truth</h2>")
        truth = summary.get("truth", {})
        if truth:
            parts.append(
                "<p>The truth of each reference with a 3D volume is "
                + "; ".join(
                    f"{_escape(name)}: {_escape(plan['description'])}" for name, plan in truth.items()
                )
                + ". Each piece is evaluated like a sample.</p>"
            )
        parts.append(
            "<p>n values per row; mean with its 95% confidence interval (Student's t; exact Clopper–Pearson for "
            "the percolation probability); <i>p</i> of Welch's two-sided test of equal means (Fisher's exact "
            "test for the percolation probability); verdict <i>agrees</i> for p ≥ 0.05. Controlled conditions "
            "are shown beside the uncontrolled truth without a verdict. ln k is over the pieces and samples "
            "with a flow path, k in voxel².</p>"
        )
        parts.append(_summary_table(summary_table))
    if summary.get("regress_power"):
        parts.append("<h2>Power of a regression check</h2>")
        parts.append(
            "<p>For each checked measure, the probability that <code>swnn regress</code> against this study as "
            "the baseline catches a degradation of one tolerance in a rerun with as many samples (family "
            "false-alarm probability 1%, Holm; see <code>reports.regress</code>), and the samples per run "
            "that would give 90%.</p>"
        )
        parts.append(_power_table(summary["regress_power"]))
    for group, heading in _GROUPS:
        members = [f for f in figures if f.group == group]
        if not members and group != "timings":
            continue
        parts.append(f"<h2>{_escape(heading)}</h2>")
        if group == "timings":
            parts.append(_timing_table(timing_rows))
            stages = summary["timings"]["stages"]
            parts.append(
                "<p>Wall time of this run by stage (cached items take no time): "
                + ", ".join(f"{_escape(name)} {seconds:.1f} s" for name, seconds in stages.items())
                + f"; total {sum(stages.values()):.0f} s.</p>"
            )
        for figure in members:
            parts.append(
                f"<figure>{_image(figure.path)}<figcaption><b>{_escape(figure.title)}.</b> "
                f"{_escape(figure.caption)}</figcaption></figure>"
            )
    parts.append("<h2>Files</h2>")
    parts.append(_table(["file", "content"], _FILES, text_columns=2))
    parts.append("<h2>Settings</h2>")
    parts.append(
        "<pre>"
        + _escape(json.dumps({"study": settings, "training_config": summary["training_config"]}, indent=1))
        + "</pre>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
