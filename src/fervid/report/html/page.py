"""The report page: runs' sections in one self-contained HTML file (inline CSS, JS, images).

Runs are read by :func:`fervid.report.html.load.load_run`; each is drawn with the sections of
its protocol (:data:`SECTIONS_BY_PROTOCOL`).
"""

from __future__ import annotations

import datetime
from html import escape
from pathlib import Path

from fervid.datasets.video_release import is_kfold_protocol
from fervid.errors import path_error
from fervid.files import atomic_write
from fervid.report.html.au import au_article
from fervid.report.html.comparison import comparison_section
from fervid.report.html.holdout import CROSS_DATASET, HOLDOUT, SPLIT_SECTIONS
from fervid.report.html.kfold_sections import KFOLD_SECTIONS
from fervid.report.html.load import load_run
from fervid.report.html.published import load_published
from fervid.report.html.run_data import DFEW_5FOLD, LOSO, RunData, RunReportError
from fervid.report.html.sections import LOSO_SECTIONS
from fervid.runs.store import read_run_meta

#: The sections of one run, in page order, by ``run.json``'s ``protocol`` (as
#: :data:`fervid.report.html.load.READERS` reads them).
SECTIONS_BY_PROTOCOL = {LOSO: LOSO_SECTIONS, DFEW_5FOLD: KFOLD_SECTIONS,
                        HOLDOUT: SPLIT_SECTIONS, CROSS_DATASET: SPLIT_SECTIONS}

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232a;
       background: #f4f6f8; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 28px 48px; }
