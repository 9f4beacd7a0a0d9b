"""The lexicon behind personal health disclosures (docs/privacy.md, "Safeguarding"): data only.

Terms are written in lower case and matched word by word (hyphens, slashes and apostrophes split words:
"self-harm" is "self harm", "Parkinson's" is "parkinson s"). `aggregator.safeguarding` ties them to
the poster with the anchor and bridge words below.
"""

from __future__ import annotations


def words(text: str) -> frozenset[str]:
    """A set of words written as one string, for lists that read better as prose."""
    return frozenset(text.split())


CONDITION, TREATMENT, MEDICATION, MENTAL_HEALTH, FAMILY = (
    "condition", "treatment", "medication", "mental_health", "family",
)  # fmt: skip

# ---- terms, by kind ----------------------------------------------------------------------------
CONDITIONS = """
diabetes, diabetic, type 1 diabetes, type 2 diabetes, t1d, t2d, cancer, tumour, tumor, leukaemia,
leukemia, multiple sclerosis, parkinson s, alzheimer s, crohn s, huntington s, tourette s, asperger s,
hodgkin s, motor neurone disease, motor neuron disease, mnd, epilepsy, epileptic, seizures, asthma,
asthmatic, copd, emphysema, arthritis, lupus, fibromyalgia, chronic fatigue, cfs, long term condition,
heart failure, heart attack, stroke, angina, kidney disease, kidney failure, ckd, liver disease,
cirrhosis, hiv, cystic fibrosis, sickle cell, cerebral palsy, spina bifida, muscular dystrophy,
down s syndrome, dementia, autism, autistic, asd, on the spectrum, adhd, learning disability,
learning disabilities, dyspraxia, dyspraxic, dyslexia, dyslexic, deaf, blind, partially sighted,
hard of hearing, disabled, neurodivergent, chronic pain, chronic illness, chronically ill,
terminally ill, terminal illness, endometriosis, psoriasis, eczema, coeliac, celiac, ibs, ibd,
glaucoma, brain injury, spinal injury, heart defect, heart condition, diagnosis, diagnosed,
misdiagnosed, immunocompromised, housebound, in remission, remission, relapse, flare up, a flare,
amputee, wheelchair user, paralysed
"""
MENTAL = """
depression, postnatal depression, anxiety, anxiety disorder, panic attacks, panic disorder, bipolar,
schizophrenia, schizophrenic, psychosis, psychotic, ptsd, c ptsd, cptsd, ocd, eating disorder,
anorexia, anorexic, bulimia, bulimic, binge eating, self harm, self harming, suicidal,
suicide attempt, personality disorder, borderline personality disorder,
emotionally unstable personality disorder, generalised anxiety disorder, obsessive compulsive disorder,
post traumatic stress disorder, seasonal affective disorder, bpd, eupd, breakdown, nervous breakdown, agoraphobia, phobia,
addiction, addicted, addict, alcoholic, alcoholism, heroin, in recovery from, sectioned, detained,
detained under the mental health act, psychiatric ward, psych ward, mental health ward,
mental health unit, inpatient unit, secure unit, crisis team, home treatment team, camhs, iapt,
cmht, community mental health team, early intervention, early intervention team,
eating disorder service, cpn, psychiatrist, therapist, counsellor, psychologist, care coordinator,
mental illness, mental health problems, mental health condition, mental breakdown
"""
TREATMENTS = """
chemo, chemotherapy, radiotherapy, radiation therapy, immunotherapy, dialysis, transplant,
kidney transplant, liver transplant, stem cell transplant, bone marrow transplant, surgery,
operation, post op, mastectomy, lumpectomy, hysterectomy, colostomy, ileostomy, stoma, amputation,
hip replacement, knee replacement, bypass, pacemaker, insulin pump, cbt, ect, ivf, physio,
physiotherapy, hydrotherapy, counselling, therapy, talking therapy, rehab, rehabilitation,
palliative care, hospice, intensive care, icu, hdu, a e, in hospital, hospitalised, hospitalized,
admitted, infusions, infusion, treatment, oncologist, neurologist, rheumatologist, cardiologist,
haematologist, memory clinic
"""
MEDICATIONS = """
medication, medications, meds, tablets, pills, prescription, antidepressants, anti depressants,
antipsychotics, anti psychotics, antibiotics, painkillers, steroids, inhaler, inhalers, injections,
insulin, hrt, sertraline, fluoxetine, citalopram, escitalopram, paroxetine, mirtazapine,
venlafaxine, duloxetine, amitriptyline, nortriptyline, lithium, quetiapine, olanzapine,
risperidone, aripiprazole, clozapine, haloperidol, diazepam, lorazepam, zopiclone, propranolol,
pregabalin, gabapentin, tramadol, morphine, codeine, co codamol, co dydramol, oxycodone, fentanyl,
methadone, buprenorphine, subutex, naltrexone, metformin, gliclazide, levothyroxine, methotrexate,
hydroxychloroquine, sulfasalazine, adalimumab, humira, infliximab, prednisolone, warfarin,
apixaban, rivaroxaban, statins, atorvastatin, simvastatin, ramipril, amlodipine, bisoprolol,
omeprazole, lansoprazole, salbutamol, ventolin, lamotrigine, levetiracetam, sodium valproate,
carbamazepine, tamoxifen, letrozole, methylphenidate, ritalin, concerta, melatonin, prozac, epipen
"""

