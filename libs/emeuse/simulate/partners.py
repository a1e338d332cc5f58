"""Partners of a simulated territory: device makers whose users' readings come through the
partner gateway, as the partner SDK sends them.

Two partners, each serving one monitoring programme: a glucose meter maker (diabetes) and a
connected blood-pressure cuff maker (heart failure). A share of the programme's patients
(`partner_share`) use the partner's device: they consent to it for remote monitoring
(`RecordConsent` on the gateway, at setup, covering their data from the earliest time the
run's readings may say, as a patient agreeing to share the episode's data would) and their
readings of the programme's measures go on the partner's inbound topic with the partner's
own credential, which the gateway admits onto the platform's reading topic (it refuses a
patient's event without their consent to the partner). A share of those consents
(`consent_withdrawal_share`) is withdrawn during the run; the partner sends nothing for
that patient after it. Operations register the partners first (`emeuse partner add`,
or `partner grant` of the run's experiment to a partner an earlier run added).
"""

from __future__ import annotations

import contextlib
import io
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from emeuse.cli.errors import CliError
from emeuse.simulate.events import GRPC, Options, SimEvent, rfc3339
from emeuse.simulate.population import Population
from emeuse.simulate.rollout import experiment_of

PARTNER = "partner"  # SimEvent.via: a record on a partner's inbound topic
PURPOSE = "remote-monitoring"
READING_TYPE = "emeuse.chronic.v1.ReadingRecorded"


@dataclass(frozen=True)
class SimPartner:
    partner_id: str
    programme: str  # the monitoring programme whose patients use its devices


PARTNERS = (SimPartner("sim-glucometer", "diabetes"), SimPartner("sim-bp-cuff", "heart_failure"))


def partner_users(population: Population, options: Options) -> dict[str, str]:
    """Patient pseudonym -> the partner whose device they use (`partner_share` of each
    partner's programme; none of the patients whose devices go silent)."""
    rng = random.Random(f"emeuse-simulate-partners-{options.seed}")
    by_programme = {partner.programme: partner.partner_id for partner in PARTNERS}
    users = {}
    for patient in population.patients:
        partner_id = by_programme.get(patient.programme)
        if partner_id and rng.random() < options.partner_share and not patient.silent:
            users[patient.person.pseudonym] = partner_id
    return users


def _consent(
    pseudonym: str,
    territory: str,
    partner_id: str,
    granted: bool,
    experiment: str,
    covers_from: datetime | None = None,
) -> dict[str, object]:
    change: dict[str, object] = {
        "patient_pseudonym": pseudonym,
        "partner_id": partner_id,
        "purpose": PURPOSE,
        "granted": granted,
        "territory": territory,
        "experiment_id": experiment,
    }
    if covers_from is not None:
        change["covers_from"] = rfc3339(covers_from)
    return change


def consents(
    population: Population,
    options: Options,
    users: dict[str, str],
    now: datetime,
    covers_from: datetime,
) -> list[SimEvent]:
    """The users' consents to their partner, recorded at setup, covering their data from
    `covers_from` (the gateway admits a partner's event only if a consent covers when it
    happened, and the run's readings may say they happened before the setup)."""
    events = []
    for patient in population.patients:
        person = patient.person
        partner_id = users.get(person.pseudonym)
        if partner_id:
            experiment = experiment_of(options, person.territory, now)
            message = _consent(
                person.pseudonym, person.territory, partner_id, True, experiment, covers_from
            )
            events.append(
                SimEvent(
                    "setup.consent",
                    GRPC,
                    "gateway/RecordConsent",
                    person.territory,
                    person.pseudonym,
                    now,
                    f"consent-{partner_id}-{person.pseudonym[4:16]}",
                    message,
                )
            )
    return events


def withdrawals(
    population: Population, options: Options, users: dict[str, str], start: datetime
) -> list[SimEvent]:
    """`consent_withdrawal_share` of the users withdrawing their consent during the run."""
    rng = random.Random(f"emeuse-simulate-withdrawals-{options.seed}")
    events = []
    for patient in population.patients:
        person = patient.person
        partner_id = users.get(person.pseudonym)
        if partner_id and rng.random() < options.consent_withdrawal_share:
            due = rng.uniform(0, options.duration)
            at = start + timedelta(seconds=due)
            experiment = experiment_of(options, person.territory, at)
            message = _consent(person.pseudonym, person.territory, partner_id, False, experiment)
            events.append(
                SimEvent(
                    "partner.consent_withdrawn",
                    GRPC,
                    "gateway/RecordConsent",
                    person.territory,
                    person.pseudonym,
                    at,
                    f"withdrawal-{partner_id}-{person.pseudonym[4:16]}",
                    message,
                    due=due,
                )
            )
    return events


def withdrawn_at(withdrawals: list[SimEvent]) -> dict[str, float]:
    """Patient -> when (seconds into the run) their consent to the partner is withdrawn."""
    return {event.subject: event.due for event in withdrawals}


def register(
    partner_ids: list[str],
    bootstrap: str,
    partner_bootstrap: str,
    secrets_dir: Path,
    experiments: list[str],
) -> None:
    """What operations do for each partner (`emeuse partner add`), or, for one an earlier
    run added, grant it this run's experiments; its settings file lands in `secrets_dir`."""
    from emeuse.cli.main import main  # the CLI's own commands, run in this process
    from emeuse.cli.partner_admin import read_registrations

    known = read_registrations(bootstrap)
    for partner_id in partner_ids:
        common = ["--bootstrap", bootstrap, "--territory", "55", "--secrets-dir", str(secrets_dir)]
        grants = ["--purpose", PURPOSE, "--read", READING_TYPE, "--publish", READING_TYPE]
        for experiment in experiments:
            grants += ["--experiment", experiment]
        registered = known.get(partner_id)
        settings = secrets_dir / f"{partner_id}.properties"
        if registered is not None and registered.active:
            if not settings.exists():
                raise CliError(
                    f"partner {partner_id} is registered but {settings} is missing: "
                    f"`emeuse partner remove {partner_id}`, or give --partner-share 0"
                )
            command = ["partner", "grant", partner_id, *grants, *common]
        else:
            command = ["partner", "add", partner_id, *grants, *common]
            command += ["--partner-bootstrap", partner_bootstrap]
        said = io.StringIO()
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            status = main(command)
        if status != 0:
            raise CliError(f"registering partner {partner_id}: {said.getvalue().strip()}")
