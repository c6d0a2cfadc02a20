"""The run's report as one self-contained HTML page, report.html beside the model card: MLflow's
artifact viewer shows the Markdown card's chart links as text, but renders an .html artifact (in
a sandboxed frame). Everything is inline (styles, tables, the charts as base64 PNGs), so nothing
is fetched when it is viewed. Built from what the run holds in memory: no chart is drawn or
downloaded again. Every string a user chose (experiment, columns, data source) is escaped."""

from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tasks.registry.model_card import CardFacts

__all__ = ["html_report", "REPORT_FILE"]

REPORT_FILE = "report.html"
_SPEED = "predict_ms_per_1k_rows"  # tasks.search.outcome's leaderboard column
_ROW = "predict_ms_per_row"  # its one-row time (the final model's: CardFacts.inference)

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;color:#1f2328;max-width:1150px;margin:1em auto;
padding:0 1em}
h1{font-size:1.45em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;
border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.4em 0}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.final td{font-weight:600;background:#eef7ee}
.alerted{color:#a40e26;font-weight:600}.warning{color:#9a6700}
figure{display:inline-block;margin:.4em .6em .8em 0;vertical-align:top}
figure img{max-width:540px;border:1px solid #d0d7de}figcaption{color:#59636e;font-size:.9em}
code{background:#f6f8fa;padding:0 .25em}
"""


def html_report(facts: CardFacts, leaderboard: Sequence[Mapping[str, object]], members: str,
                images: Mapping[str, bytes]) -> str:
    """The page. leaderboard: every trial, best first (SearchOutcome.leaderboard); members: the
    final model's parts as one line ('-' for a single model); images: chart file -> PNG."""
    experiment = str(facts.config.get("experiment_name") or facts.model_name)
    title = f"{experiment}: {facts.best_model}"
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p>{_intro(facts)}</p>",
        "<h2>Registry decision</h2>", f"<p>{_decision(facts)}</p>",
        "<h2>Metrics</h2>", _metrics(facts),
        f"<h2>Leaderboard ({facts.search['trials']} trials)</h2>",
        _leaderboard(facts, leaderboard, members),
        *_cohorts(facts),
        "<h2>Guardrails</h2>", _guardrails(facts.guardrails),
        "<h2>Data</h2>", _data(facts),
        "<h2>Charts</h2>", _charts(facts, images),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _intro(f: CardFacts) -> str:
    search = f.search
    score = f.validation_metrics.get(f.primary_metric)
    return (f"<b>{_e(f.best_model)}</b> for {_e(f.task)} of <code>{_e(f.target)}</code>: "
            f"{_e(f.primary_metric)} = <b>{_sig(score)}</b> ({_e(search['scheme'])}) after "
            f"{search['trials']} trials ({search['failed']} failed, {search.get('pruned', 0)} "
            f"pruned; stopped: {_e(search['stop_reason'])}). Registered as "
            f"<code>models:/{_e(f.model_name)}/{_e(f.version)}</code>; MLflow run "
            f"<code>{_e(f.run_id)}</code>.")


def _decision(f: CardFacts) -> str:
    d = f.decision
    version = f"Version {_e(f.version)} of <code>{_e(f.model_name)}</code>"
    if not d:
        return f"{version}: no held-out rows to compare it with, so no alias moved."
    held = f"holds <b>@{_e(d['alias'])}</b>" if d.get("alias") else "holds no alias"
    champion = d.get("champion_version")
    against = (f"; champion version {_e(champion)}: {_sig(d.get('champion_score'))}"
               if champion else "; no champion before it")
    return (f"{version} {held}: {_e(d['reason'])}.<br>{_e(d['metric'])} on {_e(d['basis'])} "
            f"data: this version {_sig(d.get('new_score'))}{against}.")


def _metrics(f: CardFacts) -> str:
    test = f.test_metrics or {}
    names = sorted(f.validation_metrics, key=lambda name: (name != f.primary_metric, name))
    return _table(["metric", "validation", "test"],
                  [("", [name, _num(f.validation_metrics[name]), _num(test.get(name))])
                   for name in names])


def _leaderboard(f: CardFacts, rows: Sequence[Mapping[str, object]], members: str) -> str:
    metric, cost = f.primary_metric, f.inference
    final = ("final", ["final", "-", f.best_model, _num(f.validation_metrics.get(metric)), "-",
                       _num(cost.get(_SPEED), 3), _num(cost.get(_ROW), 3),
                       _mb(cost.get("model_bytes")),
                       f"registered as models:/{f.model_name}/{f.version}", members])
    trials = [("", [row.get("rank"), row.get("trial"), row.get("model"), _num(row.get(metric)),
                    _num(row.get("fit_seconds")), _num(row.get(_SPEED), 3),
                    _num(row.get(_ROW), 3), _mb(row.get("model_bytes")), row.get("status"), "-"])
              for row in rows]
    return _table(["rank", "trial", "model", metric, "fit s", "predict ms / 1k rows",
                   "1-row ms", "MB", "status", "members"], [final, *trials])


def _mb(size: object) -> str:
    return f"{size / 1e6:.3g}" if isinstance(size, (int, float)) and size else "-"


def _cohorts(f: CardFacts) -> list[str]:
    """The error analysis's weakest cohorts (tasks.registry.cohorts), when it was drawn."""
    if not f.cohorts:
        return []
    c, metric = f.cohorts, f.cohorts["metric"]
    intro = (f"<p>{_e(metric)} by cohort of the strongest columns on the {_e(c['basis'])} rows; "
             f"all rows: <b>{_sig(c['overall'])}</b>.</p>")
    weakest = cast("list[dict[str, object]]", c["weakest"])
    rows = [("", [w["column"], w["value"], w["rows"], _num(w["score"])]) for w in weakest]
    table = _table(["column", "cohort", "rows", str(metric)], rows) if rows else \
        "<p>No cohort scores worse than all rows together.</p>"
    return ["<h2>Weakest cohorts</h2>", intro, table]


def _guardrails(checks: Sequence[Mapping[str, str]]) -> str:
    if not checks:
        return "<p>No checks ran.</p>"
    return _table(["check", "status", "detail"],
                  [(str(c.get("status", "")), [c.get("name"), c.get("status"), c.get("detail")])
                   for c in checks])


def _data(f: CardFacts) -> str:
    data = f.data
    items = [f"source: <code>{_e(data['source'])}</code>",
             f"training rows: {_e(data['rows'])}; table digest "
             f"<code>{_e(data.get('digest') or 'n/a')}</code>"]
    items += [f"{_e(role)} columns: {_e(', '.join(map(str, cols)) or 'none')}"
              for role, cols in data.get("roles", {}).items()]
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _charts(f: CardFacts, images: Mapping[str, bytes]) -> str:
    figures = [
        f'<figure><img src="data:image/png;base64,{base64.b64encode(images[name]).decode()}" '
        f'alt="{_e(title)}"><figcaption>{_e(title)}</figcaption></figure>'
        for name, title in f.charts.items() if name in images]
    skipped = [f"<li>{_e(name)} not drawn: {_e(why)}</li>"
               for name, why in f.skipped_charts.items()]
    if not figures and not skipped:
        return "<p>No charts: the run had no held-out rows to draw them on.</p>"
    return "\n".join(figures) + (f"<ul>{''.join(skipped)}</ul>" if skipped else "")


def _table(header: Sequence[str], rows: Sequence[tuple[str, Sequence[object]]]) -> str:
    """rows: (the row's class, its cells); a cell that reads as a number is right-aligned."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    lines = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for kind, cells in rows:
        shown = ["-" if c is None else str(c) for c in cells]
        tds = "".join(f'<td class="n">{_e(c)}</td>' if _numeric(c) else f"<td>{_e(c)}</td>"
                      for c in shown)
        lines.append(f'<tr class="{_e(kind)}">{tds}</tr>' if kind else f"<tr>{tds}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _num(value: object, digits: int = 4) -> str:
    """Scores as people read them: 4 significant digits, as the Prefect leaderboard shows."""
    return f"{value:.{digits}g}" if isinstance(value, float) else "-" if value is None \
        else str(value)


def _sig(value: object) -> str:
    return _e(_num(value))


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
