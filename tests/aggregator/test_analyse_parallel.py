"""pipeline.analyse spread over worker processes (aggregator/workers.py): the same rows as one
process, and a post whose analysis raises, or ends its worker process, costing only itself: it is
stored as unreadable with a warning, never analysed again until it changes, and every other post
is analysed."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from aggregator import workers
from aggregator.errors import AggregatorError
from aggregator.pipeline import analyse
from connectors.base import Page, Post
from reports.features import FAILED, unreadable
from reports.text import ANALYSER
from storage.models import PostAnalysis, PostRow
from storage.queries import save_page
from tests.aggregator.hostile_analysers import HOSTILE, PIDS, crashing, raising, recording
from tests.storyhelp import editorial_posts, safeguarding_posts

ANALYSIS, POSTS = PostAnalysis.__table__, PostRow.__table__
SPREAD = {"batch": 20, "workers": 2}  # 30 batches of the 600 posts: spread over two workers
HERE = {"batch": 1000, "workers": 2}  # one batch: analysed in this process


def labelled(config) -> list[Post]:
    """600 posts of the labelled sets: questions, pledges, copies, disclosures, profiles."""
    return [*safeguarding_posts(config), *editorial_posts()[:180]]


def hostile(config) -> list[Post]:
    """The labelled posts, the 300th of them hostile."""
    posts = labelled(config)
    posts[300] = replace(posts[300], text=f"{HOSTILE}: {posts[300].text}")
    return posts


def stored(engine) -> dict[str, dict[str, Any]]:
    """Each post's analysis and sentiment by post id, without when it was analysed."""
    stmt = select(POSTS.c.post_id, POSTS.c.sentiment_polarity, POSTS.c.sentiment_subjectivity,
                  ANALYSIS).join(ANALYSIS, ANALYSIS.c.post_pk == POSTS.c.id)  # fmt: skip
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
    return {r.pop("post_id"): r for r in rows if r.pop("analysed_at")}


def forget_analysis(engine) -> None:
    with engine.begin() as conn:
        conn.execute(ANALYSIS.delete())
        conn.execute(update(POSTS).values(sentiment_polarity=None, sentiment_subjectivity=None))


def unreadable_and_the_rest_analysed(engine, posts: list[Post]) -> dict[str, Any]:
    """The one post stored as unreadable (checked to be the hostile one), every other analysed."""
    rows = stored(engine)
    assert len(rows) == len(posts)
    (bad,) = [pid for pid, r in rows.items() if r["analyser"] == FAILED]
    assert bad == posts[300].id
    shown = {k: v for k, v in unreadable().values().items() if k in ANALYSIS.c}
    assert {k: rows[bad][k] for k in shown} == shown and rows[bad]["low_content"] is True
    assert (rows[bad]["sentiment_polarity"], rows[bad]["sentiment_subjectivity"]) == (0.0, 0.0)
    assert {r["analyser"] for pid, r in rows.items() if pid != bad} == {ANALYSER}
    return rows[bad]


@pytest.fixture
def pids(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "pids"
    folder.mkdir()
    monkeypatch.setenv(PIDS, str(folder))
    return folder


def test_workers_store_the_same_rows_as_one_process(engine, config, pids):
    save_page(engine, "test", Page(labelled(config)))
    assert analyse(engine, workers=1) == 600
    alone = stored(engine)
    forget_analysis(engine)

    assert analyse(engine, **SPREAD, analyser=recording) == 600
    assert stored(engine) == alone
    ran_in = {int(p.name) for p in pids.iterdir()}
    assert ran_in and os.getpid() not in ran_in and len(ran_in) <= 2
    assert analyse(engine, **SPREAD) == 0  # nothing new: nothing analysed, no worker started


def test_a_few_batches_are_analysed_in_this_process(engine, config, pids):
    save_page(engine, "test", Page(labelled(config)))
    assert analyse(engine, batch=100, workers=2, analyser=recording) == 600  # 6 batches, not 8
    assert {int(p.name) for p in pids.iterdir()} == {os.getpid()}


@pytest.mark.parametrize("how", [HERE, SPREAD], ids=["in this process", "in workers"])
def test_a_post_whose_analysis_raises_is_stored_unreadable_and_the_rest_analysed(
    engine, config, caplog, how
):
    posts = hostile(config)
    save_page(engine, "test", Page(posts))
    assert analyse(engine, **how, analyser=raising) == 600
    bad = unreadable_and_the_rest_analysed(engine, posts)
    warned = [r.getMessage() for r in caplog.records if "could not be analysed" in r.getMessage()]
    assert warned == [
        f"post {bad['post_pk']} could not be analysed (RecursionError: maximum recursion depth "
        "exceeded): stored as unreadable, never shown unless pinned"
    ]


def test_an_unreadable_post_is_tried_again_only_when_it_changes(engine, config):
    posts = hostile(config)
    save_page(engine, "test", Page(posts))
    analyse(engine, **HERE, analyser=raising)
    assert analyse(engine, **HERE, analyser=raising) == 0
    save_page(engine, "test", Page([replace(posts[300], text="Edited: carers need time")]))
    assert analyse(engine, **HERE, analyser=raising) == 1
    assert {r["analyser"] for r in stored(engine).values()} == {ANALYSER}


@pytest.mark.slow
def test_a_post_that_ends_its_worker_is_stored_unreadable_and_the_rest_analysed(
    engine, config, caplog
):
    posts = hostile(config)
    save_page(engine, "test", Page(posts))
    assert analyse(engine, **SPREAD, analyser=crashing) == 600
    bad = unreadable_and_the_rest_analysed(engine, posts)
    warned = [r.getMessage() for r in caplog.records if "could not be analysed" in r.getMessage()]
    assert warned == [
        f"post {bad['post_pk']} could not be analysed (its worker process ended abruptly (a crash, "
        "a kill or out of memory)): stored as unreadable, never shown unless pinned"
    ]


def doomed(count: int) -> ProcessPoolExecutor:
    """A pool whose workers end as they start, as under a script without a `__main__` guard."""
    return ProcessPoolExecutor(
        count, mp_context=get_context("spawn"), initializer=partial(os._exit, 1)
    )


@pytest.mark.slow
def test_workers_that_cannot_start_fail_in_one_line_and_blame_no_post(engine, config, monkeypatch):
    save_page(engine, "test", Page(labelled(config)))
    monkeypatch.setattr(workers, "_pool", doomed)
    with pytest.raises(AggregatorError, match="worker processes end as soon as they start"):
        analyse(engine, **SPREAD)
    assert stored(engine) == {}