# Written in capitals to mean the condition; in lower case they are ordinary words (ms, me, cf…).
CASED = {"MS": CONDITION, "ME": CONDITION, "CF": CONDITION, "AIDS": CONDITION}

# Word endings (WHO INN stems for medicines, medical word-formation for the rest), for words the lists
# do not name. A word must be at least MIN_STEM_WORD letters long to be read by its ending.
MIN_STEM_WORD = 7
ENDINGS = {
    MEDICATION: (
        "oxetine", "apine", "azepam", "azolam", "olol", "pril", "sartan", "statin", "mab", "prazole",
        "azole", "idone", "codone", "cetam", "quine", "triptyline", "pramine", "profen", "cillin",
        "mycin", "cycline", "oxacin", "xaban", "gliptin", "gliflozin", "parin", "semide", "thiazide",
        "lukast", "terol", "tidine", "setron", "triptan", "trigine", "tinib", "platin", "rubicin",
        "taxel", "olone", "asone", "isone", "navir", "ciclovir", "dipine", "coxib", "dronate",
    ),
    TREATMENT: ("ectomy", "otomy", "ostomy", "plasty", "therapy", "scopy"),
    CONDITION: ("itis", "aemia", "emia", "osis", "oma", "pathy", "plegia", "trophy"),
}  # fmt: skip
NOT_BY_ENDING = words(
    "diploma diplomas aroma aromas soma roma oklahoma empathy sympathy apathy antipathy telepathy "
    "osmosis symbiosis hypnosis trophy trophies hydrotherapy"
)  # 'hydrotherapy' is listed; the rest are ordinary words
# A condition named by what it is: "Ehlers-Danlos syndrome", "a rare genetic condition".
HEADS = words("disease syndrome disorder cancer tumour tumor palsy dystrophy defect condition")
HEAD_MODIFIERS = words(
    "rare genetic chronic autoimmune neurological inflammatory congenital degenerative progressive "
    "heart lung kidney liver bowel breast prostate skin blood brain bone thyroid ovarian cervical "
    "pancreatic stomach throat mouth eye spinal motor neurone neuron mental eating personality "
    "secondary primary terminal aggressive advanced stage 1 2 3 4 early onset young life limiting "
    "long term"
)

# Meaningful only as the poster's own ("my GP", "my therapist"); a clinician says "I'm a therapist".
MY_ONLY = words(
    "psychiatrist therapist counsellor psychologist cpn care oncologist neurologist rheumatologist "
    "cardiologist haematologist"
)  # first words of terms
NOT_AFTER_MY = frozenset({"surgery"})  # a GP's "my surgery" is their practice
# "a breakdown of the costs", "a stroke of luck", "the operation of the board".
NOT_BEFORE = {
    "breakdown": frozenset({"of", "in"}), "stroke": frozenset({"of"}), "operation": frozenset({"of"}),
    "admitted": frozenset({"as", "that"}),
}  # fmt: skip
# Count only as a passive ("I was diagnosed", "got sectioned"): "we diagnose", "I admitted it" are not.
PASSIVE_ONLY = words("diagnosed misdiagnosed sectioned detained admitted hospitalised hospitalized")
PASSIVE_AUX = words(
    "was were been got get gets getting being am m is s are re just recently newly finally first "
    "eventually officially only wrongly also later then"
)
# Weak cues: a disclosure only from an account whose profile says patient or carer.
WEAK = {
    ("mental", "health"): MENTAL_HEALTH, ("health",): CONDITION, ("recovery",): MENTAL_HEALTH,
    ("gp",): TREATMENT, ("consultant",): TREATMENT,
    ("condition",): CONDITION, ("illness",): CONDITION, ("symptoms",): CONDITION,
    ("appointment",): TREATMENT, ("appointments",): TREATMENT, ("depressed",): MENTAL_HEALTH,
    ("unwell",): CONDITION, ("poorly",): CONDITION,
}  # fmt: skip

