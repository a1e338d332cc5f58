"""The services the fault suite runs: one Scenario each (tests/chaos/scenario.py). A service
moved onto the processing kernel joins the suite by adding its scenario here."""

from __future__ import annotations

from tests.chaos.access import ACCESS
from tests.chaos.chronic import CHRONIC
from tests.chaos.home import HOME
from tests.chaos.scenario import Scenario

SCENARIOS: dict[str, Scenario] = {
    scenario.service: scenario for scenario in (CHRONIC, HOME, ACCESS)
}
