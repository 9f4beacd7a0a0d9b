"""The scrubber: every form an account or name takes in text and URLs is found; plain words are not."""

from __future__ import annotations

import pytest

from aggregator.pseudonym import Pseudonymiser
from tests.helpers import ALICE


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("hi @alice!", "alice"),
        ("hi @alice@mastodon.social.", "alice"),
        ("hi ＠alice", "alice"),
        ("see https://mastodon.social/@alice/123", "alice"),
        ("see https://mastodon.social/users/alice/statuses/1", "alice"),
        ("see https://twitter.com/erin/status/5 and x.com/erin", "erin"),
        ("see https://bsky.app/profile/frank.bsky.social/post/1", "frank"),
        ("written out: frank.bsky.social", "frank"),
        ("at://did:plc:abcdefghijklmnopqrstuvwx/app.bsky.feed.post/1", "did:plc"),
        ("Thanks Alice Smith!", "Alice"),
        ("Thanks ALICE SMITH", "ALICE"),
        ("Frank O'Neil spoke", "Frank"),
    ],
)
def test_the_scrubber_finds_every_form_of_an_account_or_name(text, gone):
    p = Pseudonymiser(
        b"k" * 16,
        [ALICE, "erin", "frank.bsky.social"],
        ["Alice Smith (she/her)", "Frank O'Neil | NHS"],
    )
    assert gone.lower() not in p.text(text).lower()
    assert gone.lower() not in p.text(text).lower().replace("user_", "")


def test_plain_words_are_left_alone():
    p = Pseudonymiser(b"k" * 16, ["care", ALICE], ["Bob"])
    assert p.text("care for bob and Carol Read") == "care for bob and Carol Read"
    assert p.text("keyword 'care'", bare=True) == f"keyword '{p.account('care')}'"
