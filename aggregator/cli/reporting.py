"""Commands that write posts out: `report` (the story) and `export` (research files)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from aggregator.cli.app import fail, get_config, get_engine
from aggregator.config import Config
from aggregator.pipeline import report, writing
from reports.export import export, export_to, spreadsheet_warning
from reports.export_options import ExportUsage, make_options

LABELLED = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("report")
@click.option("--review", is_flag=True,
              help="Also write review.html for the organisers: every candidate the story chose from, each with the line to paste into the curation file.")  # fmt: skip
@click.option("--evaluate", "editorial", metavar="FILE", type=LABELLED,
              help="Score the editorial rules (questions, pledges, technical problems, spam, copies…) against a labelled JSONL file; writes no report.")  # fmt: skip
@click.option("--evaluate-safeguarding", "safeguarding", metavar="FILE", type=LABELLED,
              help="Score identifier and health-disclosure detection against a labelled JSONL file; writes no report.")  # fmt: skip
@click.pass_context
def report_cmd(
    ctx: click.Context, review: bool, editorial: Path | None, safeguarding: Path | None
) -> None:
    """Write the story (HTML, Markdown and JSON) into [report] output. With --evaluate or
    --evaluate-safeguarding, print precision and recall per class instead (exit 1 when a target is
    missed)."""
    config = get_config(ctx)
    if editorial or safeguarding:
        _evaluate(config, editorial, safeguarding)
        return
    with writing(config) as engine:
        files = report(engine, config, review=review)
    for fmt, path in files.items():
        click.echo(f"{fmt}: {path}")


def _evaluate(config: Config, editorial: Path | None, safeguarding: Path | None) -> None:
    """Each evaluation's table on stdout; the targets it misses fail the command. A labelled file
    that cannot be read is a usage error (LabelledFileError, LabelledSetError)."""
    from aggregator.safeguarding import evaluate as evaluate_safeguarding
    from aggregator.safeguarding import scrubber_for
    from reports.editorial_eval import evaluate as evaluate_editorial

    missed: list[str] = []
    if editorial:
        result = evaluate_editorial(editorial)
        click.echo("\n".join([f"{editorial}: editorial rules", *result.format_lines()]))
        missed += result.failures()
    if safeguarding:
        scrubber = scrubber_for(config.privacy)
        allowlist = scrubber.allowlist if scrubber else None
        found = (evaluate_safeguarding(safeguarding, allowlist) if allowlist
                 else evaluate_safeguarding(safeguarding))  # fmt: skip
        click.echo("\n".join(found.format_lines()))
        missed += found.failures()
    if missed:
        fail(f"{len(missed)} target(s) missed: " + "; ".join(missed))


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "ids"]), default="csv", show_default=True,
              help="csv: one row per post; jsonl: the interchange format, re-importable; ids: platform and id only.")  # fmt: skip
@click.option("--output", "-o", metavar="FILE", default="-", show_default=True,
              help="Where to write; - for standard output.")  # fmt: skip
@click.option("--session", "sessions", metavar="ID", multiple=True,
              help="Only this session (repeatable); 'general' for posts outside every session.")  # fmt: skip
@click.option("--platform", "platforms", metavar="NAME", multiple=True,
              help="Only this platform (repeatable), e.g. mastodon.")  # fmt: skip
@click.option("--since", metavar="WHEN",
              help="Posts from this date or date-time on, e.g. 2016-11-28T13:00: in the event's time zone unless it has an offset (Z, +01:00).")  # fmt: skip
@click.option("--until", metavar="WHEN",
              help="Posts before this date-time; a date alone includes that whole day. Event time zone unless it has an offset.")  # fmt: skip
@click.option("--hashtag", "hashtags", metavar="TAG", multiple=True,
              help="Only posts carrying this hashtag (repeatable; any case, # optional).")  # fmt: skip
@click.option("--pseudonymise", is_flag=True,
              help="Replace accounts, display names and @mentions with keyed pseudonyms (key in $AGGREGATOR_PSEUDONYM_KEY); post URLs are left out.")  # fmt: skip
@click.option("--excel", is_flag=True, help="csv for Excel: UTF-8 with a byte-order mark.")
@click.option("--manifest", is_flag=True,
              help="Also write FILE.manifest.json: event, sources, collection window, counts, gaps, filters, columns.")  # fmt: skip
@click.pass_context
def export_cmd(ctx: click.Context, fmt: str, output: str, manifest: bool, **chosen: Any) -> None:
    """Export posts for researchers (columns: docs/data-dictionary.md); formula-like cells are neutralised."""
    config = get_config(ctx)
    if manifest and output == "-":
        raise click.BadParameter(
            "a manifest goes beside the export file: add --output FILE", param_hint="--manifest"
        )
    try:
        options = make_options(config, fmt, env=os.environ, **chosen)
    except ExportUsage as exc:
        raise click.BadParameter(str(exc), param_hint=exc.param) from None
    engine = get_engine(config)
    if output == "-":
        stats, _ = export(engine, config, sys.stdout, options)
        sys.stdout.flush()
        _warn_excel(fmt, stats.rows)
        return
    # written whole or not at all, then the manifest beside it
    done = export_to(engine, config, Path(output), options, manifest=manifest)
    _warn_excel(fmt, done.stats.rows)
    click.echo(f"Exported {done.stats.rows} posts to {output}.", err=True)
    if done.manifest is not None:
        click.echo(f"Manifest: {done.manifest}", err=True)


def _warn_excel(fmt: str, rows: int) -> None:
    if fmt == "csv" and (warning := spreadsheet_warning(rows)):
        click.echo(f"! {warning}", err=True)
