"""The closed vocabularies of the machine API (api.md).

These are the contract with police and partner systems, not triage policy: which of these
values lead to which service is catalogue data (triage/catalogue/*.yaml).
"""

from __future__ import annotations

GENDERS = ("female", "male", "non_binary", "other", "not_known")
VULNERABILITIES = (
    "learning_disability",
    "autism",
    "mental_health",
    "physical_disability",
    "sensory_impairment",
    "older_person",
    "substance_use",
    "other",
)
OFFENCE_CATEGORIES = (
    "sexual",
    "domestic_abuse",
    "stalking_harassment",
    "violence",
    "robbery",
    "burglary",
    "theft",
    "criminal_damage",
    "fraud",
    "homicide",
    "exploitation",
    "antisocial_behaviour",
    "other",
)
HATE_MOTIVATIONS = ("race", "religion", "disability", "sexual_orientation", "transgender", "other")
REFERRAL_FLAGS = (
    "domestic_abuse",
    "repeat_victim",
    "persistently_targeted",
    "intimidated",
    "vulnerable",
    "serious_crime",
    "bereaved_by_homicide",
    "bereaved_by_da_death",
    "adolescent_to_parent_violence",
    "children_in_household",
    "low_income",
    "attending_court",
    "gangs_exploitation",
    "major_investigation",
    "immediate_danger",
)
NEEDS = (
    "emotional",
    "practical",
    "safety",
    "counselling",
    "therapy",
    "court_support",
    "legal_advice",
    "restorative_justice",
    "financial_hardship",
    "mentoring",
    "online_support",
)
RISK_LEVELS = ("standard", "medium", "high")
CHANNELS = ("phone", "sms", "email", "letter")
MESSAGE_CHANNELS = ("sms", "email", "letter")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SOURCES = ("police", "professional", "self")
KINDS = ("victim", "appropriate_adult")
PRIORITIES = ("P1", "P2", "P3")
ENHANCED_RIGHTS_GROUPS = (
    "most_serious_crime",
    "persistently_targeted",
    "vulnerable",
    "intimidated",
)

# Flags on a referral that a person must act on (lifecycle.md). The engine raises the
# decision's; case work adds service_review.
DECISION_FLAGS = (
    "marac_required",
    "rj_risk_assessment_required",
    "area_check",
    "no_contact_consent",
    "interpreter_needed",
    "safe_window_after_deadline",
    "service_review",
)

CALL_OUTCOMES = (
    "reached",
    "no_answer",
    "voicemail_left",
    "wrong_number",
    "declined",
    "unsafe_to_talk",
)

# ISO 639-1 language codes (victim.language).
LANGUAGES = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv
    cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht
    hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la
    lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj
    om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv
    sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
    """.split()
)
