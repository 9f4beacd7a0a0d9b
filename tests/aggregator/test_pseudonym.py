"""Keyed pseudonyms: stable, keyed and blind to case; the key only from the environment."""

from __future__ import annotations

import re

import pytest

from aggregator.pseudonym import Pseudonymiser, pseudonym_key
from tests.helpers import ALICE, KEY, invoke


def test_case_34_pseudonyms_are_keyed_stable_and_blind_to_case():
    one, same, other = Pseudonymiser(b"k" * 16), Pseudonymiser(b"k" * 16), Pseudonymiser(b"j" * 16)
    assert one.account("@Alice@Mastodon.Social") == same.account(ALICE) != other.account(ALICE)
    assert re.fullmatch(r"user_[0-9a-f]{12}", one.account(ALICE))
    assert re.fullmatch(r"name_[0-9a-f]{12}", one.name("Alice  Smith")) and one.name(
        "alice smith"
    ) == one.name("Alice Smith")


@pytest.mark.parametrize(("value", "words"), [(None, "set the environment variable AGGREGATOR_PSEUDONYM_KEY"),
                                              ("abc123", "is too short")])  # fmt: skip
def test_a_missing_or_weak_key_is_a_one_line_usage_error(example_loaded, value, words):
    result = invoke(
        example_loaded, "export", "--pseudonymise", env={"AGGREGATOR_PSEUDONYM_KEY": value}
    )
    assert result.exit_code == 2
    assert words in result.output and len(result.output.strip().splitlines()) == 1
    if value:
        assert value not in result.output


def test_pseudonym_key_reads_only_the_environment():
    assert pseudonym_key({"AGGREGATOR_PSEUDONYM_KEY": KEY}) == KEY.encode()
    assert pseudonym_key({}, required=False) is None
