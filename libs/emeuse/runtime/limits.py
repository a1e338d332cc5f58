"""How much one gRPC call may carry and how long it may run: the bounds every service's
server checks before a handler sees the request (grpc_server.py), kept here as data.

A string field holds at most ID_CHARS characters (ids, pseudonyms, codes, units, times of
day) unless it is named below as free text or a document; a repeated or map field holds at
most ITEMS entries unless named below. Names are protobuf full field names, so a bound
follows a message type wherever it is nested.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# Whole request, in bytes: a bigger one is refused unparsed (RESOURCE_EXHAUSTED, counted
# like any answer). Room for the largest document below and the rest of the call. The
# default of EMEUSE_GRPC_MAX_REQUEST_BYTES (settings.py).
MAX_REQUEST_BYTES = 2 * 1024 * 1024
# gRPC's own receive limit: it drops a bigger message before the service sees it (also
# RESOURCE_EXHAUSTED, but uncounted). It bounds the memory one call can take.
RECEIVE_FACTOR = 4
MAX_RECEIVE_BYTES = RECEIVE_FACTOR * MAX_REQUEST_BYTES
# Calls a server answers at once: one more is refused at once, RESOURCE_EXHAUSTED, rather
# than queued behind calls it cannot answer in time (a queue only grows under overload, and
# its callers give up before their turn). The default of EMEUSE_GRPC_MAX_IN_FLIGHT.
MAX_IN_FLIGHT = 128
# Responses: the longest page of a List RPC (500 items) fits many times over.
MAX_SEND_BYTES = 4 * 1024 * 1024

ID_CHARS = 128
TEXT_CHARS = 4096
DOCUMENT_CHARS = 1024 * 1024
ITEMS = 100

STRING_CHARS: dict[str, int] = {
    # Opaque page tokens carry the last item's sort key (a few ids, base64).
    "emeuse.access.v1.ListPlacesRequest.page_token": 1024,
    "emeuse.access.v1.ListOpenRequestsRequest.page_token": 1024,
    "emeuse.chronic.v1.ListAlertsRequest.page_token": 1024,
    "emeuse.home.v1.ListOpenIncidentsRequest.page_token": 1024,
    # Free text.
    "emeuse.chronic.v1.ReviewPointOfCareResultRequest.rejection_reason": TEXT_CHARS,
    "emeuse.prevention.v1.AudienceMessage.ParametersEntry.value": TEXT_CHARS,
    # Documents: chronic's FHIR reader also bounds the Bundle's entries (fhir.py).
    "emeuse.chronic.v1.IngestFhirObservationRequest.fhir_json": DOCUMENT_CHARS,
}
REPEATED_ITEMS: dict[str, int] = {
    # A practitioner publishes a month of half-hour slots at once.
    "emeuse.access.v1.AvailabilityPublished.slots": 1000,
}

# Server-side deadline of a call, in seconds: past it the call is cancelled and answered
# DEADLINE_EXCEEDED. A caller's shorter deadline wins. The defaults of
# EMEUSE_GRPC_CALL_SECONDS and EMEUSE_GRPC_REPLAY_SECONDS (settings.py).
CALL_SECONDS = 30.0
# A replay reads every source partition and asks each peer (120 s each) to do the same.
REPLAY = "/emeuse.partners.v1.PartnerGatewayService/Replay"
REPLAY_SECONDS = 300.0
CALL_SECONDS_BY_METHOD: dict[str, float] = {REPLAY: REPLAY_SECONDS}


def call_seconds(method: str) -> float:
    return CALL_SECONDS_BY_METHOD.get(method, CALL_SECONDS)


def deadlines(seconds: float, replay_seconds: float) -> Callable[[str], float]:
    """The server-side deadline of each method, from the service's settings."""
    return lambda method: replay_seconds if method == REPLAY else seconds


def out_of_bounds(message: Message, path: str = "") -> str | None:
    """What in `message` exceeds its bound (the field's path, its size and the bound), or
    None. Only fields that are set are visited: a request costs what it carries."""
    for field, value in message.ListFields():
        where = f"{path}{field.name}"
        if _is_map(field):
            problem = _too_many(field, where, len(value)) or _map_out_of_bounds(field, value, where)
        elif field.is_repeated:
            problem = _too_many(field, where, len(value))
            for index, item in enumerate(value):
                problem = problem or _item_out_of_bounds(field, item, f"{where}[{index}]")
        else:
            problem = _item_out_of_bounds(field, value, where)
        if problem:
            return problem
    return None


def _item_out_of_bounds(field: FieldDescriptor, value: object, where: str) -> str | None:
    if isinstance(value, Message):
        return out_of_bounds(value, f"{where}.")
    if isinstance(value, str):
        limit = STRING_CHARS.get(field.full_name, ID_CHARS)
        if len(value) > limit:
            return f"{where} is {len(value)} characters long; at most {limit}"
    return None


def _too_many(field: FieldDescriptor, where: str, count: int) -> str | None:
    limit = REPEATED_ITEMS.get(field.full_name, ITEMS)
    return f"{where} has {count} entries; at most {limit}" if count > limit else None


def _map_out_of_bounds(field: FieldDescriptor, value: object, where: str) -> str | None:
    entry = field.message_type
    assert entry is not None  # a map field's entry type
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    for key, item in value.items():  # type: ignore[attr-defined]
        problem = _item_out_of_bounds(key_field, key, f"{where} key") or _item_out_of_bounds(
            value_field, item, f"{where} value"
        )
        if problem:
            return problem
    return None


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.is_repeated
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )
