import os

import pytest

from emeuse.runtime.auth import AuthSetupError, add_caller, hash_token, read_callers, read_token


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
