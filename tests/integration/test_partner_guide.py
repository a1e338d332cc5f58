"""The partner guide (docs/partners.md), followed as a new start-up follows it: the
operator's and the partner's commands run in the guide's order, as subprocesses, and each
step is checked against what the guide says the user sees.

The app is the guide's own code, taken from the page, so a guide whose example no longer
runs fails here. Section 2 is run as printed: a clone of this repository (its committed
HEAD), a fresh venv and the guide's `pip install`; the partner's commands and scripts then
run with that venv's `emeuse` and python. Three departures, all for a shared test machine
without PyPI: pip is told not to reach an index (PIP_NO_INDEX) nor build in isolation, and
the fresh venv sees the test's own venv's packages first (a .pth file), so the pinned
dependencies and the build backend are found installed; the platform is the harness's (its
own ports, not `make up`'s); and the app's /metrics port is 0 (none).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sysconfig
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.conftest import TLS
from tests.integration.harness import ROOT, emeuse
from tests.integration.test_partner_gateway import operator, reading, send
from tests.integration.test_partner_security import (
    ALERT,
    PARTNER_BOOTSTRAP,
    READING,
    Partner,
    add_partner,
    new_partner_id,
    remove_partner,
)

pytestmark = pytest.mark.integration
GUIDE = ROOT / "docs" / "partners.md"
GUIDE_MINUTES = 5  # the bar: publishing and receiving within five minutes

# What a partner writes after "Outside a handler" in the guide: a producer of its own.
PUBLISH_SCRIPT = """\
import asyncio
import sys
from datetime import UTC, datetime

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from glucoflow_app import app


async def main(patient: str, reading_id: str, loinc: str, value: str, unit: str) -> None:
    reading = ReadingRecorded(
        reading_id=reading_id, patient_pseudonym=patient, loinc_code=loinc,
        value=float(value), unit=unit,
    )
    reading.measured_at.FromDatetime(datetime.now(UTC))
    async with app.producing():
        envelope = await app.publish(reading, territory="55")
    print(envelope.event_id)


asyncio.run(main(*sys.argv[1:]))
"""


@dataclass(frozen=True)
class Installed:
    """The partner's venv, made by the guide's section 2, and how long that took."""

    bin: Path
    seconds: float

    @property
    def emeuse(self) -> str:
        return str(self.bin / "emeuse")

    @property
    def python(self) -> str:
        return str(self.bin / "python")

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` as the guide's `. .venv/bin/activate` leaves it."""
        return {
            **base,
            "VIRTUAL_ENV": str(self.bin.parent),
            "PATH": f"{self.bin}{os.pathsep}{base.get('PATH', '')}",
        }


