"""What a post says in words: technical problems, questions, pledges and quoted speakers.

Pure rules over one post's text, each with its rule in its docstring (docs/report.md, "Editorial
rules"); reports/editorial.py applies them together with the rules that need the posts around one
(copies, spam). English, with a few words of Welsh, French, Spanish, German and Urdu.

Post text is hostile input: every regex here starts at a literal or a bounded look-behind, reads
runs possessively and windows of a bounded number of words, so each rule runs in time linear in the
text (tests/reports/test_editorial.py measures it).
"""

from __future__ import annotations

import re
from functools import lru_cache

from reports.text import clean_text

__all__ = [
    "URL",
    "is_pledge",
    "is_question",
    "is_speaker_quote",
    "is_technical",
    "normal",
    "strip_quoted",
    "words",
]

# ---- reading text --------------------------------------------------------------------------------
URL = re.compile(r"(?:https?://|www\.)\S++", re.IGNORECASE)
MENTION = re.compile(r"(?<![\w@])@\w[\w.\-]*+(?:@[\w\-]++(?:\.[\w\-]++)++)?")
HASHTAG = re.compile(r"(?<![\w#&])#(\w++)")
WORD = re.compile(r"[^\W_]++(?:['’][^\W_]++)*+")
LETTER = re.compile(r"[^\W\d_]")
# Quoted spans of at most 500 characters that hold no other opening mark: "…", “…”, «…», ‘…’, and
# '…' opened and closed outside a word (so "Helen's" opens nothing). A scan stops at the next mark.
QUOTED = re.compile(
    r"\"[^\"\n]{1,500}+\"|“[^“”\n]{1,500}+”|«[^«»\n]{1,500}+»|‘[^‘’\n]{1,500}+’"
    r"|(?<!\w)'(?:[^'\n]|(?<=\w)'(?=\w)){1,500}+'(?!\w)"
)
CLAUSE = re.compile(r"[.!?;:…,\n()\[\]¿¡؟«»\"“”]++|\s[-–—]++\s|\|")
# Contractions written out, so that "can't", "cant" and "cannot" read alike ("can not").
CONTRACTIONS = {"can't": "can not", "cant": "can not", "cannot": "can not", "won't": "will not",
                "wont": "will not", "dont": "do not", "isnt": "is not", "doesnt": "does not",
                "didnt": "did not", "couldnt": "could not", "wasnt": "was not", "arent": "are not",
                "hasnt": "has not", "im": "i am", "ive": "i have", "u": "you", "gonna": "going to",
                "n't": " not", "'ll": " will", "'re": " are", "'m": " am",
                "'ve": " have", "'d": " would", "'s": ""}  # fmt: skip
CONTRACTED = re.compile(
    r"\b(?:can't|cant|cannot|won't|wont|dont|isnt|doesnt|didnt|couldnt|wasnt|arent|hasnt|im|ive|u"
    r"|gonna)\b|(?<=\w)(?:n't|'ll|'re|'m|'ve|'d|'s)\b"
)


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


def strip_quoted(text: str) -> str:
    """The text with every quoted span replaced by a space: what the author says in their own voice."""
    return QUOTED.sub(" ", text)


LEADING_TAGS = re.compile(r"\A(?:\s*+[#@][\w.@\-]++)++")
_TOKEN = re.compile(r"[^\W_]++(?:['’][^\W_]++)*+|@|\|")


@lru_cache(maxsize=4096)  # each rule reads this form; the story asks several rules of each post
def normal(text: str) -> str:
    """Lower-case words with contractions expanded, clauses separated by ' | ', links as 'url',
    accounts as '@', hashtags as their word: the form the word rules below read."""
    text = clean_text(text).casefold().replace("dial-in", "dialin").replace("mic drop", "micdrop")
    text = LEADING_TAGS.sub("", text)
    text = MENTION.sub(" @ ", URL.sub(" url ", text)).replace("#", " ")
    text = CONTRACTED.sub(
        lambda m: CONTRACTIONS[m.group()], CLAUSE.sub(" | ", text.replace("’", "'"))
    )
    return " ".join(_TOKEN.findall(text))


