"""The request bodies of the machine API (api.md) as msgspec Structs: the OpenAPI document's
schemas are generated from these (openapi_docs), never written by hand.

The handlers do not decode into these: they validate with the domain's checkers, which report
every problem at once with dotted paths (msgspec stops at the first). So every constraint here
must also be enforced by those checkers (triage/domain/validation.py, appropriate_adult.py,
updates.merge_patch): a client may be refused for a rule a schema cannot hold (a date in the
future, no usable contact route), never accepted for a body the schema calls wrong.

Lengths are the checkers' (after surrounding whitespace is trimmed); enumerations are the
domain's vocabularies. Optional fields accept null as absent, as the checkers do; objects refuse
unknown fields (`additionalProperties: false`), as the checkers do.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from triage.api.bodies import BATCH_MAX_ITEMS
from triage.api.wire_constraints import one_of, text
from triage.domain import vocabulary as v

# A date and time that carries its offset: msgspec writes `format: date-time` only for aware
# datetimes, and the checkers refuse naive times.
Instant = Annotated[datetime, Meta(tz=True, description="RFC 3339 with an offset (Z or +01:00)")]
Clock = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM")]
Gender = Annotated[str, one_of("Gender", v.GENDERS)]
Vulnerability = Annotated[str, one_of("Vulnerability", v.VULNERABILITIES)]
OffenceCategory = Annotated[str, one_of("Category", v.OFFENCE_CATEGORIES)]
HateMotivation = Annotated[str, one_of("HateMotivation", v.HATE_MOTIVATIONS)]
ReferralFlag = Annotated[str, one_of("Flag", v.REFERRAL_FLAGS)]
Need = Annotated[str, one_of("Need", v.NEEDS)]
RiskLevel = Annotated[str, one_of("Level", v.RISK_LEVELS)]
Channel = Annotated[str, one_of("Channel", v.CHANNELS)]
Day = Annotated[str, one_of("Day", v.DAYS)]
Language = Annotated[
    str, one_of("Language", sorted(v.LANGUAGES), "ISO 639-1 language code"), Meta(max_length=2)
]
Name = Annotated[str, text(100)]
Phone = Annotated[
    str, text(30, "Normalised to E.164 (UK default); must be a possible number for its country")
]
Email = Annotated[str, text(254)]
ExternalRef = Annotated[str, text(100, "The sender's own reference", required=True)]


class Address(Struct, forbid_unknown_fields=True, kw_only=True):
    line1: Annotated[str, text(200)] | None = None
    line2: Annotated[str, text(200)] | None = None
    town: Annotated[str, text(100)] | None = None
    county: Annotated[str, text(100)] | None = None
    postcode: (
        Annotated[str, text(10, "A UK postcode; normalised to upper case, such as CT1 2AB")] | None
    ) = None


class Victim(Struct, forbid_unknown_fields=True, kw_only=True):
    """At least one of first_name and last_name is required; date_of_birth or age or neither."""

    first_name: Name | None = None
    last_name: Name | None = None
    date_of_birth: Annotated[date, Meta(description="Not in the future")] | None = None
    age: Annotated[int, Meta(ge=0, le=120)] | None = None
    gender: Gender | None = None
    phone: Phone | None = None
    email: Email | None = None
    address: Address | None = None
    language: Language | None = None
    interpreter_needed: bool | None = None
    vulnerabilities: list[Vulnerability] | None = None


class SafeTimeWindow(Struct, forbid_unknown_fields=True, kw_only=True):
    """`from` inclusive, `to` exclusive; a window whose `to` is earlier than its `from` runs
    past midnight."""

    days: list[Day]
    from_: Clock = msgspec.field(name="from")
    to: Clock


class Contact(Struct, forbid_unknown_fields=True, kw_only=True):
    """A usable contact route is required unless consent.to_contact is false."""

    channels: Annotated[list[Channel], Meta(description="In order of preference")] | None = None
    safe_times: list[SafeTimeWindow] | None = None
    voicemail_ok: bool | None = None
    letter_ok: bool | None = None
    notes: Annotated[str, text(2000)] | None = None


class Offence(Struct, forbid_unknown_fields=True, kw_only=True):
    category: OffenceCategory
    ho_code: Annotated[str, text(20, "Home Office offence code")] | None = None
    description: Annotated[str, text(4000)] | None = None
    occurred_on: Annotated[date, Meta(description="Not in the future")] | None = None
    hate_motivations: list[HateMotivation] | None = None


class Risk(Struct, forbid_unknown_fields=True, kw_only=True):
    dash_score: (
        Annotated[int, Meta(ge=0, le=27, description="DASH score; 14 or more meets MARAC")] | None
    ) = None
    level: RiskLevel | None = None
    marac_referred: bool | None = None


class Consent(Struct, forbid_unknown_fields=True, kw_only=True):
    to_referral: bool | None = None
    to_contact: bool | None = None
    to_survey: bool | None = None
    recorded_by: Name | None = None
    recorded_at: Instant | None = None


class Referrer(Struct, forbid_unknown_fields=True, kw_only=True):
    organisation: Annotated[str, text(200)] | None = None
    name: Annotated[str, text(200)] | None = None
    role: Annotated[str, text(200)] | None = None
    phone: Phone | None = None
    email: Email | None = None


Notes = Annotated[str, text(8000)]


class NewReferral(Struct, forbid_unknown_fields=True, kw_only=True):
    """A victim referral (POST /api/v1/referrals; one item of a batch)."""

    external_ref: ExternalRef
    referred_at: Instant | None = None
    victim: Victim
    contact: Contact | None = None
    offence: Offence
    flags: list[ReferralFlag] | None = None
    risk: Risk | None = None
    needs: list[Need] | None = None
    consent: Consent | None = None
    referrer: Referrer | None = None
    notes: Notes | None = None


class VictimChanges(Struct, forbid_unknown_fields=True, kw_only=True):
    """The victim's fields a PATCH may change (updates.PATCHABLE_VICTIM): identity stays."""

    phone: Phone | UnsetType | None = UNSET
    email: Email | UnsetType | None = UNSET
    address: Address | UnsetType | None = UNSET
    language: Language | UnsetType | None = UNSET
    interpreter_needed: bool | UnsetType | None = UNSET
    vulnerabilities: list[Vulnerability] | UnsetType | None = UNSET


