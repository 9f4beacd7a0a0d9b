"""reports/themes.py: the log-odds themes of a part against the whole event."""

from __future__ import annotations

from collections import Counter

from reports.themes import distinctive_terms


def test_distinctive_terms_prefer_the_session_phrase_over_event_wide_words():
    event = Counter({"#copro16": 100, "coproduction": 40, "lone": 12, "wolves": 12, "lone wolves": 12,
                     "housing": 20, "webex": 3})  # fmt: skip
    part = Counter({"#copro16": 10, "coproduction": 4, "lone": 10, "wolves": 10, "lone wolves": 10,
                    "webex": 1})  # fmt: skip
    found = distinctive_terms(part, event, skip=["#copro16"])
    assert [t.term for t in found] == [
        "lone wolves"
    ]  # its words are absorbed; event-wide words aren't distinctive
    assert found[0].count == 10 and found[0].score > 1.0
    assert distinctive_terms(Counter(), event) == []


def test_a_rare_term_is_not_a_theme():
    event = Counter({"echo": 1, "housing": 30})
    assert distinctive_terms(Counter({"echo": 1}), event) == []