def words(text: str) -> list[str]:
    """Words as written, without links, accounts or hashtags."""
    return WORD.findall(HASHTAG.sub(" ", MENTION.sub(" ", URL.sub(" ", text))))


# ---- technical problems --------------------------------------------------------------------------
def _alternation(words: str) -> str:
    """A regex alternation of the words, longest first; '_' joins the words of a phrase."""
    phrases = sorted((w.replace("_", " ") for w in words.split()), key=len, reverse=True)
    return "|".join(re.escape(p) for p in phrases)


# Things of the broadcast, and what goes wrong with them (English, with some Welsh, French, Urdu).
OBJECTS = _alternation(
    """sound audio volume mic mics microphone microphones headset echo stream streams livestream
    streaming feed video picture camera cam webcam screen slides slide captions subtitles webex zoom
    teams youtube skype link join joining dialin password login connection wifi broadband laptop pc
    browser firewall webinar sain ffrwd llun son vidéo flux diffusion image آواز ویڈیو"""
)
PROBLEMS = _alternation(
    """crashed crash crashes crashing down dropped dropping drops froze frozen freeze freezes
    freezing buffering buffers lag lags lagging laggy crackly crackling crackles muffled distorted
    broken error errors blocks blocked muted mute gone fix glitch glitches glitchy stuttering jumpy
    stalled noise noisy inaudible unwatchable delay delayed sync failed failing fails died dead
    silent problem problems issue issues lost cutting cuts stopped disappeared terrible awful poor
    rubbish dreadful missing kicked trouble blank stopping stuck quiet low dim coupe coupé coupure
    bug bugue plante نہیں بند
    not_working not_work not_load not_loading not_show not_showing not_connect not_connecting
    not_play not_playing not_start not_started not_open not_opening too_low too_quiet too_loud
    very_quiet unable_to can_not_hear can_not_see can_not_get can_not_join can_not_access
    can_not_connect can_not_load can_not_open can_not_log could_not_hear could_not_see
    could_not_get could_not_join in_and_out"""
)
NEAR = r"(?: [^ |]++){0,4}"  # up to four words between, within one clause
TECHNICAL = re.compile(
    rf"\b(?:{OBJECTS})\b{NEAR} (?:{PROBLEMS})\b|\b(?:{PROBLEMS})\b{NEAR} (?:{OBJECTS})\b"
    r"|\bbuffering\b|\bout of sync\b|\bkicked (?:off|out)\b|\bcut(?:ting|s)? (?:out|in and out)\b"
    r"|\bkeeps? cutting\b|\bhear(?:ing)? (?:an |the )?echo\b|\b(?:an|the|horrible|terrible|bad"
    r"|massive|awful|loud) echo\b|\becho (?:on|echo|in here)\b|\bechoey\b|\bhear(?:ing)? typing\b"
    r"|\bblack screen\b|\bnot authori[sz]ed\b|\baudio only\b|\bno (?:sound|audio|picture|video"
    r"|signal|image|connection|captions|slides)\b|\bcan not (?:hear|see)\b(?: [^ |]++){0,3}"
    r" (?:anything|a thing|at all|properly|clearly|a word|the speaker|the speakers|the presenter)\b"
    r"|\bcan not get in\b|\b(?:seconds?|minutes?) behind\b|\bbehind the (?:audio|video|sound"
    r"|stream|slides)\b|\b(?:mic|microphone|camera|cam|webcam|video)\b(?: [^ |]++){0,3} (?:on|off)\b"
    r"|\bnot let (?:me|us) in\b|\bimpossible d'entendre\b|\bon n'entend\b|\bpas de son\b|\bsin sonido\b"
)


def is_technical(text: str) -> bool:
    """A technical problem with the broadcast or getting into it, for the organisers' list only:
    something of the broadcast (sound, audio, mic, echo, stream, video, slides, captions, webex,
    zoom, teams, the join link, password, connection…) within five words of something going wrong
    with it (down, dropped, frozen, crackly, muted, not working, can't hear, too quiet…) in the
    same clause; or a phrase that says it alone ("buffering", "out of sync", "kicked off", "cutting
    out", "an echo", "no sound", "black screen", "can't hear anything"). Not "sound advice",
    "care teams", "echo what she said", "the link between housing and health" or "mic drop"."""
    return bool(TECHNICAL.search(normal(text)))


