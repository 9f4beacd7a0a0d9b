"""The `tag` command: tag new posts, `--explain` one post's session, `--evaluate` the rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import Engine

from aggregator.cli.app import fail, get_config, get_engine
from aggregator.clock import EventClock
from aggregator.config import Config
from aggregator.errors import UsageError
from aggregator.logs import printable
from aggregator.pipeline import writing
from aggregator.tagstage import evaluate, explain, tag
from connectors import ConnectorError


def _named(session_id: str | None) -> str:
    return session_id or "general"


def _explanation_lines(config: Config, x: Any) -> list[str]:
    """`tag --explain` for one post: the decision, then every reason behind it."""
    clock, p, why, d = EventClock(config.event.timezone), x.post, x.why, x.final.decision
    lines = [
        f"{p.platform} {p.post_id} at {clock.stamp(p.created_at)} {p.url or ''}",
        f"  {printable(p.text)!r}",
        f"Decision: {_named(d.session_id)} (score {d.score:.2f}, {x.final.method}): {d.reason}",
        "Cues: "
        + ("; ".join(f"{c.describe()} -> {', '.join(c.sessions)}" for c in why.cues) or "none"),
    ]
    live = config.session(why.live) if why.live else None
    if live is None:
        lines.append("Live session: none (outside every session)")
    else:
        grace = " (within the grace minutes)" if why.in_grace else ""
        lines.append(f"Live session: {live.id} ({clock.span(live.start, live.end)}){grace}")
    if p.reply_to:
        parent = why.parent
        state = f"in {_named(parent.session_id)}: {parent.reason}" if parent else "not tagged"
        lines.append(f"Reply to: {p.reply_to}, {state}")
    lines.append("Curation: " + ("; ".join(e.describe() for e in x.final.entries) or "none"))
    s = x.stored
    if s is None:
        return [*lines, "Stored: not tagged yet (run `aggregator tag`)"]
    flags = (", excluded" if s.excluded else "") + (", highlight" if s.highlight else "")
    stale = "" if x.current else " (from an older programme or curation: run `aggregator tag`)"
    return [
        *lines,
        f"Stored: {_named(s.session_id)} (score {s.score:.2f}, {s.method}{flags}){stale}",
    ]


def _echo_explanation(config: Config, engine: Engine, post_id: str) -> None:
    found = explain(engine, config, post_id)
    if not found:
        fail(f"no stored post has id {post_id!r} (check the id, or collect the post first)")
    for x in found:
        click.echo("\n".join(printable(line, 2000) for line in _explanation_lines(config, x)))


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _echo_evaluation(config: Config, path: Path) -> None:
    try:
        report = evaluate(config, path)
    except ConnectorError as exc:  # the labelled file, not a source, is what cannot be read
        raise UsageError(str(exc)) from None
    for reason in report.rejected:
        click.echo(f"! {path.name}: skipped {reason}", err=True)
    ev = report.evaluation
    if not ev.pairs:
        raise UsageError(f'{path}: no labelled posts (each line needs "expected_session")')
    click.echo(f"{path.name}: {len(ev.pairs)} labelled posts, tagged by the rules (no curation)")
    click.echo(f"Accuracy: {ev.accuracy:.1%} ({ev.correct} of {len(ev.pairs)})\n")
    click.echo(f"{'session':<20} {'precision':>9} {'recall':>7} {'labelled':>8}")
    stats = ev.per_session()
    order = [s.id for s in config.sessions] + [None]
    for name in order + sorted((n for n in stats if n not in order), key=str):
        if name in stats:
            precision, recall, count = stats[name]
            row = f"{_named(name):<20} {_percent(precision):>9} {_percent(recall):>7} {count:>8}"
            click.echo(row + ("" if name in order else "  (not a session in the programme)"))
    click.echo("\nMost common confusions (expected -> tagged):")
    for (expected, got), count in ev.confusions():
        click.echo(f"  {count:>4}  {_named(expected)} -> {_named(got)}")
    if not ev.confusions():
        click.echo("  none")
    for post_id, expected, d in report.wrong[:10]:
        click.echo(
            f"  wrong: {post_id} expected {_named(expected)}: {_named(d.session_id)}, {d.reason}"
        )
    if report.unlabelled:
        click.echo(f"({report.unlabelled} posts without expected_session: context, not scored.)")


@click.command("tag")
@click.option("--all", "full", is_flag=True, help="Re-tag every post, not only new ones.")
@click.option("--explain", "post_id", metavar="POST_ID",
              help="Say why a stored post is in its session: every cue, the live session, the "
                   "parent, any correction. Exits 1 if no stored post has this id.")  # fmt: skip
@click.option("--evaluate", "labelled", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Score the rules against labelled JSONL (expected_session on each line): "
                   "accuracy, precision and recall, confusions. Changes nothing.")  # fmt: skip
@click.pass_context
def tag_cmd(ctx: click.Context, full: bool, post_id: str | None, labelled: Path | None) -> None:
    """Match each post to a session of the programme (new posts only, unless the programme or the
    curation changed)."""
    if sum(map(bool, (full, post_id, labelled))) > 1:
        raise click.UsageError("use one of --all, --explain and --evaluate at a time")
    config = get_config(ctx)
    if labelled is not None:
        return _echo_evaluation(config, labelled)
    if post_id is not None:
        return _echo_explanation(config, get_engine(config), post_id)
    with writing(config) as engine:
        summary = tag(engine, config, full=full)
    for problem in summary.unmatched:
        click.echo(f"! {config.curation}: {problem}", err=True)
    scope = "all posts (programme or curation changed, or --all)" if summary.full else "new posts"
    curated = f"; {summary.curated} corrected by the curation file" if summary.curated else ""
    click.echo(f"Tagged {summary.tagged} {scope}{curated}.")
