"""What the synthetic posts are made of (bench/generate.py): names, places, words and sentences."""

INSTANCES = ("mastodon.example", "social.example.org", "nhs.example.net", "mstdn.example",
             "toot.example.org", "health.example.social")  # fmt: skip
FIRST = ("Alex", "Sam", "Priya", "Jo", "Chris", "Fatima", "Tom", "Aisha", "Gareth", "Siobhan",
         "Mo", "Helen", "Kwame", "Lucy", "Dev", "Rachel", "Owen", "Mei", "Ruth", "Imran", "Beth",
         "Dafydd", "Zara", "Nia", "Patrick", "Grace", "Yusuf", "Ella", "Ravi", "Hannah")  # fmt: skip
LAST = ("Smith", "Jones", "Patel", "Williams", "Brown", "Khan", "Taylor", "Evans", "O'Neill",
        "Davies", "Ahmed", "Wilson", "Roberts", "Hughes", "Okafor", "Clarke", "Lewis", "Begum",
        "Walker", "Murphy", "Edwards", "Singh", "Wright", "Green")  # fmt: skip
ROLES = ("carer", "GP", "nurse", "patient leader", "volunteer", "commissioner", "researcher",
         "peer support worker", "social worker", "charity CEO", "pharmacist", "parent")  # fmt: skip

TOPICS = ("housing", "loneliness", "carers", "social prescribing", "link workers", "peer support",
          "digital exclusion", "waiting lists", "mental health", "young carers", "volunteers",
          "health inequalities", "patient leaders", "community assets", "co-design", "funding",
          "self care", "shared decisions", "personal budgets", "discharge planning", "dementia",
          "learning disabilities", "primary care", "hospital at home", "care homes", "trust",
          "power sharing", "lived experience", "commissioning", "outcomes", "accessibility",
          "language barriers", "transport", "continuity of care", "prevention", "workforce",
          "burnout", "frailty", "long-term conditions", "integrated care", "public health",
          "data sharing", "patient records", "social care", "advocacy", "safeguarding")  # fmt: skip
ADJECTIVES = ("brilliant", "honest", "powerful", "moving", "practical", "radical", "overdue",
              "inspiring", "sobering", "refreshing", "uncomfortable", "vital", "simple", "bold",
              "humbling", "clear", "messy", "hopeful", "frustrating", "important")  # fmt: skip
SENTENCES = (
    "{adj} session on {topic}.", "Really {adj} points about {topic} and {topic2}.",
    "Not sure I agree on {topic} though.", "How do we scale this for {topic}?",
    "We need to talk more about {topic}.", "This is what coproduction looks like.",
    "{topic} came up again and again.", "The room went quiet when they talked about {topic}.",
    "I'm going to share this with my team on Monday.", "Who funds {topic} in the long run?",
    "Nothing about us without us.", "So much energy in the chat today!",
    "Lived experience is expertise, full stop.", "Can anyone share the slides on {topic}?",
    "{topic} and {topic2} are the same conversation really.",
    "As a {role} I see this every single day.", "We will take {topic} back to our board.",
    "I pledge to involve patients in our {topic} work from now on.",
    "Great to hear from people who actually use the services.",
    "What does good look like for {topic}?", "Frankly disappointed nobody mentioned {topic}.",
    "Listening from home with a cup of tea ☕", "Hard truths about {topic} 👏",
    "“Ask what matters, not what's the matter” — so true.", "Brilliant and honest.",
    "More of this please 🙌", "Is there a recording for those who missed it?",
    "The link is broken, can someone repost it?", "Sound keeps dropping out for me.",
    "Let's keep talking after today.", "{topic} is everyone's business.",
    "Our {topic} group started exactly like this three years ago.",
    "Thanks for making space for {role}s to speak.", "Why is {topic} always the first to be cut?",
    "If you only watch one session today, make it this one.", "Coproduction is not a tick box.",
    "Drop me a line at hello@carers.example.org for the slides.",
    "Our carers' line is 01632 960123 if anyone needs it.",
)  # fmt: skip
OTHER_LANGUAGES = {
    "fr": ("Une session passionnante sur la coproduction.", "Merci pour ce partage !",
           "Les patients doivent être au cœur des décisions."),
    "es": ("Muy interesante la sesión de hoy.", "La experiencia vivida también es conocimiento."),
    "cy": ("Diolch yn fawr am y sesiwn heddiw.", "Mae hyn yn bwysig iawn i ofalwyr."),
    "de": ("Sehr spannende Diskussion heute.", "Patienten als Partner, nicht als Empfänger."),
}  # fmt: skip
EXTRA_TAGS = ("NHS", "coproduction", "carers", "PatientVoice", "SocialCare", "mentalhealth",
              "peersupport", "HealthInequalities", "volunteering", "PPI")  # fmt: skip
ALTS = ("A slide with the six principles", "Photo of the panel on screen", "A chart of waiting times",
        "Screenshot of the chat", "")  # fmt: skip
CUE_SENTENCES = ("Listening to {c}:", "{c} -", "Great from {c}.", "Loving {c}!",
                 "Still thinking about {c}.", "{c} 👏", "So true, {c}.", "Thank you {c}!",
                 "Earlier, {c} was the highlight for me.")  # fmt: skip
FORMULA_STARTS = ("+1 to this. ", "=) ", "-- ", "+++ ")