header { background: #1f3a5f; color: #fff; padding: 18px 28px; }
header h1 { margin: 0; font-size: 22px; } header p { margin: 4px 0 0; opacity: .85; }
nav a { color: #cfe0ff; margin-right: 14px; }
h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 2px solid #1f3a5f; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 8px; color: #1f3a5f; }
section { background: #fff; border: 1px solid #dde3ea; border-radius: 6px; padding: 12px 16px;
          margin: 12px 0; overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e6eaef; text-align: right; }
th { background: #eef2f6; font-weight: 600; }
td:first-child, th:first-child { text-align: left; }
table.published td:nth-last-child(-n+2) { text-align: left; min-width: 160px; max-width: 230px;
                                         font-size: 12px; }
tr.this td, tr.summary td { background: #fff8e1; }
.scroll { max-height: 520px; overflow-y: auto; display: inline-block; }
.scroll th { position: sticky; top: 0; }
table.sortable td:nth-child(2), table.sortable td:nth-child(3) { text-align: left; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: #9aa5b1; font-size: 11px; }
table.sortable th.asc::after { content: " \\2191"; color: #1f3a5f; }
table.sortable th.desc::after { content: " \\2193"; color: #1f3a5f; }
table.meta th { text-align: left; width: 150px; } table.meta td { text-align: left; }
td.src { color: #6b7785; font-size: 12px; }
.delta.up { color: #1a7f37; } .delta.down { color: #b42318; } .delta.same { color: #6b7785; }
.warn { color: #b42318; font-weight: 600; }
img { max-width: 100%; height: auto; display: block; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; max-width: 540px; } figcaption { font-size: 12px; color: #4a5560; }
pre { background: #f6f8fa; padding: 8px; font-size: 12px; max-height: 360px; overflow: auto; }
details summary { cursor: pointer; margin-top: 8px; }
"""

# Sorting on a header click: numbers numerically ("–" last), text alphabetically.
_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = !th.classList.contains("asc");
      table.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
      th.classList.add(asc ? "asc" : "desc");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var text = row.cells[col].textContent.trim();
        var num = parseFloat(text);
        return isNaN(num) || !/^[-+0-9.]/.test(text) ? text : num;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), r;
        if (typeof x === "number" && typeof y === "number") { r = x - y; }
        else if (typeof x === "number") { r = -1; } else if (typeof y === "number") { r = 1; }
        else { r = x.localeCompare(y); }
        return asc ? r : -r;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def render_run(run: RunData, index: int) -> str:
    """The sections of one run, chosen by its protocol."""
    benchmarks = load_published()
    benchmark = benchmarks.get(run.benchmark) if run.benchmark else None
    builders = SECTIONS_BY_PROTOCOL.get(run.protocol)
    if builders is None and is_kfold_protocol(run.protocol):  # MAFW's, FERV39k's ...
        builders = KFOLD_SECTIONS
    if builders is None:
        raise RunReportError(f"{run.run_dir}: no report sections for protocol {run.protocol!r}")
    body = "".join(build(run, benchmark) for build in builders)
    return (f'<article class="run" id="run-{index}"><h2>{escape(run.label)}</h2>'
            f"{body}</article>")


def render_page(runs: list[RunData]) -> str:
    """The whole report page of ``runs`` (the first is the reference of comparisons)."""
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    links = "".join(f'<a href="#run-{i}">{escape(r.run_dir.name)}</a>'
                    for i, r in enumerate(runs))
    if len(runs) > 1:
        links = '<a href="#comparison">comparison</a>' + links
    parts = [comparison_section(runs)] if len(runs) > 1 else []
    parts += [render_run(run, i) for i, run in enumerate(runs)]
    title = f"fervid report: {', '.join(r.run_dir.name for r in runs)}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{len(runs)} run{'s' if len(runs) > 1 else ''}, "
        f"made {escape(when)}</p><nav>{links}</nav></header>"
        f"<main>{''.join(parts)}</main><script>{_JS}</script></body></html>\n")


def render_au_page(run_dirs: list[Path]) -> str:
    """The report page of AU detection runs: one per-AU table each."""
    from fervid.runs.results import build_loso_results

    title = f"fervid AU report: {', '.join(d.name for d in run_dirs)}"
    articles = "".join(au_article(d, build_loso_results(d).metrics, i)
                       for i, d in enumerate(run_dirs))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{escape(title)}</h1></header><main>{articles}</main>"
            f"<script>{_JS}</script></body></html>\n")


def render_spot_page(run_dirs: list[Path]) -> str:
    """The report page of spotting runs (:mod:`fervid.report.html.spotting`)."""
    from fervid.report.html.spotting import spot_article
    from fervid.report.spotting import load_spot_run

    title = f"fervid spotting report: {', '.join(d.name for d in run_dirs)}"
    articles = "".join(spot_article(load_spot_run(d), i) for i, d in enumerate(run_dirs))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{escape(title)}</h1></header><main>{articles}</main>"
            f"<script>{_JS}</script></body></html>\n")


def write_html_report(run_dirs: list[Path], out_html: Path) -> Path:
    """Write one self-contained HTML report of ``run_dirs`` to ``out_html``.

    Parameters
    ----------
    run_dirs
        LOSO or DFEW k-fold run directories (finished or partly finished); the first is
        the reference that the others are compared with. Or spotting run folders
        (:mod:`fervid.report.spotting`), all of them.
    out_html
        The HTML file to write (its folder is created).

    Returns
    -------
    Path
        ``out_html``. Images are embedded as PNG data URIs; nothing is fetched when viewed.

    Raises
    ------
    RunReportError
        A run directory is missing or unreadable (the message names it).
    """
    if not run_dirs:
        raise RunReportError("no run directories given")
    au = [d for d in run_dirs
          if (Path(d) / "run.json").is_file() and read_run_meta(Path(d)).get("task") == "au"]
    if au and len(au) != len(run_dirs):
        raise RunReportError(f"{au[0]}: an AU detection run among emotion runs; report AU runs "
                             "on their own")
    from fervid.report.spotting import is_spot_run  # it reads RunReportError from here

    spot = [d for d in run_dirs if is_spot_run(Path(d))]
    if spot and len(spot) != len(run_dirs):
        raise RunReportError(f"{spot[0]}: a spotting run among recognition runs; report "
                             "spotting runs on their own")
    if spot:
        page = render_spot_page([Path(d) for d in run_dirs])
    else:
        page = (render_au_page([Path(d) for d in run_dirs]) if au
                else render_page([load_run(Path(d)) for d in run_dirs]))
    out_html = Path(out_html)
    try:
        atomic_write(out_html, lambda p: p.write_text(page, encoding="utf-8"))
    except (IsADirectoryError, NotADirectoryError, FileExistsError, PermissionError) as err:
        raise path_error(out_html, err, "HTML report file") from err
    return out_html
