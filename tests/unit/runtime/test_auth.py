import os

import pytest

from emeuse.runtime.auth import (
    AuthSetupError,
    Caller,
    add_caller,
    hash_token,
    read_caller_book,
    read_callers,
    read_token,
    remove_caller,
)


def test_an_added_caller_is_known_by_its_token_hash_only(tmp_path):
    add_caller("operator", tmp_path / "callers", tmp_path / "operator.token")
    token = read_token(tmp_path / "operator.token")
    assert read_callers(tmp_path / "callers") == {hash_token(token): "operator"}
    assert token not in (tmp_path / "callers").read_text()
    assert os.stat(tmp_path / "operator.token").st_mode & 0o777 == 0o600


def test_adding_a_caller_again_replaces_its_token(tmp_path):
    add_caller("chronic", tmp_path / "callers", tmp_path / "chronic.token")
    first = read_token(tmp_path / "chronic.token")
    add_caller("access", tmp_path / "callers", tmp_path / "access.token")
    add_caller("chronic", tmp_path / "callers", tmp_path / "chronic.token")
    callers = read_callers(tmp_path / "callers")
    assert hash_token(first) not in callers
    assert sorted(callers.values()) == ["access", "chronic"]


def test_a_malformed_callers_file_names_its_line(tmp_path):
    (tmp_path / "callers").write_text("# comment\nchronic not-a-hash\n")
    with pytest.raises(AuthSetupError, match="callers:2"):
        read_callers(tmp_path / "callers")


def test_a_missing_token_file_names_its_path(tmp_path):
    with pytest.raises(AuthSetupError, match=r"chronic\.token"):
        read_token(tmp_path / "chronic.token")


def test_a_caller_id_must_be_an_id(tmp_path):
    with pytest.raises(AuthSetupError, match="caller id"):
        add_caller("Dr Martin", tmp_path / "callers", tmp_path / "x.token")


def test_a_caller_keeps_its_role_and_scope_in_the_callers_file(tmp_path):
    callers = tmp_path / "callers"
    add_caller("gp-0042", callers, tmp_path / "gp.token", "care-team", member="gp-0042")
    add_caller("coord-55", callers, tmp_path / "c.token", "coordinator", territory="55")
    book = read_caller_book(callers)
    assert book[hash_token(read_token(tmp_path / "gp.token"))] == Caller(
        "gp-0042", "care-team", member="gp-0042"
    )
    assert book[hash_token(read_token(tmp_path / "c.token"))].territory == "55"


def test_services_and_the_operator_get_their_role_without_naming_it(tmp_path):
    add_caller("chronic", tmp_path / "callers", tmp_path / "chronic.token")
    (tmp_path / "callers").write_text(
        (tmp_path / "callers").read_text() + "operator " + "b" * 64 + "\nglucomind " + "c" * 64
    )
    roles = {c.caller_id: c.role for c in read_caller_book(tmp_path / "callers").values()}
    assert roles == {"chronic": "service", "operator": "operator", "glucomind": ""}


def test_another_caller_needs_a_role(tmp_path):
    with pytest.raises(AuthSetupError, match="needs a role"):
        add_caller("glucomind", tmp_path / "callers", tmp_path / "g.token")
    with pytest.raises(AuthSetupError, match="needs member="):
        add_caller("gp-1", tmp_path / "callers", tmp_path / "g.token", "care-team")
    with pytest.raises(AuthSetupError, match="takes no territory"):
        add_caller("gp-1", tmp_path / "callers", tmp_path / "g.token", "evaluator", territory="55")


def test_a_line_with_an_unknown_role_or_scope_names_its_line(tmp_path):
    (tmp_path / "callers").write_text("x " + "a" * 64 + " doctor\n")
    with pytest.raises(AuthSetupError, match=r"callers:1: role 'doctor'"):
        read_caller_book(tmp_path / "callers")
    (tmp_path / "callers").write_text("x " + "a" * 64 + " coordinator ward=3\n")
    with pytest.raises(AuthSetupError, match=r"callers:1: scope 'ward=3'"):
        read_caller_book(tmp_path / "callers")


def test_a_removed_caller_is_no_longer_in_the_file(tmp_path):
    add_caller("chronic", tmp_path / "callers", tmp_path / "chronic.token")
    add_caller("operator", tmp_path / "callers", tmp_path / "operator.token")
    assert remove_caller("chronic", tmp_path / "callers")
    assert set(read_callers(tmp_path / "callers").values()) == {"operator"}
    assert not remove_caller("chronic", tmp_path / "callers")
