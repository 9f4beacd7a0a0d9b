"""The editorial rules measured against a labelled file (`aggregator report --evaluate FILE`).

The file is JSON lines, one post each: {"id", "author", "text", "created_at", "labels": [classes]}
(tests/fixtures/editorial/SOURCES.md). Posts are read oldest first, as the story reads them, so
copies and repeats are found as they would be.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from aggregator.errors import UsageError
from reports.editorial import CLASSES, Item, build_context, classify, highlight_eligible

__all__ = ["TARGETS", "ClassScore", "EditorialEvaluation", "LabelledFileError", "evaluate", "score"]

# (precision, recall) each class must reach; the others are reported, not held to a target.
TARGETS = {"question": (0.95, 0.9), "pledge": (0.95, 0.9), "technical": (0.95, 0.9)}
NEVER_HIGHLIGHTED = ("low_content", "spam", "copy", "technical")


class LabelledFileError(UsageError):
    """A labelled file that cannot be read (a usage error: exit 2); the message names the line and
    how to fix it."""


@dataclass
class ClassScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class EditorialEvaluation:
    posts: int
    scores: dict[str, ClassScore]
    # ids of posts labelled low content, spam, copy or technical that `highlight_eligible` lets through
    leaked: list[str] = field(default_factory=list)
    # ids per class of the posts the rules got wrong: (false positives, false negatives)
    errors: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)

    def failures(self) -> list[str]:
        """Each target missed, as a sentence; empty when every target is met."""
        out = []
        for name, (precision, recall) in TARGETS.items():
            s = self.scores[name]
            if s.precision < precision or s.recall < recall:
                out.append(
                    f"{name}: precision {s.precision:.2f} (target {precision:.2f}), "
                    f"recall {s.recall:.2f} (target {recall:.2f})"
                )
        if self.leaked:
            out.append(
                f"{len(self.leaked)} low-content, spam, copy or technical posts could be highlights"
            )
        return out

    def format_lines(self) -> list[str]:
        """A table for people: each class's precision and recall, then the targets."""
        lines = [
            f"{self.posts} labelled posts",
            f"{'class':<12} {'precision':>9} {'recall':>7} {'posts':>6}",
        ]
        for name in CLASSES:
            s = self.scores[name]
            target = TARGETS.get(name)
            mark = "" if not target else ("  ok" if self._meets(name) else "  BELOW TARGET")
            lines.append(f"{name:<12} {s.precision:>9.2f} {s.recall:>7.2f} {s.tp + s.fn:>6}{mark}")
        lines.append(
            f"possible highlights among low-content, spam, copy or technical posts: {len(self.leaked)}"
        )
        return lines

    def _meets(self, name: str) -> bool:
        precision, recall = TARGETS[name]
        return self.scores[name].precision >= precision and self.scores[name].recall >= recall


def score(records: list[dict]) -> EditorialEvaluation:
    """Precision and recall per class of `classify` against each record's labels."""
    records = sorted(records, key=lambda r: str(r.get("created_at", "")))
    items = [Item(str(r["id"]), str(r["author"]), str(r["text"])) for r in records]
    context = build_context(items)
    scores = {name: ClassScore() for name in CLASSES}
    errors: dict[str, tuple[list[str], list[str]]] = {name: ([], []) for name in CLASSES}
    leaked = []
    for record, item in zip(records, items, strict=True):
        expected, got = set(record["labels"]), classify(item, context)
        for name in CLASSES:
            if name in got and name in expected:
                scores[name].tp += 1
            elif name in got:
                scores[name].fp += 1
                errors[name][0].append(item.id)
            elif name in expected:
                scores[name].fn += 1
                errors[name][1].append(item.id)
        if expected & set(NEVER_HIGHLIGHTED) and highlight_eligible(item, context):
            leaked.append(item.id)
    return EditorialEvaluation(len(records), scores, leaked, errors)


def evaluate(path: Path | str) -> EditorialEvaluation:
    """Read a labelled JSON-lines file and score the editorial rules against it."""
    path = Path(path)
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelledFileError(f"cannot read the labelled file {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            missing = [k for k in ("id", "author", "text", "labels") if k not in record]
            unknown = set(record.get("labels") or ()) - set(CLASSES)
        except (ValueError, TypeError, AttributeError) as exc:
            raise LabelledFileError(f"{path}:{number}: not a JSON object ({exc})") from exc
        if missing:
            raise LabelledFileError(
                f"{path}:{number}: missing {', '.join(missing)}; each line needs "
                '"id", "author", "text" and "labels"'
            )
        if unknown:
            raise LabelledFileError(
                f"{path}:{number}: unknown label(s) {', '.join(sorted(unknown))}; "
                f"use {', '.join(CLASSES)}"
            )
        records.append(record)
    return score(records)
