"""The config-time cron check (aggregator.cron, standard library) and the scheduler that runs the
line (aggregator.scheduler, APScheduler) must give one verdict: a line the config accepts always
runs, and a line it refuses would never have run."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import cron, scheduler

TZ = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)

LINES = [
    "0 2 * * *", "*/15 * * * *", "0 2 * * 1-5", "0 2 * * sun", "0 2 * * 7", "0 2 * * 5-7",
    "0 2 * * */2", "0 2 * * mon,wed,fri", "30 1 1 * *", "0 2 29 2 *", "0 2 31 2 *", "0 2 30 2 *",
    "0 2 31 4 *", "0 2 31 */2 *", "0 2 1 jan *", "0 2 * jan-mar *", "0 2 13 * 5", "0 2 last * *",
    "0 2 1st mon * *", "60 2 * * *", "0 24 * * *", "0 2 0 * *", "0 2 * 13 *", "0 2 * * 8",
    "0 2 * * 5-1", "0 2 * * */0", "x 2 * * *", "0 2 * *", "0 2 * * * *", "0-30/10 2 * * *",
    "5/10 * * * *", "0 2 ? * *", "0 2 * * ?", "0 2 15-10 * *", "0 2 * feb sat",
    "0 2 31 jun *", "0,30 1,2 1,15 * *", "0 2 * * mon-fri", "0 2 1-7 * mon",
]  # fmt: skip


def scheduler_verdict(line: str) -> bool:
    return scheduler.cron_problem(line, TZ, NOW) is None


@pytest.mark.parametrize("line", LINES)
def test_config_check_and_scheduler_agree(line):
    assert (cron.cron_problem(line, TZ, NOW) is None) == scheduler_verdict(line), line


def test_a_line_that_never_fires_is_refused_by_name():
    problem = cron.cron_problem("0 2 31 2 *", TZ, NOW)
    assert problem is not None and "never fires" in problem and "'0 2 31 2 *'" in problem


FIELD = st.one_of(
    st.just("*"),
    st.integers(0, 62).map(str),
    st.tuples(st.integers(0, 40), st.integers(0, 40)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.integers(0, 9).map(lambda n: f"*/{n}"),
    st.sampled_from(["mon", "sun", "jan", "feb", "dec", "sat-sun", "1,3,5", "2-9/3", "last"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(FIELD, min_size=5, max_size=5))
def test_config_check_and_scheduler_agree_on_generated_lines(fields):
    line = " ".join(fields)
    assert (cron.cron_problem(line, TZ, NOW) is None) == scheduler_verdict(line), line