# ---- questions -----------------------------------------------------------------------------------
CHUNK = re.compile(r"[^.!?？؟\n]*+[.!?？؟\n]*+")
QMARK = re.compile(r"[?？؟]")
Q_LEAD = re.compile(
    r"\s*+(?:@\S++\s++)*+(?:q\s*+[:.\-–]|q\s++(?:for|from|to)\b|quick q\b|question\s++(?:for|from|to)\b"
    r"|audience question\b)",
    re.IGNORECASE,
)
RHETORICAL = re.compile(
    r"\s*+(?:who knew|guess (?:what|who)|remember when|did you know|what a\b|why not\b|who doesn't"
    r"|what's not to|how (?:amazing|great|brilliant|cool|good|lovely|inspiring|powerful|moving"
    r"|wonderful|fantastic|fab)\b|(?:isn't|wasn't|aren't|weren't) (?:it|that|this|they)\b)",
    re.IGNORECASE,
)
ANSWER = re.compile(
    r"\s*+(?:because|cos|'cause|the answer|answer\b|simple\b|easy\b|not any ?more|nope|spoiler)",
    re.IGNORECASE,
)


def _asks(text: str) -> bool:
    """A sentence of the author's own ending in a question mark, neither rhetorical nor answered
    by the post itself; or a post opening "Q:", "Q for…", "Question for/from…"."""
    own = strip_quoted(URL.sub(" ", clean_text(text)))
    if Q_LEAD.match(own):
        return True
    chunks = [m.group() for m in CHUNK.finditer(own) if m.group()]
    for i, chunk in enumerate(chunks):
        if not QMARK.search(chunk):
            continue
        sentence = LEADING_TAGS.sub("", chunk).lstrip(" ¿¡")
        rhetorical = RHETORICAL.match(sentence) or RHETORICAL.match(sentence.rsplit(":", 1)[-1])
        answered = i + 1 < len(chunks) and ANSWER.match(chunks[i + 1])
        if LETTER.search(sentence) and not rhetorical and not answered:
            return True
    return False


def is_question(text: str) -> bool:
    """A request for information or an opinion, in the author's own words: a sentence ending in
    "?" (or "؟") outside quotation marks, or a post opening "Q:", "Q for @speaker…", "Question
    from…". Not a quoted line ('"What matters to you?" asks @x'), a rhetorical question ("Who knew…?",
    "What a day?", one the post answers: "Why? Because…"), a pledge that contains "?" or a technical
    problem ("Can anyone else hear an echo?" is technical)."""
    return _asks(text) and not is_technical(text) and not is_pledge(text)


