"""docs/settings.md lists every variable the services read, gateway included, as generated."""

import re

from emeuse.registry import SERVICES
from emeuse.settings_doc import OUTPUT, read_by, render, undeclared

PAGE = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""


def documented(variable: str, service: str) -> bool:
    templated = variable.replace(f"EMEUSE_{service.upper()}_", "EMEUSE_<SERVICE>_", 1)
    return f"`{variable}`" in PAGE or f"`{templated}`" in PAGE


def test_the_settings_page_lists_every_variable_each_service_reads():
    for service in SERVICES:
        read = read_by(service)
        assert "EMEUSE_KAFKA_BOOTSTRAP" in read
        missing = [name for name in read if not documented(name, service)]
        assert not missing, f"{service} reads {missing}, not in docs/settings.md"


def test_the_settings_page_gives_the_gateway_its_ports_and_names_it():
    assert "`GATEWAY`" in PAGE
    port_rows = [line for line in PAGE.splitlines() if "_PORT`" in line and "<SERVICE>" in line]
    assert any("`50055` gateway" in row for row in port_rows)
    assert any("`9105` gateway" in row for row in port_rows)


def test_the_topics_wait_is_documented_with_its_default():
    row = next(line for line in PAGE.splitlines() if "`EMEUSE_TOPICS_WAIT_SECONDS`" in line)
    assert re.search(r"\| `300` \|", row)


def test_no_variable_is_read_without_a_declaration_and_the_page_is_current():
    assert undeclared() == []
    assert render() == PAGE, "docs/settings.md is stale: run make docs"
