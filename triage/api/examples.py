"""The examples the OpenAPI document shows, one per body (api.md's, where it has one).

tests/unit/test_api_examples.py proves each request example passes the real checkers (and the
batch example's bad item fails with exactly the errors its answer shows), and each example
decodes into its Struct and validates against the served document.
"""

from __future__ import annotations

from typing import Any

REFERRAL_ID = "0193a1b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b"
CATALOGUE_VERSION = "sha256:24a605777146d77b98be37d5755d5394a970e431f8d82606014d3accef6b3501"

# api.md's example, the same as example-referral.json at the top of the repository.
NEW_REFERRAL: dict[str, Any] = {
    "external_ref": "46/123456/26",
    "referred_at": "2026-11-20T14:05:00Z",
    "victim": {
        "first_name": "Sam",
        "last_name": "Taylor",
        "date_of_birth": "1991-04-02",
        "age": None,
        "gender": "female",
        "phone": "07700 900123",
        "email": "sam@example.org",
        "address": {"line1": "1 High Street", "town": "Canterbury", "postcode": "CT1 2AB"},
        "language": "en",
        "interpreter_needed": False,
        "vulnerabilities": ["mental_health"],
    },
    "contact": {
        "channels": ["phone", "sms"],
        "safe_times": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "12:00"}
        ],
        "voicemail_ok": False,
        "letter_ok": False,
        "notes": "do not call after 5pm, partner home",
    },
    "offence": {
        "category": "stalking_harassment",
        "ho_code": None,
        "description": "repeated unwanted contact after separation",
        "occurred_on": "2026-11-18",
        "hate_motivations": [],
    },
    "flags": ["domestic_abuse", "repeat_victim"],
    "risk": {"dash_score": 9, "level": "medium", "marac_referred": False},
    "needs": ["emotional", "safety"],
    "consent": {
        "to_referral": True,
        "to_contact": True,
        "to_survey": True,
        "recorded_by": "PC 4821",
        "recorded_at": "2026-11-20T13:50:00Z",
    },
    "referrer": {
        "organisation": "Kent Police",
        "name": "PC Jo Smith",
        "role": "Officer in case",
        "phone": "01632 960001",
        "email": "jo.smith@police.example",
    },
    "notes": "free text for the support worker",
}

TRIAGE: dict[str, Any] = {
    "area": {"code": "east-kent", "local_authority": "Canterbury", "district": "CT1"},
    "priority": "P2",
    "enhanced_rights": ["most_serious_crime", "persistently_targeted", "vulnerable"],
    "contact_due_by": "2026-11-23T17:00:00Z",
    "services": [
        {
            "code": "domestic-abuse",
            "role": "primary",
            "reasons": [
                "domestic abuse (offence category or flag)",
                "flags include domestic_abuse",
            ],
        },
        {
            "code": "stalking",
            "role": "additional",
            "reasons": ["stalking or harassment", "offence.category is stalking_harassment"],
        },
    ],
    "signposts": [],
    "first_contact_step": {"kind": "call", "channel": "phone", "due_at": "2026-11-23T09:00:00Z"},
    "flags": [],
    "catalogue_version": CATALOGUE_VERSION,
}

REFERRAL: dict[str, Any] = {
    "id": REFERRAL_ID,
    "reference": "KVR-26-004211",
    "external_ref": "46/123456/26",
    "status": "triaged",
    "received_at": "2026-11-20T14:06:12Z",
    "updated_at": "2026-11-20T14:06:12Z",
    "triage": TRIAGE,
    "cases": [
        {
            "service": service,
            "status": "awaiting_contact",
            "first_contact_at": None,
            "closed_at": None,
            "closure_reason": None,
        }
        for service in ("domestic-abuse", "stalking")
    ],
}

UPDATED_REFERRAL: dict[str, Any] = {
    **REFERRAL,
    "updated_at": "2026-11-21T09:12:40Z",
    "triage": {
        **TRIAGE,
        "priority": "P1",
        "contact_due_by": "2026-11-21T14:06:12Z",
        "flags": ["marac_required"],
    },
}

WITHDRAWN_REFERRAL: dict[str, Any] = {
    **REFERRAL,
    "status": "withdrawn",
    "updated_at": "2026-11-21T09:30:00Z",
    "cases": [
        {
            **case,
            "status": "closed",
            "closed_at": "2026-11-21T09:30:00Z",
            "closure_reason": "withdrawn",
        }
        for case in REFERRAL["cases"]
    ],
}

REFERRAL_PAGE: dict[str, Any] = {
    "items": [REFERRAL],
    "next_cursor": "WyIyMDI2LTExLTIwVDE0OjA2OjEyKzAwOjAwIiwgIjAxOTNhMWIyIl0",
}

DECISIONS: dict[str, Any] = {
    "items": [
        {
            "decided_at": "2026-11-20T14:06:12Z",
            "cause": "intake",
            "catalogue_version": CATALOGUE_VERSION,
            "triage": TRIAGE,
        }
    ]
}

# A change of phone number and of risk after the referral was sent (merged into it).
REFERRAL_CHANGES: dict[str, Any] = {
    "victim": {"phone": "07700 900456"},
    "risk": {"dash_score": 15, "level": "high", "marac_referred": True},
    "flags": ["domestic_abuse", "repeat_victim", "persistently_targeted"],
}

