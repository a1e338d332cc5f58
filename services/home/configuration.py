"""Recording a home's configuration: checked, versioned, in the form the rules read.

Every change arrives as a HomeConfigured event (EnrollHome, UpdateContacts, or a partner
on Kafka). The home service numbers the versions (one writer per resident partition).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration

from emeuse.home.v1.home_events_pb2 import ContactRole, DeviceKind, HomeConfigured, HomeContact
from emeuse.runtime.codec import InvalidEventError
from services.home.domain.home import Contact, HomeConfig, HomeState, Thresholds
from services.home.domain.rhythm import (
    DEFAULT_GOES_TO_BED_AT,
    DEFAULT_INACTIVITY_ALERT_AFTER,
    DEFAULT_WAKES_AT,
    Rhythm,
    parse_clock,
)

# Ids, not free text: lowercase, no spaces, at least one digit (a name typed where an id
# belongs must not travel on the bus).
CONTACT_ID = re.compile(r"(?=[a-z0-9._\-]*[0-9])[a-z0-9][a-z0-9._\-]{0,63}")
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
# A device maker's event id (a counter, a UUID): no spaces, at least one digit.
EVENT_ID = re.compile(r"(?=[A-Za-z0-9._:\-]*[0-9])[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
# Contacts of the escalation chain; the emergency service is added by the service itself.
CHAIN_ROLES = frozenset(ContactRole.values()) - {
    ContactRole.CONTACT_ROLE_UNSPECIFIED,
    ContactRole.CONTACT_ROLE_EMERGENCY_SERVICE,
}


def check_contact_id(value: str, what: str) -> None:
    """Contact, aide and visit ids. The value is never repeated in the error: free text
    where an id belongs must not reach the dead letters or the logs."""
    if not CONTACT_ID.fullmatch(value):
        raise InvalidEventError(
            f"{what} is not an id (lowercase letters, digits, '.', '_', '-', at least one digit)"
        )


def check_device_id(value: str, what: str = "device_id") -> None:
    if not DEVICE_ID.fullmatch(value):
        raise InvalidEventError(f"{what} is not an id (letters, digits, '.', '_', ':', '-')")


def check_event_id(value: str, what: str) -> None:
    if not EVENT_ID.fullmatch(value):
        raise InvalidEventError(
            f"{what} is not an id (letters, digits, '.', '_', ':', '-', at least one digit)"
        )


def contact(message: HomeContact, what: str) -> Contact:
    check_contact_id(message.contact_id, what)
    if message.role == ContactRole.CONTACT_ROLE_EMERGENCY_SERVICE:
        # The territory's SAMU ends the chain of falls and panics, added by the service:
        # a second one in the contacts would be told out of turn.
        raise InvalidEventError(
            f"{what} cannot be the emergency service: the SAMU (15) is added by the service "
            "as the last step for falls and panics; list the other contacts only"
        )
    if message.role not in CHAIN_ROLES:
        raise InvalidEventError(f"{what} needs a role (family, aide, nurse, GP...)")
    if message.acknowledge_within.ToSeconds() <= 0:
        raise InvalidEventError(f"{what} needs an acknowledge_within delay")
    return Contact(
        contact_id=message.contact_id,
        role=message.role,
        acknowledge_within_s=message.acknowledge_within.ToTimedelta().total_seconds(),
    )


def contacts_of(home: HomeConfigured) -> list[Contact]:
    if not home.contacts:
        raise InvalidEventError("home has no contact to tell of an incident")
    contacts = [contact(c, f"contact {i + 1}") for i, c in enumerate(home.contacts)]
    ids = [c.contact_id for c in contacts]
    if len(set(ids)) != len(ids):
        raise InvalidEventError("a contact appears twice in the escalation order")
    return contacts


def rhythm_of(home: HomeConfigured) -> Rhythm:
    rhythm = home.rhythm
    try:
        wakes = parse_clock(rhythm.wakes_at, DEFAULT_WAKES_AT)
        bed = parse_clock(rhythm.goes_to_bed_at, DEFAULT_GOES_TO_BED_AT)
    except ValueError as exc:
        raise InvalidEventError(f"rhythm: {exc}") from None
    after = rhythm.inactivity_alert_after.ToTimedelta() or DEFAULT_INACTIVITY_ALERT_AFTER
    if after.total_seconds() < 0:
        raise InvalidEventError("rhythm: inactivity_alert_after must be positive")
    return Rhythm(
        wakes_at=wakes, goes_to_bed_at=bed, inactivity_alert_after_s=after.total_seconds()
    )


def thresholds_of(home: HomeConfigured) -> Thresholds:
    given = home.thresholds
    defaults = Thresholds()

    def seconds(duration: Duration) -> float:
        return float(duration.ToTimedelta().total_seconds())

    values = {
        "night_return_within_s": seconds(given.night_return_within),
        "too_cold_below": given.too_cold_below_celsius,
        "too_hot_above": given.too_hot_above_celsius,
        "temperature_sustained_for_s": seconds(given.temperature_sustained_for),
        "device_offline_after_s": seconds(given.device_offline_after),
        "low_battery_below": given.low_battery_below_percent,
    }
    if any(v < 0 for k, v in values.items() if k.endswith("_s")):
        raise InvalidEventError("thresholds: durations must be positive")
    thresholds = Thresholds(**{k: v or getattr(defaults, k) for k, v in values.items()})
    if thresholds.too_cold_below >= thresholds.too_hot_above:
        raise InvalidEventError("thresholds: too_cold_below must be under too_hot_above")
    if not 0 < thresholds.low_battery_below < 100:
        raise InvalidEventError("thresholds: low_battery_below_percent must be 0 to 100")
    return thresholds


def check_home(home: HomeConfigured) -> None:
    """What home support needs from a configuration; InvalidEventError names what is wrong."""
    configure(home, previous=None, territory="55", now=datetime(2026, 1, 1, tzinfo=UTC))


def configure(
    home: HomeConfigured,
    *,
    previous: HomeConfig | None,
    territory: str,
    now: datetime,
    experiment: str = "",
) -> HomeConfig:
    """The configuration in force after `home`: checked and numbered; the home stays in
    the experiment it was enrolled in."""
    if not 1 <= home.gir_level <= 6:
        raise InvalidEventError("gir_level must be 1 (most dependent) to 6 (autonomous)")
    devices: dict[str, int] = {}
    for device in home.devices:
        check_device_id(device.device_id, "a device id")
        if device.kind == DeviceKind.DEVICE_KIND_UNSPECIFIED:
            raise InvalidEventError(f"device {device.device_id} has no kind")
        if device.device_id in devices:
            raise InvalidEventError(f"device {device.device_id} is listed twice")
        devices[device.device_id] = device.kind
    if not home.HasField("device_provider"):
        raise InvalidEventError("home has no device provider for technical incidents")
    provider = contact(home.device_provider, "device provider")
    aide = contact(home.aide_service, "aide service") if home.HasField("aide_service") else None
    added = dict(previous.devices_added_at) if previous else {}
    for device_id in devices:
        added.setdefault(device_id, now)
    return HomeConfig(
        version=(previous.version if previous else 0) + 1,
        territory=territory,
        experiment=(previous.experiment if previous else "") or experiment,
        gir_level=home.gir_level,
        devices=devices,
        contacts=contacts_of(home),
        device_provider=provider,
        aide_service=aide,
        rhythm=rhythm_of(home),
        thresholds=thresholds_of(home),
        enrolled_at=previous.enrolled_at if previous else now,
        devices_added_at={d: at for d, at in added.items() if d in devices},
    )


def record_home(
    home: HomeConfigured,
    *,
    state: HomeState,
    territory: str,
    now: datetime,
    experiment: str = "",
) -> HomeState:
    """The home's state with the new configuration in force (stored as sent, numbered)."""
    config = configure(
        home, previous=state.config, territory=territory, now=now, experiment=experiment
    )
    state = state.changed()
    state.config = config
    recorded = HomeConfigured()
    recorded.CopyFrom(home)
    recorded.version = config.version
    state.configured = json_format.MessageToDict(recorded, preserving_proto_field_name=True)
    return state
