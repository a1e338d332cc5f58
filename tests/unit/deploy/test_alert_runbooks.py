"""Every operator alert has a promtool test and a runbook section an operator can find."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "operations_rules.yml"
TESTS = ROOT / "deploy" / "prometheus" / "operations_rules_test.yml"
RUNBOOK = ROOT / "docs" / "operations.md"


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_a_runbook_section_its_annotation_points_to():
    headings = set(re.findall(r"^### (\w+)$", RUNBOOK.read_text(), re.M))
    for rule in alerts():
        assert rule["alert"] in headings, f"no '### {rule['alert']}' in docs/operations.md"
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"


def test_every_alert_has_a_promtool_test_that_expects_it_to_fire():
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in alerts()} <= firing