WITHDRAWAL: dict[str, Any] = {"reason": "the victim asked the police to withdraw the referral"}

# Two items: the first is written, the second (a phone number that cannot be) is not.
BATCH: dict[str, Any] = {
    "referrals": [
        NEW_REFERRAL,
        {
            **NEW_REFERRAL,
            "external_ref": "46/123457/26",
            "victim": {**NEW_REFERRAL["victim"], "phone": "12"},
        },
    ]
}
BATCH_ANSWER: dict[str, Any] = {
    "counts": {"created": 1, "existing": 0, "invalid": 1, "conflict": 0},
    "items": [
        {
            "index": 0,
            "status": "created",
            "id": REFERRAL_ID,
            "reference": "KVR-26-004211",
            "errors": [],
        },
        {
            "index": 1,
            "status": "invalid",
            "id": None,
            "reference": None,
            "errors": [
                {
                    "path": "referrals[1].victim.phone",
                    "message": "must be a possible phone number (UK numbers may start 0, "
                    "others need +)",
                },
                {
                    "path": "referrals[1].contact.channels",
                    "message": "no usable contact route: list a channel with what it needs "
                    "(phone or sms with a phone number, email with an email address, letter "
                    "with a postal address and letter_ok true)",
                },
            ],
        },
    ],
}

CSV_BATCH = (
    "external_ref,victim.first_name,victim.last_name,victim.date_of_birth,victim.phone,"
    "contact.channels,contact.safe_times,offence.category,offence.occurred_on,flags,"
    "risk.dash_score,risk.level,consent.to_referral,consent.to_contact\r\n"
    "46/123458/26,Sam,Taylor,1991-04-02,07700 900123,phone;sms,mon-fri 09:00-12:00,"
    "stalking_harassment,2026-11-18,domestic_abuse;repeat_victim,9,medium,true,true\r\n"
)

# api.md's example, with a made-up person.
AA_REQUEST: dict[str, Any] = {
    "external_ref": "KC/ME/26/001234",
    "custody_suite": "Medway",
    "person": {
        "first_name": "Alex",
        "last_name": "Morgan",
        "date_of_birth": "2009-02-01",
        "vulnerabilities": ["learning_disability"],
        "vulnerable": True,
    },
    "juvenile": True,
    "needed_at": "2026-11-22T02:30:00Z",
    "reason": "voluntary interview",
    "requester": {"name": "Sgt A Patel", "phone": "01632 960002"},
}
AA_ANSWER: dict[str, Any] = {
    "id": "0193a1b2-9d8e-7f60-8a9b-0c1d2e3f4a5c",
    "reference": "KAA-26-000123",
    "external_ref": "KC/ME/26/001234",
    "status": "allocated",
    "attend_by": "2026-11-22T02:30:00Z",
    "signpost_to": None,
    "reasons": [
        "treated as a juvenile: the officer says the person appears to be under 18 (PACE Code C)",
        "outside office hours (Sun 22 Nov 2026 02:30 Europe/London)",
        "juvenile outside office hours",
    ],
    "flags": [],
}

# What GOV.UK Notify sends: only reference and status are read.
DELIVERY_RECEIPT: dict[str, Any] = {
    "id": "740e5834-3a29-46b4-9a6f-16142fde533a",
    "reference": "0193a1b2-1a2b-7c3d-8e4f-5a6b7c8d9e0f",
    "to": "+447700900123",
    "status": "delivered",
    "created_at": "2026-11-23T09:00:01.000000Z",
    "completed_at": "2026-11-23T09:00:07.000000Z",
    "sent_at": "2026-11-23T09:00:02.000000Z",
    "notification_type": "sms",
}
RECEIPT_ANSWER: dict[str, Any] = {"result": "delivered"}

# api.md's example of an error.
INVALID_REFERRAL: dict[str, Any] = {
    "type": "https://triage.example/problems/validation",
    "title": "Invalid referral",
    "status": 422,
    "detail": "2 problems",
    "errors": [
        {"path": "victim.date_of_birth", "message": "must not be in the future"},
        {
            "path": "consent.to_referral",
            "message": "explicit consent is required for sexual offences",
        },
    ],
}

_SHOWN = {"value": 35.0, "text": "35"}
REPORT = {
    "service": "isva",
    "from": "2026-07",
    "to": "2026-09",
    "periods": {
        "current": {"from": "2026-07", "to": "2026-09"},
        "previous": {"from": "2026-04", "to": "2026-06"},
        "year_earlier": {"from": "2025-07", "to": "2025-09"},
    },
    "disclosure_control": True,
    "sections": [
        {
            "name": "received",
            "title": "Referrals received",
            "figures": [
                {
                    "name": "received",
                    "label": "Referrals received",
                    "current": _SHOWN,
                    "previous": {"value": 40.0, "text": "40"},
                    "year_earlier": {"value": None, "text": "<5"},
                }
            ],
        },
        {
            "name": "deadline",
            "title": "First contact within the contract deadline",
            "figures": [
                {
                    "name": "in_time_percent",
                    "label": "First contacted by the deadline",
                    "current": {"value": 91.0, "text": "91%"},
                    "previous": {"value": 88.0, "text": "88%"},
                    "year_earlier": {"value": None, "text": "suppressed"},
                }
            ],
        },
    ],
}