def guide_install_commands() -> list[str]:
    """The shell lines of the guide's section 2, comments dropped, in order."""
    section = GUIDE.read_text().split("## 2. Install the package", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the guide's section 2 has no sh block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def offline_pip(venv: Path) -> dict[str, str]:
    """What stands in for PyPI here: the test's venv's packages, seen first by the fresh
    venv's python (its pip, the build backend, the pinned dependencies), and no index."""
    ours = sysconfig.get_paths()["purelib"]
    [site] = (venv / "lib").glob("python3.*/site-packages")
    (site / "00-offline-index.pth").write_text(f"import sys; sys.path.insert(0, {ours!r})\n")
    return {
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Section 2 of the guide, run line by line where a partner's project would be."""
    project = tmp_path_factory.mktemp("partner-project")
    began = time.monotonic()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PIP_"))}
    clone, venv, install, activate = guide_install_commands()
    assert clone == "git clone <this repository> emeuse-platform", clone
    assert venv == "python3.11 -m venv .venv", venv
    assert install.startswith(".venv/bin/pip install "), install
    assert activate == ". .venv/bin/activate", activate
    for argv in (["git", "clone", "-q", str(ROOT), "emeuse-platform"], venv.split()):
        run = subprocess.run(argv, cwd=project, env=environment, capture_output=True, text=True)
        assert run.returncode == 0, f"{argv}: {run.stderr}"
    environment.update(offline_pip(project / ".venv"))
    run = subprocess.run(
        install.split(), cwd=project, env=environment, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, f"{install}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    done = Installed(project / ".venv" / "bin", time.monotonic() - began)
    # The platform's package the partner runs is the one just installed, not the test's.
    where = subprocess.run(
        [done.python, "-c", "import emeuse.partner; print(emeuse.partner.__file__)"],
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(project / ".venv")), where
    assert shutil.which("emeuse", path=done.environment(environment)["PATH"]) == done.emeuse
    return done


def guide_app() -> str:
    """The app of the guide's section 3, as printed there."""
    section = GUIDE.read_text().split("## 3. Write the app", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "the guide's section 3 has no Python block"
    return code.group(1)


def wait_until(found: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `found()`; fails naming `what` after `timeout`."""
    started = time.monotonic()
    while not found():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not seen within {timeout} s: {what}")
        time.sleep(0.2)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("partner-secrets")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "glucoflow_app.py").write_text(guide_app())
    (tmp_path / "publish.py").write_text(PUBLISH_SCRIPT)
    return tmp_path


@pytest.fixture
def running_app(
    workdir: Path, installed: Installed
) -> Iterator[Callable[[Path, str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def run(settings: Path, partner_id: str) -> subprocess.Popen[bytes]:
        environment = {
            **installed.environment(os.environ),
            "EMEUSE_PARTNER_CONFIG": str(settings),
            "EMEUSE_PARTNER_ID": partner_id,  # the guide's code says "glucoflow"
            "EMEUSE_PARTNER_METRICS_PORT": "0",
            "PYTHONUNBUFFERED": "1",  # its prints reach the file at once, as on a terminal
        }
        environment.pop("EMEUSE_PARTNER_LOCAL", None)
        environment.pop("EMEUSE_KAFKA_BOOTSTRAP", None)
        with (workdir / "app.out").open("wb") as out:
            process = subprocess.Popen(
                [installed.emeuse, "partner", "run", "glucoflow_app:app"],
                cwd=workdir,
                env=environment,
                stdout=out,
                stderr=(workdir / "app.err").open("wb"),
            )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def as_partner(
    installed: Installed, workdir: Path, *argv: str, exported: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A partner's command, run where its files are, in its shell with the guide's venv
    activated: nothing of the platform's environment, what it exported (the guide's
    `export`, section 4)."""
    environment = {
        k: v
        for k, v in installed.environment(os.environ).items()
        if k not in ("EMEUSE_KAFKA_BOOTSTRAP", "SECRETS_DIR", "EMEUSE_PARTNER_LOCAL")
    }
    environment.update(exported or {})
    return subprocess.run(
        [installed.python, *argv] if argv[0].endswith(".py") else [installed.emeuse, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=workdir,
        env=environment,
    )


def consent_recorded(platform, partner_id: str, patient: str) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + 30
    while True:  # the gateway learns of a new partner from the registry within a moment
        recorded = operator(
            platform,
            "consent",
            "record",
            patient,
            "--partner",
            partner_id,
            "--purpose",
            "remote-monitoring",
            "--territory",
            "55",
        )
        if recorded.returncode == 0 or "NOT_FOUND" not in recorded.stderr:
            return recorded
        assert time.monotonic() < deadline, recorded.stderr
        time.sleep(0.3)


def dead_letters(installed: Installed, workdir: Path, settings: Path) -> list[dict]:
    tailed = as_partner(
        installed,
        workdir,
        "tail",
        "dead-letter",
        "--config",
        str(settings),
        "--from-beginning",
        "--timeout",
        "3",
        "--json",
    )
    assert tailed.returncode == 0, tailed.stderr
    return [json.loads(line) for line in tailed.stdout.splitlines()]


def test_a_new_partner_follows_the_guide_and_publishes_and_receives(
    platform, bus, bootstrap, secrets_dir, workdir, installed, running_app
):
    # Section 2 (the install) ran first, in the module's fixture: its time counts too.
    began = time.monotonic() - installed.seconds
    since = datetime.now(UTC) - timedelta(seconds=1)
    partner_id = new_partner_id()
    experiment = f"{partner_id}-pilot"
    add = [
        "partner",
        "add",
        partner_id,
        "--purpose",
        "remote-monitoring",
        "--territory",
        "55",
        "--read",
        READING,
        "--read",
        ALERT,
        "--publish",
        READING,
        "--secrets-dir",
        str(secrets_dir),
        "--partner-bootstrap",
        PARTNER_BOOTSTRAP,
    ]
    # 1. Credentials. Publishing without an experiment is refused, as the guide says.
    no_experiment = emeuse(*add, bootstrap=bootstrap)
    assert no_experiment.returncode != 0
    assert "--experiment" in no_experiment.stderr
    added = emeuse(*add, "--experiment", experiment, bootstrap=bootstrap)
    assert added.returncode == 0, added.stderr
    settings = secrets_dir / f"{partner_id}.properties"
    partner = Partner(partner_id, settings, added)
    try:
        lines = settings.read_text().splitlines()
        assert f"sasl.username=partner-{partner_id}" in lines
        assert f"#emeuse.publish={READING}" in lines
        assert f"#emeuse.experiments={experiment}" in lines

        # 3-4. The guide's app, run with the settings file: it starts and keeps running.
        app = running_app(settings, partner_id)
        printed = workdir / "app.out"
        wait_until(
            lambda: (
                b"partner.started" in (workdir / "app.err").read_bytes() or app.poll() is not None
            ),
            30,
            "partner.started",
        )
        assert app.poll() is None, (workdir / "app.err").read_text()

        # Consent: the operator records it; only the consenting patient's events arrive.
        patient, stranger = random_pseudonym(), random_pseudonym()
        recorded = consent_recorded(platform, partner_id, patient)
        assert recorded.returncode == 0, recorded.stderr
        assert f"consent recorded: {partner_id}/remote-monitoring" in recorded.stdout
        withheld = reading(stranger)
        withheld.value = 123
        send(bus, withheld)
        send(bus, reading(patient))
        wait_until(lambda: b"2339-0 110.0 mg/dL" in printed.read_bytes(), 45, "the app's line")
        received = printed.read_text().splitlines()
        assert [line for line in received if " 123.0 " in line] == []

        # Publishing, as "Outside a handler" shows; the experiment is the file's first.
        # Before the guide's `export`, the SDK refuses to connect without credentials.
        unconfigured = as_partner(
            installed, workdir, "publish.py", patient, "gf-0", "2339-0", "1", "mg/dL"
        )
        assert unconfigured.returncode != 0
        assert "no credentials: set EMEUSE_PARTNER_CONFIG" in unconfigured.stderr
        exported = {"EMEUSE_PARTNER_CONFIG": str(settings), "EMEUSE_PARTNER_ID": partner_id}
        published = as_partner(
            installed,
            workdir,
            "publish.py",
            patient,
            "gf-1",
            "2339-0",
            "104",
            "mg/dL",
            exported=exported,
        )
        assert published.returncode == 0, published.stderr
        # Its stdout is its own: the SDK logs on stderr, as under `emeuse partner run`.
        [own_id] = published.stdout.splitlines()
        assert "event.published" in published.stderr
        # An impossible reading (INR 40): on the partner's own dead letters, on no feed.
        impossible = as_partner(
            installed,
            workdir,
            "publish.py",
            patient,
            "gf-2",
            "34714-6",
            "40",
            "{INR}",
            exported=exported,
        )
        assert impossible.returncode == 0, impossible.stderr
        [refused_id] = impossible.stdout.splitlines()
        # Its own admitted event comes back on its feed (the guide: "Your own events").
        try:
            wait_until(lambda: own_id in printed.read_text(), 45, "its own event on its feed")
        except AssertionError as missing:
            letters_now = [
                (x.get("original_event_id"), x["event"]["consumer"], x["event"]["reason"])
                for x in dead_letters(installed, workdir, settings)
            ]
            raise AssertionError(
                f"{missing}; sent {own_id}; dead letters {letters_now}; app printed "
                f"{printed.read_text()!r}; app log {(workdir / 'app.err').read_text()[-3000:]}"
            ) from None
        minutes = (time.monotonic() - began) / 60
        assert minutes < GUIDE_MINUTES, f"publishing and receiving took {minutes:.1f} min"

        # `emeuse tail` with its settings file: the gateway's refusal, with the reason; and
        # chronic's later refusal of the admitted reading (the patient has no care plan).
        def refused_by() -> dict[str, dict]:
            return {
                letter["event"]["consumer"]: letter
                for letter in dead_letters(installed, workdir, settings)
                if letter.get("original_event_id") in (own_id, refused_id)
            }

        wait_until(lambda: set(refused_by()) == {"gateway", "chronic"}, 45, "both refusals")
        letters = refused_by()
        assert letters["gateway"]["original_event_id"] == refused_id
        assert "INR (point of care) 40 {INR} is impossible" in letters["gateway"]["event"]["reason"]
        assert letters["chronic"]["original_event_id"] == own_id
        assert "refused by chronic" in letters["chronic"]["event"]["reason"]
        assert refused_id not in printed.read_text()

        # Status with its own settings file: its group, its refusals; consents are not its.
        status = as_partner(
            installed, workdir, "partner", "status", partner_id, "--config", str(settings)
        )
        assert status.returncode == 0, status.stderr
        shown = as_partner(
            installed, workdir, "partner", "status", partner_id, "--config", str(settings), "--json"
        )
        mine = json.loads(shown.stdout)
        assert mine["consents"] is None
        assert [g["group"] for g in mine["groups"]] == [f"emeuse-partner.{partner_id}.sdk"]
        assert mine["refusals"] == {"chronic": 1, "gateway": 1}

        # Replay (operations): what consent covers is sent again, and the app gets it again.
        before = printed.read_text().count("2339-0 110.0 mg/dL")
        replayed = operator(platform, "partner", "replay", partner_id, "--since", since.isoformat())
        assert replayed.returncode == 0, replayed.stderr
        assert re.search(r"replayed\s+2 event\(s\)", replayed.stdout), replayed.stdout
        wait_until(
            lambda: printed.read_text().count("2339-0 110.0 mg/dL") > before, 45, "the replay"
        )

        # A clean stop: SIGTERM, exit 0.
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=20) == 0, (workdir / "app.err").read_text()
    finally:
        remove_partner(bootstrap, partner)


def test_the_guides_app_runs_on_a_tls_settings_file_as_make_up_writes_it(
    platform, bus, bootstrap, secure_bootstrap, secrets_dir, workdir, running_app
):
    """`make up`'s partner listener is SASL_SSL (the test broker's is SASL_PLAINTEXT): the
    same app, with the file's connection lines as `emeuse partner add` writes them there."""
    partner = add_partner(bootstrap, secrets_dir, new_partner_id(), "--read", READING)
    try:
        kept = [
            line
            for line in partner.settings.read_text().splitlines()
            if not line.startswith(("bootstrap.servers=", "security.protocol=", "ssl.ca."))
        ]
        settings = workdir / f"{partner.partner_id}.properties"
        settings.write_text(
            "\n".join(
                [
                    f"bootstrap.servers={secure_bootstrap}",
                    "security.protocol=SASL_SSL",
                    f"ssl.ca.location={TLS / 'ca.crt'}",
                    *kept,
                ]
            )
            + "\n"
        )
        app = running_app(settings, partner.partner_id)
        patient = random_pseudonym()
        recorded = consent_recorded(platform, partner.partner_id, patient)
        assert recorded.returncode == 0, recorded.stderr
        send(bus, reading(patient))
        printed = workdir / "app.out"
        wait_until(lambda: b"2339-0 110.0 mg/dL" in printed.read_bytes(), 45, "the app's line")
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=20) == 0, (workdir / "app.err").read_text()
    finally:
        remove_partner(bootstrap, partner)
