"""The schema evolution rules (docs/schema-evolution.md) hold because `buf breaking`
refuses what would break a partner's consumer: each case edits a copy of proto/ and
compares it with the working tree, as `make lint` compares the branch with main."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "node_modules" / ".bin" / "buf"
CHRONIC = "proto/emeuse/chronic/v1/chronic_events.proto"
DEVICE_ID = "  string device_id = 7;"

pytestmark = pytest.mark.skipif(
    not BUF.exists(), reason="buf is not installed: run `make install` (npm @bufbuild/buf)"
)


def edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(copy: Path) -> None:
        file = copy / path
        text = file.read_text()
        assert old in text, f"{old!r} not in {path}: update this test"
        file.write_text(text.replace(old, new, 1))

    return apply


def add_v2_package(copy: Path) -> None:
    v2 = copy / "proto/emeuse/chronic/v2"
    v2.mkdir()
    text = (
        (copy / CHRONIC)
        .read_text()
        .replace("package emeuse.chronic.v1;", "package emeuse.chronic.v2;")
    )
    (v2 / "chronic_events.proto").write_text(text)


def breaking(change: Callable[[Path], None], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    copy = tmp_path / "changed"
    copy.mkdir()
    shutil.copy(ROOT / "buf.yaml", copy / "buf.yaml")
    shutil.copytree(ROOT / "proto", copy / "proto")
    change(copy)
    return subprocess.run(
        [str(BUF), "breaking", str(copy), "--against", str(ROOT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (edit(CHRONIC, DEVICE_ID, "  string device_id = 17;"), "device_id"),
        (edit(CHRONIC, DEVICE_ID, ""), "device_id"),
        (edit(CHRONIC, DEVICE_ID, '  reserved 7;\n  reserved "device_id";'), "device_id"),
        (edit(CHRONIC, DEVICE_ID, "  int64 device_id = 7;"), "device_id"),
        (edit(CHRONIC, DEVICE_ID, "  string instrument_id = 7;"), "device_id"),
        (
            edit(CHRONIC, "  MONITORING_PROGRAMME_ANTICOAGULATION = 4;\n", ""),
            "MonitoringProgramme",
        ),
    ],
    ids=[
        "renumbered",
        "removed",
        "removed-even-if-reserved",
        "type-changed",
        "renamed",
        "enum-value-removed",
    ],
)
def test_a_change_that_breaks_consumers_fails_the_check_and_names_what_broke(
    change, named, tmp_path
):
    done = breaking(change, tmp_path)
    assert done.returncode != 0, done.stdout
    assert named in done.stdout + done.stderr


@pytest.mark.parametrize(
    "change",
    [
        edit(
            CHRONIC,
            "  bool point_of_care = 8;\n",
            "  bool point_of_care = 8;\n  // Firmware of the device, if known.\n"
            "  string firmware = 9;\n",
        ),
        edit(CHRONIC, DEVICE_ID, "  string device_id = 7 [deprecated = true];"),
        edit(
            CHRONIC,
            "  MONITORING_PROGRAMME_ANTICOAGULATION = 4;\n",
            "  MONITORING_PROGRAMME_ANTICOAGULATION = 4;\n"
            "  // MONITORING_PROGRAMME_RENAL: chronic kidney disease.\n"
            "  MONITORING_PROGRAMME_RENAL = 5;\n",
        ),
        add_v2_package,
    ],
    ids=["field-added", "field-deprecated", "enum-value-added", "v2-package-added"],
)
def test_a_compatible_change_passes(change, tmp_path):
    done = breaking(change, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_make_lint_runs_buf_breaking_against_main():
    makefile = (ROOT / "Makefile").read_text()
    lint = re.search(r"^lint:.*?(?=^\S)", makefile, flags=re.MULTILINE | re.DOTALL)
    assert lint and "scripts/buf-breaking.sh" in lint.group(0)
    assert "--against '.git#branch=main'" in (ROOT / "scripts/buf-breaking.sh").read_text()
