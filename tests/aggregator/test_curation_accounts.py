"""[[mute]] and [[role]] in the curation file: accounts muted or given a role for the whole story."""

from __future__ import annotations

import pytest

from aggregator.curation import CurationError, load_curation
from tests.helpers import with_curation


def test_mutes_and_roles_are_read_by_account_whatever_its_case_or_at(project):
    curation = load_curation(with_curation(project, """
[[mute]]
account = "@Spammer@Example.org"
note = "sells followers"

[[role]]
account = "helenbevan"
role = "speaker"

[[role]]
account = "@NHSEngland"
role = "organiser"

[[role]]
account = "newsbot@bots.example"
role = "bot"
"""))  # fmt: skip
    assert curation.mutes == {"spammer@example.org": "sells followers"}
    assert curation.muted("SPAMMER@example.org") and not curation.muted("helenbevan")
    assert curation.role("HelenBevan") == "speaker"
    assert curation.role("nhsengland") == "organiser"
    assert curation.role("@newsbot@bots.example") == "bot"
    assert curation.role("someone") is None


def test_mutes_and_roles_do_not_re_tag_every_post(project):
    config = with_curation(project, "")
    plain = load_curation(config)
    (project / "curation.toml").write_text('[[mute]]\naccount = "x"\n', encoding="utf-8")
    muted = load_curation(config)
    assert muted.mutes and plain.fingerprint() == muted.fingerprint()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[[mute]]\nnote = "no account"\n', "mute[0].account"),
        ('[[mute]]\naccount = "two words"\n', "mute[0].account"),
        ('[[mute]]\naccount = "x"\nid = "1"\n', "mute[0].id"),
        ('[[role]]\naccount = "x"\nrole = "keynote"\n', "role[0].role"),
        ('[[role]]\naccount = "x"\n', "role[0].role"),
        ('[[role]]\naccount = "x"\nrole = "bot"\n[[role]]\naccount = "@X"\nrole = "speaker"\n',
         "role[1]"),
        ('mute = "x"\n', "mute"),
        ('[[mute]]\naccount = "x"\nnote = 3\n', "mute[0].note"),
    ],
)  # fmt: skip
def test_a_bad_mute_or_role_is_named_by_its_place(project, text, where):
    with pytest.raises(CurationError) as err:
        load_curation(with_curation(project, text))
    assert any(p.startswith(where) for p in err.value.problems), err.value.problems
