"""Safeguarding: identifiers found and redacted (organisations' lines left alone), personal health
disclosures told from clinicians, topics and reported speech, roles, the labelled sets, linear time."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.safeguarding import (
    DEFAULT_ALLOWLIST,
    Found,
    LabelledSetError,
    disclosure,
    evaluate,
    find_identifiers,
    is_valid_nhs_number,
    redact,
    role_from_profile,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "safeguarding"


def spans(text: str, allowlist=DEFAULT_ALLOWLIST) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in find_identifiers(text, allowlist)]


def reference_check_digit(nine: str) -> int | None:
    """The NHS modulus-11 rule as NHS Digital states it: weights 10 down to 2, 11 - remainder,
    11 becomes 0, 10 means no valid number."""
    total = sum(int(d) * w for d, w in zip(nine, [10, 9, 8, 7, 6, 5, 4, 3, 2], strict=True))
    check = 11 - total % 11
    return {11: 0, 10: None}.get(check, check)


# ---- NHS numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("943 476 5919", True),  # NHS Digital's published example
        ("9434765919", True),
        ("943-476-5919", True),
        ("943 476 5918", False),
        ("400 000 0020", True),  # 40 + 2*2 = 44, remainder 0: 11 becomes check digit 0
        ("4000000080", False),  # 40 + 8*2 = 56, remainder 1: check 10, no number is valid
        ("4000000081", False),
        ("943 476 591", False),
    ],
)
def test_nhs_check_digit(number, valid):
    assert is_valid_nhs_number(number) is valid


PREFIXES = st.sampled_from(["", "My NHS number is ", "nhs no: ", "(", "Ref "])
SUFFIXES = st.sampled_from(["", ".", " thanks", ")", "!"])
SEPARATORS = st.sampled_from(["", " ", "-"])
NINE = st.text(alphabet="0123456789", min_size=9, max_size=9)


def _written(ten: str, sep: str) -> str:
    return sep.join([ten[:3], ten[3:6], ten[6:]]) if sep else ten


@given(NINE, SEPARATORS, PREFIXES, SUFFIXES)
def test_every_valid_nhs_number_is_found_and_redacted(nine, sep, prefix, suffix):
    check = reference_check_digit(nine)
    if check is None:
        return
    number = _written(nine + str(check), sep)
    text = prefix + number + suffix
    assert find_identifiers(text) == [Found("nhs_number", len(prefix), len(prefix) + len(number))]
    redacted, counts = redact(text)
    assert redacted == prefix + "[NHS number removed]" + suffix
    assert counts == {"nhs_number": 1}


@given(NINE, SEPARATORS, PREFIXES, SUFFIXES)
def test_no_number_with_a_wrong_check_digit_is_found(nine, sep, prefix, suffix):
    check = reference_check_digit(nine)
    for last in "0123456789":
        if check is not None and int(last) == check:
            continue
        text = prefix + _written(nine + last, sep) + suffix
        assert find_identifiers(text) == []
        assert redact(text) == (text, {})


def test_nhs_numbers_in_other_digits_and_isbns_are_not_found():
    assert spans("ISBN 0306406152 is the book") == []
    assert spans("0306406152 is the book") == [("nhs_number", "0306406152")]
    assert spans("order 94347659190 and 19434765919") == []  # part of longer numbers
    assert spans("fullwidth ９４３４７６５９１９") == [("nhs_number", "９４３４７６５９１９")]


# ---- phones ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        "07700 900123",
        "07700900123",
        "07700-900-123",
        "077 0090 0123",
        "+44 7700 900123",
        "+447700900123",
        "+44 (0)7700 900123",
        "0044 7700 900123",
        "(07700) 900123",
        "0113 496 0123",
        "(0113) 496 0123",
        "0113-496-0123",
        "020 7946 0123",
        "+44 20 7946 0123",
        "01632 960123",
    ],
)
def test_personal_phone_numbers_are_found_whole(phone):
    assert spans(f"Ring me on {phone}, evenings") == [("phone", phone)]


@pytest.mark.parametrize(
    "text",
    [
        "Carers' helpline 0300 123 1053 is open until 8pm",
        "Freephone 0800 123 4567 for the patient experience team",
        "Call 0808 157 0123 any time",
        "NHS Direct used to be 0845 4647",
        "Our line: 0330 123 4567",
        "Urgent advice: NHS 111, emergencies 999, Samaritans 116 123",
        "It's +44 300 123 4563 from abroad",  # 300 123 4563 alone would be a valid NHS number
        "the stream had 1,234 viewers at 17:30 on 28/11/2016, 0.07 per cent",
    ],
)
def test_organisation_lines_and_other_numbers_are_not_personal(text):
    assert spans(text) == []


def test_the_phone_allowlist_is_a_parameter():
    strict = DEFAULT_ALLOWLIST.__class__(phone_prefixes=())
    assert spans("call 0300 123 1053", strict) == [("phone", "0300 123 1053")]


# ---- e-mail addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    ["jo.bloggs@example.org", "Jo+copro@mail.example.co.uk", "k_quarmby12@example.net"],
)
def test_personal_email_addresses_are_found_whole(email):
    assert spans(f"email me on {email}.") == [("email", email)]


@pytest.mark.parametrize(
    "text",
    [
        "Questions? enquiries@example-trust.nhs.uk",
        "Get involved: involvement@carers.example.org.uk",
        "Write to england.copro16@nhs.net",
        "PALS: pals@example.nhs.uk or Contact-Us@example.org",
        "Follow @copro16notes@mastodon.example for notes",
        "a@b is not an address, nor is me@localhost",
    ],
)
def test_role_mailboxes_handles_and_non_addresses_are_not_personal(text):
    assert spans(text) == []


def test_an_organisations_own_domain_is_allowlisted_when_configured():
    text = "slides from jane.doe@voices.example and sam@team.voices.example"
    assert len(spans(text)) == 2
    ours = DEFAULT_ALLOWLIST.with_organisation(domains=["Voices.example"])
    assert spans(text, ours) == []


def test_shared_domain_role_prefixes_hold_only_on_their_domain():
    assert spans("england.copro16@nhs.net") == []
    assert spans("england.copro16@example.org") == [("email", "england.copro16@example.org")]


# ---- addresses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("Cards to 12 Acacia Road, Leeds LS6 2AB please", "12 Acacia Road, Leeds LS6 2AB"),
        ("I'm at 4 Mill Lane, Hebden Bridge, HX7 8AB", "4 Mill Lane, Hebden Bridge, HX7 8AB"),
        ("post: Flat 2, 14 Clarendon Street, Coventry CV1 4HA", "Flat 2, 14 Clarendon Street, Coventry CV1 4HA"),
        ("17a Station Rd. Salisbury SP2 7AA", "17a Station Rd. Salisbury SP2 7AA"),
        ("at 12 St Anne's Road LS6 2AB", "12 St Anne's Road LS6 2AB"),
        ("send to 88 park view, leeds ls11 6dx", "88 park view, leeds ls11 6dx"),
    ],
)  # fmt: skip
def test_a_street_address_with_its_postcode_is_found_whole(text, address):
    assert spans(text) == [("address", address)]


@pytest.mark.parametrize(
    "text",
    [
        "Watch party at the community centre, LS6 2AB, all welcome",
        "Greetings from LS6! Watching with a cuppa",
        "Write to us at Quarry House, Quarry Hill, Leeds LS2 7UE",
        "I grew up on 12 Acacia Road. LS6 2AB is where the venue is",
    ],
)
def test_postcodes_alone_and_addresses_without_a_house_number_are_not_found(text):
    assert spans(text) == []


def test_a_venues_postcode_can_be_allowlisted():
    text = "Venue: 1 Park Row, Leeds LS1 5AB"
    assert spans(text) == [("address", "1 Park Row, Leeds LS1 5AB")]
    assert spans(text, DEFAULT_ALLOWLIST.with_organisation(postcodes=["ls1 5ab"])) == []


# ---- redaction -------------------------------------------------------------------------------------

POST = (
    "NHS no 943 476 5919, mobile +44 7700 900123, landline 0113 496 0123, "
    "mail jo.bloggs@example.org, home 12 Acacia Road, Leeds LS6 2AB. Helpline 0300 123 1053."
)


def test_redact_replaces_each_identifier_and_counts_them():
    redacted, counts = redact(POST)
    assert counts == {"nhs_number": 1, "phone": 2, "email": 1, "address": 1}
    assert redacted == (
        "NHS no [NHS number removed], mobile [phone removed], landline [phone removed], "
        "mail [e-mail removed], home [address removed]. Helpline 0300 123 1053."
    )


def test_redact_never_leaves_the_original_digits():
    redacted, _ = redact(POST)
    digits = "".join(c if c.isdigit() else " " for c in redacted).split()
    assert digits == ["0300", "123", "1053"]  # the helpline, and nothing else


@given(
    st.integers(0, 999),
    st.sampled_from(["07700 900{}", "+447700900{}", "(0113) 496 0{}", "+44 20 7946 0{}"]),
)
def test_redacted_phone_numbers_leave_no_digits(n, form):
    phone = form.format(f"{n:03d}")
    redacted, counts = redact(f"text me on {phone} tonight")
    assert counts == {"phone": 1}
    assert not any(c.isdigit() for c in redacted)


def test_redact_can_be_limited_to_some_kinds():
    redacted, counts = redact(POST, kinds=["nhs_number"])
    assert counts == {"nhs_number": 1}
    assert "+44 7700 900123" in redacted
    assert "5919" not in redacted


# ---- disclosures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("My son was diagnosed with autism at 4 and we fought for everything", "family"),
        ("I've been on sertraline since 2015", "medication"),
        ("As someone living with MS, co-production isn't optional", "condition"),
        ("I was sectioned in 2014.", "mental_health"),
        ("My mum's dementia means I'm watching with one ear on the monitor", "family"),
        ("I have type 1 diabetes and wear a pump", "condition"),
        ("They put me on lithium in 2009", "medication"),
        ("Just finished my last round of chemo", "treatment"),
        ("I'm bipolar and proud", "mental_health"),
        ("Honestly sertraline saved my life", "medication"),
        ("CAMHS failed my daughter", "family"),
        ("Having Crohn's disease myself I know how much this matters", "condition"),
        ("I have Ehlers-Danlos syndrome", "condition"),
        ("My nan's vascular dementia is getting worse", "family"),
        ("Diagnosed with lupus at 30. Still learning.", "condition"),
        ("I'm three weeks post-op after a hip replacement", "treatment"),
        ("My GP says I'm diabetic", "condition"),
        ("RT @someone: I was sectioned at 19", "mental_health"),  # a repost spreads it too
        ("My mental health has taken a battering this year", "mental_health"),
    ],
)
def test_personal_disclosures_are_found(text, kind):
    found = disclosure(text)
    assert found is not None
    assert found.kind == kind
    assert text[found.start : found.end] == found.cue


@pytest.mark.parametrize(
    "text",
    [
        # clinicians and services
        "We diagnose around 200 people with diabetes a year in our clinic",
        "Our team treats patients with COPD across Leeds",
        "I'm a diabetes nurse and care planning is our bread and butter",
        "I prescribe sertraline most days",
        "I've diagnosed hundreds of people with diabetes",
        "I work with young people under CAMHS",
        "As a GP I see how dementia affects whole families",
        "My GP surgery is brilliant",
        # the topic
        "Dementia care is underfunded and everyone knows it",
        "Does everyone know where to find their NHS number?",
        "Why is fluoxetine still prescribed so widely?",
        "I have a question about dementia care for the panel",
        "I've been on the MS working group for two years",
        "I'm depressed by how few commissioners are watching",
        "I had a breakdown of the costs sent over",
        "My son came along to the session on peer support today",
        "see https://example.org/my-diabetes-story",
        # other people's words
        "@PriyaPeerLead says patients with diabetes are experts in their own lives",
        '"I was diagnosed at 25 and nobody asked me anything" – powerful words from Huw',
        "Huw Pritchard: my son was diagnosed with autism and nobody asked us",
        "I was sectioned at 19 and now I train psychiatrists - @MelSmith",
        "Listening to @x talk about her daughter's epilepsy, so moving",
    ],
)
def test_near_misses_are_not_disclosures(text):
    assert disclosure(text) is None


def test_weak_cues_count_for_patient_and_carer_accounts_only():
    text = "Mum was diagnosed last spring, so I'm watching from the ward"
    assert disclosure(text) is None
    assert disclosure(text, role="clinician") is None
    found = disclosure(text, role="patient_carer")
    assert found is not None and found.kind == "family"
    assert "weak" in found.reason
    assert (
        disclosure("My mental health matters to me", role="patient_carer").kind == "mental_health"
    )
    assert disclosure("My mental health matters to me") is None


def test_a_disclosure_names_its_cue_and_reason():
    found = disclosure("Great session! My son was diagnosed with autism at 4")
    assert found.cue == "My son was diagnosed"
    assert found.reason == "family ('My son') + condition term 'diagnosed'"


# ---- roles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bio", "role"),
    [
        ("Official account of the Patient Experience Team at an NHS Foundation Trust", "organisation"),
        ("Registered charity supporting carers across Yorkshire", "organisation"),
        ("Healthwatch Leeds", "organisation"),
        ("Consultant psychiatrist at an NHS Trust. Tweets personal", "clinician"),
        ("GP in Leeds. Views my own", "clinician"),
        ("Diabetes specialist nurse", "clinician"),
        ("Carer for my mum, nurse by day", "patient_carer"),  # the more careful reading wins
        ("Patient leader. Living with MS", "patient_carer"),
        ("Parent carer, mum to two amazing boys", "patient_carer"),
        ("Expert by experience", "patient_carer"),
        ("Volunteer, knitter, cyclist", None),
        ("", None),
        (None, None),
    ],
)  # fmt: skip
def test_role_from_profile(bio, role):
    assert role_from_profile(bio) == role


# ---- the labelled sets -----------------------------------------------------------------------------


def test_the_labelled_set_meets_every_target():
    ev = evaluate(FIXTURES / "labelled.jsonl")
    assert ev.posts >= 400
    assert ev.identifiers["nhs_number"].expected >= 30
    assert ev.failures() == []


def test_the_heldout_set_meets_the_identifier_and_precision_targets():
    ev = evaluate(FIXTURES / "heldout.jsonl")
    measures = ev.measures()
    assert measures["valid NHS numbers recall"] == 1.0
    assert measures["identifiers precision"] >= 0.99
    assert measures["disclosures precision"] >= 0.8


@pytest.mark.xfail(
    strict=True,
    reason="held-out disclosure recall is 51/57 (0.895): 'Twelve years with sarcoidosis and I…' "
    "and 'Post-chemo brain is real' are not read; not tuned on held-out (SOURCES.md)",
)
def test_the_heldout_set_meets_the_disclosure_recall_target():
    assert evaluate(FIXTURES / "heldout.jsonl").measures()["disclosures recall"] >= 0.9


def test_the_labelled_files_are_what_the_generator_writes(monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "safeguarding_make_labelled", FIXTURES / "make_labelled.py"
    )
    generator = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, generator)  # its dataclasses look themselves up
    spec.loader.exec_module(generator)
    for bank in generator.BANKS:
        written = (FIXTURES / f"{bank.name}.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in written] == generator.build(bank)


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_evaluation_counts_spans_and_posts(tmp_path):
    path = _write(
        tmp_path / "set.jsonl",
        [
            {
                "id": "r1",
                "text": "call 07700 900123 or 07700 900124",
                "identifiers": [{"kind": "phone", "text": "07700 900123"}],
                "disclosure": False,
            },
            {
                "id": "r2",
                "text": "I was sectioned in 2014",
                "identifiers": [],
                "disclosure": True,
                "kind": "mental_health",
            },
            {
                "id": "r3",
                "text": "dementia care is underfunded",
                "identifiers": [],
                "disclosure": True,
            },
        ],
    )
    ev = evaluate(path)
    phone = ev.identifiers["phone"]
    assert (phone.expected, phone.found, phone.correct) == (1, 2, 1)
    assert (phone.precision, phone.recall) == (0.5, 1.0)
    assert ev.identifiers["email"].precision is None
    assert (ev.disclosures.precision, ev.disclosures.recall) == (1.0, 0.5)
    assert ev.kinds_right == 1
    assert ev.misses == ("r1: wrongly found phone", "r3: missed disclosure")
    lines = ev.format_lines()
    assert lines[0] == "set.jsonl: 3 posts"
    assert any(line.strip().startswith("phone") and "precision 0.500" in line for line in lines)
    assert "  target missed: identifiers precision 0.500 is below the target 0.99" in lines
    assert "  target missed: disclosures recall 0.500 is below the target 0.90" in lines
    assert not any("07700" in line for line in [*lines, *ev.misses])  # never the text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "a", "identifiers": [], "disclosure": false}\n{oops', "line 2 is not JSON"),
        ('{"text": "a", "identifiers": []}', 'line 1: "disclosure" must be true or false'),
        ('["a"]', 'line 1: each line must be an object with a "text" string'),
        (
            '{"text": "a", "identifiers": [{"kind": "fax", "text": "1"}], "disclosure": false}',
            'line 1: "identifiers" must be a list',
        ),
    ],
)
def test_a_bad_labelled_set_is_named_by_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LabelledSetError, match=message):
        evaluate(path)


def test_a_missing_labelled_set_is_one_clear_error(tmp_path):
    with pytest.raises(LabelledSetError, match="cannot read the labelled set"):
        evaluate(tmp_path / "nope.jsonl")


# ---- linear time -----------------------------------------------------------------------------------


def _best_of_seven(scan, text: str) -> float:
    """The least processor time a scan takes (this process's own time: other work on the machine
    does not count)."""
    times = []
    for _ in range(7):
        start = time.process_time()
        scan(text)
        times.append(time.process_time() - start)
    return min(times)


def _growth(scan, unit: str, size: int) -> float:
    """How much longer a scan of 8 times the text takes: about 8 when linear, 64 when quadratic.
    Both sizes stay small enough for the processor's cache, which would otherwise add its own step."""
    small = (unit * (size // len(unit) + 1))[:size]
    big = (unit * (8 * size // len(unit) + 1))[: 8 * size]
    return _best_of_seven(scan, big) / _best_of_seven(scan, small)


@pytest.mark.parametrize(
    "unit", ["LS6 2AB ", "12 a b Road, ", "a.", "x@y.", "a.b@", "07700 ", "9434765919 ", "(0", "1-"]
)
def test_identifier_scans_are_linear_on_adversarial_text(unit):
    assert _growth(find_identifiers, unit, 6_000) < 16


def test_disclosure_scans_are_linear_on_adversarial_text():
    units = [
        "I have a ", "my son ", "as a ", "diabetes ", "'", '"', "- @x ", "Ab Cd: ", "my ",
        "I was ", "Mum ", "me on ", "#a ", "saved my life ", "@x says ", "Lyme ",
    ]  # fmt: skip
    adversarial = "".join(u * 40 for u in units)
    assert _growth(lambda t: disclosure(t, "patient_carer"), adversarial, 4_000) < 16
