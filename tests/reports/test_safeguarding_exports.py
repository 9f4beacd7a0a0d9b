"""Issue 12: a valid NHS number, a phone number and an e-mail address posted in a session appear
nowhere in the exports or the logs; an organisation's helpline and enquiries address stay."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aggregator.logs import redact
from tests.helpers import invoke

NHS = "943 476 5919"  # a valid check digit
PHONE = "07700 900123"
EMAIL = "jo.bloggs@gmail.com"
ADDRESS = "12 Acacia Road, Leeds LS6 2AB"
HELPLINE = "0300 123 4567"
ENQUIRIES = "enquiries@example-trust.nhs.uk"
PERSONAL = (NHS, NHS.replace(" ", ""), PHONE, EMAIL, ADDRESS)

POSTS = [
    {"platform": "mastodon", "id": "https://mastodon.social/users/jo/statuses/1",
     "created_at": "2016-11-28T13:10:00Z", "author": "jo@mastodon.social", "author_name": "Jo",
     "url": "https://mastodon.social/@jo/1",
     "text": f"My NHS number is {NHS}, ring me on {PHONE} or {EMAIL} #CoPro16",
     "html": f"<p>My NHS number is {NHS}, ring me on {PHONE} or {EMAIL}</p>",
     "mentions": ["ann@mastodon.online"],
     "media": [{"url": "https://files.example/a.png", "type": "image", "alt": f"Letter to {ADDRESS}"}]},
    {"platform": "mastodon", "id": "https://mastodon.social/users/trust/statuses/2",
     "created_at": "2016-11-28T13:15:00Z", "author": "trust@mastodon.social",
     "url": "https://mastodon.social/@trust/2",
     "text": f"Questions? Call our helpline {HELPLINE} or write to {ENQUIRIES} #CoPro16"},
]  # fmt: skip


def imported(project: Path, redact_identifiers: bool | None = None) -> Path:
    if redact_identifiers is not None:
        cfg = project / "config.toml"
        value = "true" if redact_identifiers else "false"
        cfg.write_text(cfg.read_text().replace(
            "opt_out = []", f"opt_out = []\nredact_identifiers = {value}"))  # fmt: skip
    path = project / "people.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in POSTS), encoding="utf-8")
    assert invoke(project, "import", str(path)).exit_code == 0
    return path


def test_identifiers_appear_in_no_export_and_are_counted_in_the_manifest(project):
    imported(project)
    for fmt in ("csv", "jsonl"):
        out = project / f"posts.{fmt}"
        result = invoke(project, "export", "--format", fmt, "--manifest", "-o", str(out))
        assert result.exit_code == 0, result.output
        written = out.read_text(encoding="utf-8")
        for value in PERSONAL:
            assert value not in written, (fmt, value)
        assert "[NHS number removed]" in written and "[phone removed]" in written
        assert HELPLINE in written and ENQUIRIES in written  # published contacts stay
        assert "ann@mastodon.online" in written  # a fediverse handle is an account, not an e-mail
        manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
        counts = manifest["identifiers_redacted"]
        # what the file lost: in JSONL the text, html and raw each carry the number and the alt
        # text the address; of them a CSV holds the text alone
        if fmt == "jsonl":
            assert counts["nhs_number"] >= 2 and counts["phone"] >= 2 and counts["email"] >= 2
            assert counts["address"] >= 1
        else:
            assert counts == {"nhs_number": 1, "phone": 1, "email": 1, "address": 0}


def test_redaction_can_be_switched_off_for_an_approved_research_export(project):
    imported(project, redact_identifiers=False)
    out = project / "posts.csv"
    assert invoke(project, "export", "--manifest", "-o", str(out)).exit_code == 0
    assert EMAIL in out.read_text(encoding="utf-8")
    manifest = json.loads(out.with_name("posts.csv.manifest.json").read_text())
    assert manifest["identifiers_redacted"] is None


def test_a_bad_redact_identifiers_value_is_a_config_error(project):
    cfg = project / "config.toml"
    cfg.write_text(
        cfg.read_text().replace("opt_out = []", 'opt_out = []\nredact_identifiers = "yes"')
    )
    result = invoke(project, "status")
    assert result.exit_code == 2 and "privacy.redact_identifiers" in result.output


def test_identifiers_never_reach_the_log_file(project, tmp_path):
    log = tmp_path / "run.log"
    bad = project / "bad.jsonl"
    # a rejected line quotes its values in the skip reason: one reason carries an e-mail address
    bad.write_text(json.dumps({**POSTS[0], "id": {"nested": EMAIL}, "likes": PHONE}) + "\n"
                   + json.dumps(POSTS[1]) + "\n", encoding="utf-8")  # fmt: skip
    result = invoke(project, "--log-file", str(log), "import", str(bad))
    assert result.exit_code == 0, result.output
    logged = log.read_text(encoding="utf-8")
    assert "skipped line 1" in logged or "line 1" in logged
    for value in PERSONAL:
        assert value not in logged and value not in result.output


def test_the_log_redactor_removes_identifiers_from_any_line(caplog):
    line = f"source 'x': record {EMAIL} with {PHONE} and NHS {NHS}"
    clean = redact(line)
    assert EMAIL not in clean and PHONE not in clean and NHS not in clean
    assert clean.startswith("source 'x': record ")
    with caplog.at_level(logging.INFO):
        logging.getLogger("aggregator.test").info("no identifiers here: %d posts", 3)
    assert "no identifiers here: 3 posts" in caplog.text
