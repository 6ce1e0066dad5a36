"""``fervid data``: the registered datasets, and whether a copy on disk reads right."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fervid.cli.common import USER_ERRORS, console, fail

data_app = typer.Typer(
    help="The registered datasets (list), and what fervid reads from your copy (check).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

#: Problems printed before "... and N more" in the table view (all of them go to --json).
MAX_SHOWN = 20


@data_app.command("list")
def list_datasets(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")
                        ] = False,
) -> None:
    """List the registered datasets with their protocols, class protocols and layouts."""
    from fervid.datasets.registry import dataset_specs

    rows = [{"name": s.name, "protocols": list(s.protocols), "classes": dict(s.classes),
             "layouts": list(s.layouts), "sheet": s.sheet, "parts": list(s.parts)}
            for s in dataset_specs()]
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="registered datasets")
    for column in ("name", "protocols", "class protocols", "layouts", "sheet"):
        table.add_column(column)
    for r in rows:
        classes = ", ".join(f"{k} ({len(v)})" for k, v in r["classes"].items())
        sheet = r["sheet"] or ("parts: " + ", ".join(r["parts"]) if r["parts"] else "")
        table.add_row(r["name"], ", ".join(r["protocols"]), classes, ", ".join(r["layouts"]),
                      escape(sheet))
    console.print(table)


@data_app.command("check")
def check(
    dataset: Annotated[str, typer.Option(help="A registered dataset (see `fervid data list`).")],
    data_root: Annotated[Path, typer.Option(help="Your copy of the release, as --data-root "
                                                 "takes it for training.")],
    protocol: Annotated[str | None, typer.Option(
        help="One class protocol (default: every protocol of the release).")] = None,
    sheet: Annotated[Path | None, typer.Option(
        help="The coding sheet (default: the release's sheet file in --data-root, when "
             "there).")] = None,
    skip_missing: Annotated[bool, typer.Option(
        help="Count what is left without the clips whose folders or frames are missing or "
             "damaged, and list those, as --skip-missing trains.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Read a release as training will and report samples per class, subject and split,
    frame counts and every problem found. Exits 2 when the layout cannot be read."""
    from fervid.datasets.check import check_release

    try:
        report = check_release(dataset, data_root, protocol=protocol, sheet=sheet,
                               skip_missing=skip_missing)
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    if json_out:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(2)


def _count_lines(title: str, counts: dict[str, dict[str, int]]) -> None:
    console.print(f"[bold]{title}[/]")
    for name, row in counts.items():
        parts = ", ".join(f"{escape(c)} {n}" for c, n in row.items())
        console.print(f"  {escape(name)} ({sum(row.values())}): {parts}", highlight=False,
                      soft_wrap=True)


def _print_report(report) -> None:
    console.print(f"[bold]{escape(report.dataset)}[/] at {escape(report.root)}: "
                  f"{report.samples} samples, {report.subjects} subjects", highlight=False)
    if report.protocols:
        counts = {}
        for p in report.protocols:
            counts[p.protocol or "classes"] = {**p.counts, **(
                {"(outside)": p.outside} if p.outside else {})}
        _count_lines("samples per class", counts)
    if report.per_split:
        _count_lines("samples per split", report.per_split)
    if report.frames:
        f = report.frames
        console.print(f"frames per clip: min {f['min']:g}, mean {f['mean']:g}, max {f['max']:g} "
                      f"({f['total']:g} in all)")
    if report.fps:
        console.print("frame rates: " + ", ".join(f"{k} fps x {v}" for k, v in report.fps.items()))
    if report.per_subject:
        sizes = sorted(report.per_subject.values())
        console.print(f"samples per subject: min {sizes[0]}, max {sizes[-1]}")
    for title, lines, style in (("worked around", report.notes, "yellow"),
                                ("skipped (--skip-missing)", report.skipped, "yellow"),
                                ("problems", report.problems, "red")):
        if lines:
            console.print(f"[{style}]{title} ({len(lines)}):[/]")
            for line in lines[:MAX_SHOWN]:
                console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
            if len(lines) > MAX_SHOWN:
                console.print(f"  ... and {len(lines) - MAX_SHOWN} more (see --json)")
    if report.layout_error:
        console.print(f"[bold red]error:[/] the release cannot be read: "
                      f"{escape(report.layout_error)}", highlight=False, soft_wrap=True)
