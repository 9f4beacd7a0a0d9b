"""The JSONL reader at import speed (issue 15): plain lines skip the checks plain JSON always
passes, with the same posts and the same reasons; every copy of a post reaches storage, so the
rules for copies (an edit wins, a deletion stays, counts) hold within a page as across pages and
how a file is cut into pages changes nothing stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from aggregator.pipeline import import_pages
from connectors.archives import post_from_interchange, read_jsonl, read_lines
from connectors.base import Page
from connectors.values import storable
from storage.db import open_database
from storage.models import POST_TABLE

GOOD = {
    "platform": "mastodon",
    "id": "1",
    "created_at": "2016-11-28T13:05:00+01:00",
    "author": "a@example.org",
    "text": "Hello #CoPro16 from @b@example.org https://example.org/x",
    "url": "https://example.org/@a/1",
}


def checked_line(obj: object) -> Page:
    """Every line through every check, as before plain lines were told apart."""
    return Page([storable(post_from_interchange(obj))])


def read(pages: list[Page]) -> tuple[list[dict], list[str]]:
    """Every post's fields and every line's rejection, in order."""
    return [vars(p) for page in pages for p in page.posts], [r for pg in pages for r in pg.rejected]


# Values a line may carry anywhere: text with escaped (and unpaired) surrogates once written,
# numbers past a float's range, NaN and the infinities Python's json writes.
TEXT = st.text(st.characters(exclude_categories=()), max_size=8)
NUMBERS = st.integers(0, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
FIELDS = {
    "text": TEXT,
    "author_name": TEXT | VALUES,
    "likes": st.none() | NUMBERS,
    "hashtags": st.lists(TEXT, max_size=2) | VALUES,
    "media": st.lists(st.dictionaries(TEXT, VALUES, max_size=2) | TEXT, max_size=2) | VALUES,
    "extra": VALUES,
}
LINES = st.fixed_dictionaries({}, optional=FIELDS).map(lambda extra: {**GOOD, **extra})


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(record=LINES, ascii_only=st.booleans(), big=st.sampled_from(["", "1e400", "-1e999"]))
def test_a_line_read_the_plain_way_gives_what_every_check_gives(tmp_path, record, ascii_only, big):
    line = json.dumps(record, ensure_ascii=ascii_only)
    if big:  # a number json.dumps never writes: a float past its range
        line = line[:-1] + f', "huge": {big}}}'
    path = tmp_path / "posts.jsonl"
    path.write_text(line + "\n", encoding="utf-8", errors="surrogatepass")
    assert read(list(read_jsonl(path))) == read(list(read_lines(path, checked_line)))


def test_numbers_json_has_not_and_escaped_surrogates_are_checked(tmp_path):
    lines = [
        {**GOOD, "id": "nan", "extra": float("nan")},
        {**GOOD, "id": "inf", "media": [{"w": float("inf")}]},
        {**GOOD, "id": "half", "text": "half \ud800 a surrogate"},
        {**GOOD, "id": "pair", "text": "a whole pair \U0001f44f"},
    ]
    path = tmp_path / "posts.jsonl"
    text = "\n".join(json.dumps(obj) for obj in lines)  # ensure_ascii: surrogates escaped
    path.write_text(text + '\n{"platform": "x", "huge": 1e400}\n', encoding="utf-8")
    [page] = read_jsonl(path)

    assert [(p.id, p.text) for p in page.posts] == [
        ("half", "half \ufffd a surrogate"),  # repaired, as every connector's text is
        ("pair", "a whole pair \U0001f44f"),
    ]
    assert [r.split(": ", 1)[0] for r in page.rejected] == ["line 1", "line 2", "line 5"]
    assert "not plain JSON" in page.rejected[0] and "not plain JSON" in page.rejected[1]
    assert page.rejected[2] == "line 5: missing id, created_at, author, text, url"


T0 = datetime(2016, 11, 28, 13, 5, tzinfo=UTC)


def copy(n: int, **kw: object) -> dict:
    return {**GOOD, "id": str(n), "text": f"post {n}", "likes": 1, **kw}


def stored(engine) -> dict[str, tuple]:
    columns = ("text", "edited_at", "likes", "reposts", "created_at")
    with engine.connect() as conn:
        rows = conn.execute(select(POST_TABLE)).all()
    return {r.post_id: (*(getattr(r, c) for c in columns), r.deleted_at is not None) for r in rows}


def test_case_41_copies_in_one_page_keep_the_edit_the_deletion_and_the_counts(engine, tmp_path):
    edited = (T0 + timedelta(hours=1)).isoformat()
    lines = [
        copy(1, text="corrected", edited_at=edited, likes=5),
        copy(1, likes=None, reposts=2),  # the original, after its edit: only its counts count
        copy(2, deleted=True),
        copy(2),  # a later copy without the mark does not bring it back
        copy(3, created_at=None),
        copy(3),  # a post with no time takes a later copy's
    ]
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(json.dumps(obj) + "\n" for obj in lines), encoding="utf-8")
    summary = import_pages(engine, path, read_jsonl(path))

    assert (summary.pages, summary.read, summary.new_posts) == (1, 6, 3)
    assert stored(engine) == {
        "1": ("corrected", T0 + timedelta(hours=1), 5, 2, T0 - timedelta(hours=1), False),
        "2": ("post 2", None, 1, None, T0 - timedelta(hours=1), True),
        "3": ("post 3", None, 1, None, T0 - timedelta(hours=1), False),
    }


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.permutations(range(6)),
    sizes=st.lists(st.integers(1, 7), min_size=2, max_size=2, unique=True),
)
def test_how_a_file_is_cut_into_pages_changes_nothing_stored(tmp_path_factory, order, sizes):
    edits = [None, (T0 + timedelta(hours=1)).isoformat(), (T0 + timedelta(hours=2)).isoformat()]
    lines = [
        copy(n % 2, text=f"copy {n}", edited_at=edits[n % 3], likes=n, deleted=n == 4)
        for n in order
    ]
    folder = tmp_path_factory.mktemp("cut")
    path = folder / "posts.jsonl"
    path.write_text("".join(json.dumps(obj) + "\n" for obj in lines), encoding="utf-8")
    results = []
    for size in sizes:
        engine = open_database(f"sqlite:///{folder}/pages-{size}.db")
        import_pages(engine, path, read_jsonl(path, page_size=size))
        results.append(stored(engine))
        engine.dispose()
    assert results[0] == results[1]
