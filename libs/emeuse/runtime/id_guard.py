"""Every gRPC request's id fields checked before its handler runs (emeuse.runtime.id_rules).

A request whose id field holds a direct identifier, or breaks its rule, is refused with
INVALID_ARGUMENT naming the field and the kind of identifier, never the value: nothing
identifying reaches a handler, the bus, or a log. Called by grpc_server.Guard.
"""

from __future__ import annotations

import structlog
from google.protobuf.message import Message

from emeuse.runtime.id_rules import IdentifyingContentError, IdRuleError, check_ids

log = structlog.get_logger("emeuse.grpc")


def identifier_problem(request: Message, method: str) -> str | None:
    """Why `request` is refused for its ids, or None when they all keep their rules."""
    try:
        check_ids(request)
    except IdentifyingContentError as exc:
        log.warning("grpc.identifier_refused", method=method, field=exc.field, kind=exc.kind)
        return str(exc)
    except IdRuleError as exc:
        return str(exc)
    return None