# A weak cue said to be going badly is a disclosure from anyone: "my mental health has taken a battering".
DECLINE = words(
    "bad worse worst awful terrible poor poorly struggling struggled suffered suffering battering "
    "battered hit crisis rough low lowest deteriorated deteriorating declined declining collapsed "
    "broke broken spiral spiralled spiralling tanked plummeted shattered fragile"
)
# Medical adjectives are read by their endings: "vascular dementia", "metastatic breast cancer".
ADJECTIVE_ENDINGS = ("al", "ic", "ive", "ous", "ar", "ary")

# ---- who the health is about -------------------------------------------------------------------
SELF = words("i im ive")
KIN = words(
    "son sons daughter daughters child children kid kids boy boys girl girls baby babies toddler "
    "teenager twins eldest youngest oldest mum mom mother mam dad father husband wife partner "
    "fiance fiancee brother brothers sister sisters nan nana gran granny grandma grandmother "
    "grandad granddad grandpa grandfather grandson granddaughter grandchild aunt auntie uncle "
    "nephew niece cousin stepson stepdaughter stepmum stepdad family"
)
KIN_MODIFIERS = words(
    "little baby eldest youngest oldest older younger teenage twin two three both late step "
    "beautiful lovely wonderful"
)
POSSESSIVES = frozenset({"my", "our"})
AS_NEXT = words(
    "someone somebody a an one person woman man mum mother dad father parent patient survivor former "
    "ex recovering young lifelong"
)
# Words that may stand between the poster and the health term: "I've been on …", "my son, now 14, has …".
BRIDGE = (
    words(
        "was am m is s are re were have ve has had d been being be got get gets getting just recently "
        "finally newly also still first now currently then only eventually officially both diagnosed "
        "with living live lives lived suffer suffers suffering suffered from on onto taking take takes "
        "took taken started start starting began begun prescribed put came come coming off battled "
        "battling battle beat beaten survived surviving survivor recovering recovered struggle "
        "struggles struggled struggling a an type 1 2 one two stage severe chronic early onset late in "
        "treated for having undergoing underwent going through went back at age aged when who which "
        "that he she they myself own mild moderate acute terminal secondary primary advanced aggressive "
        "suspected needed needs need receiving received under referred to into of sadly recent "
        "lifelong since birth ago year years month months weeks week old now day days also too "
        "unfortunately again another new first second third last round rounds course form rare yet lot "
        "lots the waiting list three four five six seven eight nine ten spent spend spending clean "
        "sober free"
    )
    | AS_NEXT
)
# Between "my" and the term: "my type 2 diabetes", "my own experience of depression".
MY_BRIDGE = words(
    "own type 1 2 recent latest new current ongoing first second third last early severe chronic "
    "late experience experiences journey of with battle fight history life little daily round "
    "rounds course dose doses cycle cycles bout spell stint stay"
)
# A term followed by one of these is a service or a topic: "a diabetes nurse", "dementia care".
SERVICE_NOUNS = words(
    "care services service nurse nurses team teams unit units champion champions friends friendly "
    "strategy strategies pathway pathways awareness research researcher researchers charity "
    "charities network networks group groups panel panels forum week month day event events "
    "session sessions lead leads specialist specialists practitioner practitioners coach coaches "
    "worker workers training prevention screening funding policy rates outcomes patients nurses "
    "doctors consultants society trust commissioning provision prescribing prescriptions working "
    "sector workforce services' clinics programme programmes project projects stall stand "
    "conference centre center centres hospital clinic clinics institute foundation alliance uk "
    "trainee trainees student students degree qualification placement educators "
    "educator"
)
# After "my" these make the term someone else's: "my diabetes patients", "my dementia research".
MY_SERVICE_NOUNS = words(
    "research work project projects service services patients colleagues caseload"
)
# "Sertraline saved my life", "chemo left me exhausted", "CAMHS failed my daughter".
OBJECT_VERBS = words(
    "saved helped failed gave left made changed let kept put took got turned taught wrecked ruined "
    "floored knocked cured rescued stopped sectioned diagnosed transformed"
)
# A clause may drop its subject: "Diagnosed with MS at 30.", "Started metformin in June".
IMPLICIT = words("diagnosed was been had got started stopped came taking sectioned detained")
IMPLICIT_WEAK = words("living lived battling surviving managing")
REPORTING = words(
    "says said tells told shares shared explains explained describes described recalls recalled "
    "reminds reminded reveals revealed talks talking speaks speaking talked spoke asks asked "
    "argues argued adds added quoting quotes"
)
THIRD_PARTY = words("he she they speaker panellist panelist presenter chair host")
