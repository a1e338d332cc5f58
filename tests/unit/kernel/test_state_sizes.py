"""scripts/state_sizes.py measures what the kernel would hold: the states its handlers
stored, and the timers a restarted instance loads from the stores' due-index."""

import importlib.util
import sys
from pathlib import Path

from emeuse.registry import CONSULTATION_REQUESTED
from services.coordination.processing import PROCESSOR, TIMELINES
from tests.unit.coordination import stories

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "state_sizes.py"
spec = importlib.util.spec_from_file_location("state_sizes_script", SCRIPT)
assert spec and spec.loader
script = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = script  # its dataclass looks its module up
spec.loader.exec_module(script)
PERSON = "psn-" + "a" * 32


def test_every_home_built_is_stored_with_the_deadline_the_kernel_loads(tmp_path: Path) -> None:
    figures = script.run("home", 5, tmp_path)
    assert figures.values == {"resident_to_home": 5}
    assert figures.events == 5 * 12
    # Each home watches for inactivity: one deadline each, found by PartitionTask._load_timers.
    assert figures.timers == 5
    assert figures.disk_bytes > 0 and figures.decoded_bytes > 0


def test_what_a_handler_publishes_on_its_own_inputs_is_handled_in_turn(tmp_path: Path) -> None:
    # Coordination re-keys access's request by its patient, then adds it to the timeline.
    instance = script.Instance(PROCESSOR, tmp_path)
    when = stories.at(0)
    instance.send(CONSULTATION_REQUESTED, stories.requested(PERSON, "r-1", when), when)
    timeline = instance._read(instance.partition_of(TIMELINES, PERSON))(TIMELINES, PERSON)
    instance.close()
    assert instance.handled == 2
    assert len(timeline["axes"]["access"]) == 1