# ---- pledges -------------------------------------------------------------------------------------
SUBJECT = (
    r"(?:i|we|my team|our (?:team|teams|ward|practice|trust|service|department|ppg|group|board|unit"
    r"|clinic|organisation|organization|charity|network|hospital|surgery))"
)
MODAL = (
    r"(?:will|shall|am going to|are going to|is going to|am committing to|are committing to"
    r"|am committed to|are committed to|commit to|pledge to|promise to|vow to|resolve to"
    r"|intend to|plan to|have committed to|have pledged to|have promised to|have decided to"
    r"|am determined to|are determined to)"
)
# Words that may open a clause before an elided "going to…" ("Ok so going to set up…").
MARKERS = (
    r"(?:(?:ok|okay|so|right|honestly|well|and|anyway|now|then|hmm|yes|definitely|really) ){0,3}"
)
SOFT = r"(?: (?:really|definitely|now|also|personally|all|both|too|absolutely|certainly|hereby"
SOFT += r"|be|try to|try and|then|soon|actually|first|finally)){0,3}"
PLEDGE = re.compile(
    rf"(?:^|(?<=[ |]))(?P<before>[^ |]++ )?{SUBJECT}{SOFT} {MODAL}{SOFT} (?P<verb>[^ |]++)"
    rf"|(?:^|\| ){MARKERS}(?:(?:am |are )?going to|will){SOFT} (?P<elided>[^ |]++)"  # "Going to…"
)
COMMITMENT = re.compile(
    r"\bmy (?:personal )?(?:pledge|commitment|promise|action|actions|next step|next steps"
    r"|resolution)(?: (?:from|after|for) (?:today|this session|this))? (?:\||is\b|for\b)"
    r"|\bpledge from me\b|\bi (?:hereby )?(?:pledge|promise|commit|vow)\b"
    r"|(?:^|\| )(?:i am |we are )?committing (?:here and now|today|to|myself)\b"
    r"|(?:^|\| |\bi am |\bwe are |\bwill be )(?:taking|bringing) [^ |]++(?: [^ |]++){0,2} back to\b"
    r"|\bbyddaf yn (?!gwylio)|\b(?:rydw|dw) i'n mynd i\b|\brwy'n mynd i\b"
    r"|\bje vais (?!regarder|voir|écouter|suivre)|\bnous allons\b|\bje m'engage\b"
    r"|\b(?:voy|vamos) a (?!ver\b|mirar\b|escuchar\b)|\bme comprometo\b"
    r"|\bich werde (?!zuschauen|schauen)|\bwir werden\b|(?:کروں|کریں) (?:گا|گی|گے)"
)
# What follows "I will…" in a plan to watch or a hope, not a commitment to act.
NOT_ACTS = _set(
    """watch watching see seeing catch catching listen listening tune tuning tweet tweeting back
    there here need needing let have miss missing sleep join joining leave be"""
)
# What follows a sentence-opening "Will…" that asks someone else ("Will you…?", "Will the…?").
NOT_SELF = _set(
    """you we they it there the this that these those a an he she anyone anybody someone everyone
    i our your their his her"""
)
REPORTED = _set("says said reckons argues believes claims thinks tells told asks if")


def _acts(said: str, verb: str, before: str | None) -> bool:
    """Whether "I will <verb>" commits to an act: not to watching or being somewhere ("I'll be
    late"), and not in someone else's words ("she says we will…")."""
    after_be = said.rsplit(" ", 2)[-2] == "be"
    return (
        verb not in NOT_ACTS
        and (not after_be or verb.endswith("ing"))
        and (before or "").strip() not in REPORTED
    )


def is_pledge(text: str) -> bool:
    """A first-person commitment to act, outside quotation marks: "I will…", "We're going to…",
    "Our team will…", "My pledge: …", "I commit to…", "Taking this back to…", an elided "Going to
    set up…" (and "byddaf yn", "je vais", "voy a", "ich werde", "کروں گا"). Not a plan to watch,
    see, tune in, tweet or be back ("I'll be watching the recording later", "I'll see…"), a
    demand on others ("We need to fix the sound", "someone should…", "let's…"), a question to
    someone else ("Will you commit…?") or reported speech ("she says we will…")."""
    words = normal(strip_quoted(text))
    if COMMITMENT.search(words):
        return True
    for match in PLEDGE.finditer(words):
        verb = match.group("verb") or match.group("elided")
        if match.group("elided") and verb in NOT_SELF:
            continue
        if _acts(match.group(), verb, match.group("before")):
            return True
    return False


