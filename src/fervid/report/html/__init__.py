"""Self-contained HTML report of one or more runs.

``write_html_report([run_a, run_b], "report.html")`` writes one file with each run's metrics,
confusion matrices, per-class recall, per-subject table, training curves, metadata and the
published figures of its protocol; several runs are also compared side by side. Images are
embedded, CSS and JS inline: the file opens offline in any browser.

``load_run(run_dir)`` (:mod:`.load`) reads a run of any protocol into one :class:`RunData`
(:mod:`.run_data`), by the reader of its ``run.json``'s ``protocol`` (:mod:`.loso_data`,
:mod:`.kfold_data`); :mod:`.sections` and :mod:`.kfold_sections` draw a run's sections and
:mod:`.page` the whole page.
"""

from fervid.report.html.load import load_run
from fervid.report.html.page import render_page, write_html_report
from fervid.report.html.published import Benchmark, PublishedEntry, load_published
from fervid.report.html.run_data import RunData, RunReportError

__all__ = ["Benchmark", "PublishedEntry", "RunData", "RunReportError", "load_published",
           "load_run", "render_page", "write_html_report"]