class OffenceChanges(Struct, forbid_unknown_fields=True, kw_only=True):
    category: OffenceCategory | UnsetType | None = UNSET
    ho_code: Annotated[str, text(20)] | UnsetType | None = UNSET
    description: Annotated[str, text(4000)] | UnsetType | None = UNSET
    occurred_on: date | UnsetType | None = UNSET
    hate_motivations: list[HateMotivation] | UnsetType | None = UNSET


class ReferralChanges(Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial referral (PATCH): only the fields given change (updates.PATCHABLE); victim,
    contact, offence, risk and consent are merged field by field into what is stored. A null
    is the same as leaving the field out: it never clears what is stored, so it can never undo
    a refusal of contact, safe times or a channel (updates._without_nulls). external_ref and
    the victim's identity cannot change."""

    victim: VictimChanges | UnsetType | None = UNSET
    contact: Contact | UnsetType | None = UNSET
    offence: OffenceChanges | UnsetType | None = UNSET
    flags: list[ReferralFlag] | UnsetType | None = UNSET
    risk: Risk | UnsetType | None = UNSET
    needs: list[Need] | UnsetType | None = UNSET
    consent: Consent | UnsetType | None = UNSET
    notes: Notes | UnsetType | None = UNSET


class Withdrawal(Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Annotated[str, text(500, required=True)]


class ReferralBatch(Struct, forbid_unknown_fields=True, kw_only=True):
    # Items are not `list[NewReferral]`: a bad item is answered per item (status `invalid`,
    # with its errors) inside the 200, so the schema must accept any item.
    referrals: Annotated[
        list[Any],
        Meta(
            max_length=BATCH_MAX_ITEMS,
            description=f"Up to {BATCH_MAX_ITEMS:,} referrals, each a NewReferral; an item that "
            "breaks the rules is answered `invalid` with its errors, the others are written "
            f"(more than {BATCH_MAX_ITEMS:,}: 413).",
            # msgspec writes no `items` for list[Any]: generated clients drop such a model.
            extra_json_schema={"items": {}},
        ),
    ]


class Person(Struct, forbid_unknown_fields=True, kw_only=True):
    """The detainee: first_name or last_name is required."""

    first_name: Name | None = None
    last_name: Name | None = None
    date_of_birth: (
        Annotated[
            date,
            Meta(description="Not in the future, nor under the age of criminal responsibility"),
        ]
        | None
    ) = None
    vulnerabilities: list[Vulnerability] | None = None
    vulnerable: bool | None = None


class Requester(Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | None = None
    phone: Phone | None = None


class AppropriateAdultRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    """A request for an Appropriate Adult from a custody suite."""

    external_ref: ExternalRef
    custody_suite: Annotated[
        str, text(100, "One of the catalogue's custody suites, such as Medway", required=True)
    ]
    person: Person
    juvenile: bool | None = None
    needed_at: Instant | None = None
    reason: Annotated[str, text(500)] | None = None
    requester: Requester | None = None


class DeliveryReceipt(Struct, kw_only=True):
    """A delivery receipt from the SMS and email provider. Other fields the provider sends
    (id, to, created_at, ...) are accepted and ignored."""

    reference: (
        Annotated[str, Meta(description="The id of our message; unknown ones are ignored")] | None
    ) = None
    status: Annotated[
        str,
        Meta(
            pattern=r"^[a-z][a-z-]{0,39}$", description="The provider's status, such as delivered"
        ),
    ]
