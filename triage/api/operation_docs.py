"""What the OpenAPI document says about each operation of the machine API: its body, its
answers, every error status it can give, an example of each. The routes name these with
`operation_class=`; create_app gives DOCS.components() to the document.

The statuses are the ones each route can really give: 401, 403 and 429 wherever a key is
checked (its scope, the client's rate limit, failed checks from an address), 503 wherever the
database or Redis is used (every route: keys are looked up in the database), 400, 413 and 415
wherever a body is read, 404 for a referral by id, 409 where content can conflict or a
referral be closed.
"""

from __future__ import annotations

from triage.api import examples
from triage.api.csv_batch import CSV_DOC
from triage.api.openapi_docs import (
    NOTIFY_TOKEN,
    Answer,
    ApiDocs,
    path_parameter,
    query_parameter,
)
from triage.api.wire_answers import (
    AppropriateAdultAnswer,
    BatchAnswer,
    DecisionList,
    ReceiptAnswer,
    Referral,
    ReferralPage,
    ReportAnswer,
)
from triage.api.wire_requests import (
    AppropriateAdultRequest,
    DeliveryReceipt,
    NewReferral,
    ReferralBatch,
    ReferralChanges,
    Withdrawal,
)

DOCS = ApiDocs()
# referrals.MAX_PAGE and DEFAULT_PAGE (referrals imports this module; a test keeps them equal).
SEARCH_MAX = 500
SEARCH_DEFAULT = 100

KEYED = (401, 403, 429, 503)
BODY = (400, 413, 415, 422)
REFERRAL_ID = [
    path_parameter(
        "referral_id",
        {"type": "string", "format": "uuid"},
        "The referral's id (another client's, or one that is not a uuid: 404)",
    )
]
# From a referral just sent to what can be done with it (schemathesis follows these too).
REFERRAL_LINKS = {
    name: {"operationId": operation, "parameters": {"referral_id": "$response.body#/id"}}
    for name, operation in (
        ("GetReferral", "get_referral"),
        ("UpdateReferral", "update_referral"),
        ("WithdrawReferral", "withdraw_referral"),
        ("ListDecisions", "list_referral_decisions"),
    )
}
ONE_REFERRAL = Answer(Referral, "The referral", examples.REFERRAL)

CREATE_REFERRAL = DOCS.operation(
    body=NewReferral,
    body_example=examples.NEW_REFERRAL,
    ok={
        201: Answer(Referral, "Created and triaged", examples.REFERRAL),
        200: Answer(Referral, "Sent before with the same content: the referral as it is now"),
    },
    errors=(*KEYED, *BODY, 409),
    error_examples={422: examples.INVALID_REFERRAL},
    links=REFERRAL_LINKS,
)

CREATE_BATCH = DOCS.operation(
    body=ReferralBatch,
    body_example=examples.BATCH,
    other_bodies={
        "text/csv": {
            "schema": {"type": "string", "description": CSV_DOC},
            "example": examples.CSV_BATCH,
        }
    },
    ok={200: Answer(BatchAnswer, "Every item's outcome, in request order", examples.BATCH_ANSWER)},
    # 413 also for a batch of too many items (counted before they are read).
    errors=(*KEYED, *BODY),
)

SEARCH_REFERRALS = DOCS.operation(
    ok={200: Answer(ReferralPage, "The client's referrals", examples.REFERRAL_PAGE)},
    errors=(*KEYED, 422),
    parameters=[
        query_parameter(
            "external_ref",
            {"type": "string"},
            "The client's referrals with this external_ref (then the others are not used)",
        ),
        query_parameter(
            "updated_since",
            {"type": "string", "format": "date-time"},
            "Referrals changed since this time (RFC 3339 with an offset), oldest change first",
        ),
        query_parameter("cursor", {"type": "string"}, "The next_cursor of the page before"),
        query_parameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": SEARCH_MAX, "default": SEARCH_DEFAULT},
            "Page size",
        ),
    ],
)

GET_REFERRAL = DOCS.operation(ok={200: ONE_REFERRAL}, errors=(*KEYED, 404), parameters=REFERRAL_ID)

UPDATE_REFERRAL = DOCS.operation(
    body=ReferralChanges,
    body_example=examples.REFERRAL_CHANGES,
    ok={
        200: Answer(
            Referral,
            "The referral, triaged again if its facts changed. A closed referral takes only a "
            "change of consent (anything else: 409): taking back consent to contact or to a "
            "survey stops any survey still to go",
            examples.UPDATED_REFERRAL,
        )
    },
    errors=(*KEYED, *BODY, 404, 409),
    parameters=REFERRAL_ID,
)

WITHDRAW_REFERRAL = DOCS.operation(
    body=Withdrawal,
    body_example=examples.WITHDRAWAL,
    ok={
        200: Answer(
            Referral,
            "The referral, withdrawn (also when it already was). A closed referral may be "
            "withdrawn too: a survey still to go is stopped",
            examples.WITHDRAWN_REFERRAL,
        )
    },
    errors=(*KEYED, *BODY, 404, 409),
    parameters=REFERRAL_ID,
)

LIST_DECISIONS = DOCS.operation(
    ok={200: Answer(DecisionList, "Every decision, oldest first", examples.DECISIONS)},
    errors=(*KEYED, 404),
    parameters=REFERRAL_ID,
)

CREATE_AA_REQUEST = DOCS.operation(
    body=AppropriateAdultRequest,
    body_example=examples.AA_REQUEST,
    ok={
        201: Answer(AppropriateAdultAnswer, "Allocated or signposted", examples.AA_ANSWER),
        200: Answer(AppropriateAdultAnswer, "Sent before with the same content"),
    },
    errors=(*KEYED, *BODY, 409),
)

# No API key: the provider's token. No rate limit, no media type check (the provider's).
RECEIVE_RECEIPT = DOCS.operation(
    body=DeliveryReceipt,
    body_example=examples.DELIVERY_RECEIPT,
    ok={200: Answer(ReceiptAnswer, "Applied, or ignored", examples.RECEIPT_ANSWER)},
    errors=(400, 401, 413, 422, 503),
    security=NOTIFY_TOKEN,
)

READ_REPORT = DOCS.operation(
    ok={200: Answer(ReportAnswer, "The report, with disclosure control", examples.REPORT)},
    errors=(*KEYED, 422),
    parameters=[
        query_parameter("service", {"type": "string"}, "A service's code, or `all` (the default)"),
        query_parameter(
            "from", {"type": "string", "pattern": r"^\d{4}-\d{2}$"}, "The first month, YYYY-MM"
        ),
        query_parameter(
            "to",
            {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
            "The last month, YYYY-MM (the default: the first month)",
        ),
    ],
)