# ---- speaker quotes ------------------------------------------------------------------------------
CAPITALISED = r"[A-Z][\w'’.\-]*+(?: (?:[A-Z][\w'’.\-]*+|of|the|from|de|van|von|da|at|for)){0,5}+"
HANDLE = r"@\w[\w.]*+"
ATTRIBUTION_AFTER = re.compile(
    rf"[\s,.]*+(?:[-–—~―]++\s*+(?:[a-z]++ ){{0,3}}(?P<dashed>{HANDLE}|{CAPITALISED})"
    rf"|\((?P<paren>{HANDLE}|{CAPITALISED})\)"
    rf"|(?:says|said|asks|asked|adds|added|explains|according to|via)\s++(?P<verbal>{HANDLE}"
    rf"|[^\W\d_][\w'’.\-]*+(?: [^\W\d_][\w'’.\-]*+){{0,3}})"
    rf"|(?P<bare>{HANDLE}|[A-Z][\w'’.\-]*+ [A-Z][\w'’.\-]*+))"
)
# What ends the words before a quote that name its speaker: 'Helen Bevan: "…"', 'X says "…"'.
SAYS_BEFORE = re.compile(r"(?:\s(?:says|said|asks|asked|adds)\s*+[:,]?|:|\s[-–—]++)\s*+\Z")
NAME_WORD = re.compile(r"@\w[\w.]*+|[A-Z][\w'’.\-]*+")
# In a post written all in lower case, names are too: any two words after a dash or "says".
ATTRIBUTION_AFTER_LOWER = re.compile(
    r"[\s,.]*+(?:[-–—~―]++\s*+|(?:says|said|asks|asked|adds|added|explains|according to)\s++)"
    rf"(?P<name>{HANDLE}|[^\W\d_][\w'’.\-]*+(?: [^\W\d_][\w'’.\-]*+)?)"
)
NOT_NAMES = _set(
    """i we you it this that all everything nothing me so a an the my our your he she they what
    who loved loving calling just here there yes no"""
)
OPENERS = _set(
    "as and but so like then now here today also quoting per when while"
)  # "As Helen said"
CONNECTORS = (" of", " the", " from", " de", " van", " von", " da", " at", " for")
SPANS = 20  # quoted spans of a post looked at: a post of a thousand quotes is read no further


def _speaker(name: str | None) -> str | None:
    """A name as written, without trailing connecting words; None for a pronoun or a word like 'it'."""
    if not name:
        return None
    name = name.strip(" .,'’")
    while name.endswith(CONNECTORS):
        name = name.rsplit(" ", 1)[0]
    while " " in name and name.split(" ", 1)[0].casefold() in OPENERS:
        name = name.split(" ", 1)[1]
    first = name.split(" ", 1)[0].casefold()
    return None if first in NOT_NAMES or not LETTER.search(name) else name


def is_speaker_quote(text: str) -> tuple[str, str] | None:
    """A quoted line attributed to someone, as (quote, speaker): '"…" says Helen Bevan',
    '"…" - @HelenBevan', '“…” – Helen Bevan opening the session', 'Helen Bevan: "…"', "« … » –
    Rob Webster". The quote has at least two words; the speaker is a handle or a name (capitalised,
    or any words after "says"). Not scare quotes or titles ('the "Lone Wolves" framing'), or a
    quote nobody is named for."""
    text = clean_text(text)
    lower = all(w == w.lower() for w in words(text))
    for number, match in enumerate(QUOTED.finditer(text)):
        quote = match.group()[1:-1].strip(" ,")
        if number >= SPANS:
            break
        if len(WORD.findall(quote)) < 2:
            continue
        after = ATTRIBUTION_AFTER.match(text, match.end())
        name = after and next(filter(None, after.group("dashed", "paren", "verbal", "bare")), None)
        if not name and lower:
            after = ATTRIBUTION_AFTER_LOWER.match(text, match.end())
            name = after and after.group("name")
        if not name:
            name = _named_before(text[max(0, match.start() - 80) : match.start()], lower)
        if speaker := _speaker(name):
            return quote, speaker
    return None


def _named_before(before: str, lower: bool) -> str | None:
    """The speaker named just before a quote: 'Helen Bevan: "…"', 'Helen Bevan says "…"'; in a
    post all in lower case, up to three words before a colon."""
    says = SAYS_BEFORE.search(before)
    if not says:
        return None
    words = before[: says.start()].split()[-6:]
    if lower and says.group().strip().startswith(":"):
        return " ".join(words[-3:]) or None
    named: list[str] = []
    for word in reversed(words):
        if NAME_WORD.fullmatch(word) or (named and word in ("of", "the", "from", "de", "van")):
            named.insert(0, word)
        else:
            break
    return " ".join(named) or None
