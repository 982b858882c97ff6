"""The OpenAPI document's request bodies, answers and errors, generated from msgspec Structs.

The handlers read `request: Request` themselves (bodies are checked by the domain's checkers,
which report every problem at once), so Litestar sees no body type and documents none. Two of
Litestar's public hooks put them back, with nothing patched after the document is built:

- `operation_class=` on a route: an `Operation` whose `to_schema()` writes the operation's
  requestBody, responses (every status it can give), parameters and security as plain JSON
  (Litestar's own normalising would drop the nulls in examples);
- `OpenAPIConfig(components=...)`: a `Components` whose `to_schema()` adds the schemas of
  every Struct the operations named (Litestar replaces `components.schemas` with its own
  registry while it builds, but keeps the object), written by `msgspec.json.schema_components`
  with `$ref`s into `#/components/schemas`.

Every example is decoded into its Struct when the module is imported: a wrong one fails at
start-up, not in an integrator's hands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import Components, Operation

from triage.api.problems import PROBLEM
from triage.api.wire_answers import ProblemDetails

REF = "#/components/schemas/{name}"
API_KEY = "apiKey"
NOTIFY_TOKEN = "notifyToken"
SECURITY_SCHEMES = {
    API_KEY: {
        "type": "http",
        "scheme": "bearer",
        "description": "The API client's key, `trg_<prefix>_<secret>` (api.md). Missing or "
        "wrong: 401; a key without the operation's scope: 403.",
    },
    NOTIFY_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "The token shared with the SMS and email provider for its delivery "
        "receipts (NOTIFY_CALLBACK_TOKEN).",
    },
}
ERROR_TEXT = {
    400: "Malformed body: not JSON in UTF-8, nested too deeply, or not CSV in UTF-8",
    401: "Missing or wrong bearer token",
    403: "The key lacks the operation's scope",
    404: "No such referral for this client",
    409: "Conflict: external_ref sent before with other content, or the referral is closed "
    "or withdrawn",
    413: "Request body too large (or a batch of too many items)",
    415: "Unsupported media type",
    422: "The body or query breaks the rules: every problem is listed in `errors`, with its "
    "dotted path",
    429: "Rate limited: try again after Retry-After seconds",
    503: "The database or Redis cannot be reached; nothing was written: try again after "
    "Retry-After seconds",
}
_SECONDS = {"schema": {"type": "string", "pattern": "^[0-9]+$"}}
ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait", **_SECONDS}},
    503: {"Retry-After": {"description": "Seconds to wait", **_SECONDS}},
}


@dataclass(frozen=True)
class Answer:
    """A successful answer: its body's Struct (None: no body), what it means, an example."""

    shape: Any
    description: str
    example: Any = msgspec.UNSET


class ApiDocs:
    """The Structs the operations name, rendered as the document's components."""

    def __init__(self) -> None:
        self._types: dict[str, type] = {}
        self.schema(ProblemDetails)  # every operation answers problems

    def schema(self, shape: Any) -> dict[str, Any]:
        """The schema of a type: a `$ref` for a Struct (registered as a component)."""
        for struct in _structs_in(shape):
            if self._types.setdefault(struct.__name__, struct) is not struct:
                raise ValueError(f"two schema types named {struct.__name__!r}")
        (schema,), _ = msgspec.json.schema_components([shape], ref_template=REF)
        return schema

    def component_schemas(self) -> dict[str, Any]:
        _, schemas = msgspec.json.schema_components(self._types.values(), ref_template=REF)
        return schemas

    def components(self) -> Components:
        docs = self

        class StructComponents(Components):
            def to_schema(self) -> dict[str, Any]:
                out = super().to_schema()
                schemas = out.setdefault("schemas", {})
                for name, schema in docs.component_schemas().items():
                    if schemas.get(name, schema) != schema:
                        raise ValueError(f"component {name!r} defined by Litestar and msgspec")
                    schemas[name] = schema
                out["securitySchemes"] = SECURITY_SCHEMES
                return out

        return StructComponents()

    def operation(
        self,
        *,
        ok: Mapping[int, Answer],
        errors: Iterable[int],
        body: Any = None,
        body_example: Any = msgspec.UNSET,
        other_bodies: Mapping[str, Mapping[str, Any]] | None = None,
        error_examples: Mapping[int, Any] | None = None,
        parameters: list[dict[str, Any]] | None = None,
        security: str | None = API_KEY,
        links: Mapping[str, Any] | None = None,
    ) -> type[Operation]:
        """An `Operation` class for a route's `operation_class=`: `body` is the JSON body's
        Struct, `other_bodies` further media types; `errors` every error status the route
        can give (problem+json); `links` lead from a 2xx answer to other operations."""
        request_body: dict[str, Any] | None = None
        if body is not None:
            content: dict[str, Any] = {"application/json": self._media(body, body_example)}
            content.update({media: dict(doc) for media, doc in (other_bodies or {}).items()})
            request_body = {"required": True, "content": content}
        responses: dict[str, Any] = {}
        for status, answer in ok.items():
            responses[str(status)] = {"description": answer.description}
            if answer.shape is not None:
                responses[str(status)]["content"] = {
                    "application/json": self._media(answer.shape, answer.example)
                }
            if links:
                responses[str(status)]["links"] = dict(links)
        examples = error_examples or {}
        for status in sorted(errors):
            media = self._media(ProblemDetails, examples.get(status, msgspec.UNSET))
            responses[str(status)] = {
                "description": ERROR_TEXT[status],
                "content": {PROBLEM: media},
                **({"headers": ERROR_HEADERS[status]} if status in ERROR_HEADERS else {}),
            }
        requirements: list[dict[str, list[str]]] | None = [{security: []}] if security else None

        class DocumentedOperation(Operation):
            def to_schema(self) -> dict[str, Any]:
                out = super().to_schema()
                # Replaces Litestar's guesses: an untyped 200 and its own 400 shape.
                out["responses"] = responses
                if request_body is not None:
                    out["requestBody"] = request_body
                if parameters is not None:
                    out["parameters"] = parameters
                if requirements is not None:
                    out["security"] = requirements
                return out

        return DocumentedOperation

    def _media(self, shape: Any, example: Any) -> dict[str, Any]:
        media = {"schema": self.schema(shape)}
        if example is not msgspec.UNSET:
            media["example"] = checked_example(example, shape)
        return media


def checked_example(example: Any, shape: Any) -> Any:
    """The example as plain JSON, once it has decoded as `shape` (constraints included)."""
    raw = msgspec.json.encode(example)
    msgspec.json.decode(raw, type=shape)
    return msgspec.json.decode(raw)


def path_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def query_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _structs_in(shape: Any) -> list[type]:
    """The Struct classes a type names (itself, or inside list[X], X | None, Annotated)."""
    found: list[type] = []
    if isinstance(shape, type) and issubclass(shape, msgspec.Struct):
        found.append(shape)
    for arg in getattr(shape, "__args__", ()):
        found.extend(_structs_in(arg))
    return found
