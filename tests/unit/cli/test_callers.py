"""`emeuse callers`: add with a role, list, remove."""

from emeuse.cli.main import main


def callers(tmp_path, *args: str) -> int:
    return main(["callers", *args, "--callers-file", str(tmp_path / "grpc-callers")])


def test_callers_are_added_with_their_role_listed_and_removed(tmp_path, capsys):
    assert callers(tmp_path, "add", "gp-0042", "--role", "care-team", "--member", "gp-0042") == 0
    assert callers(tmp_path, "add", "chronic") == 0
    capsys.readouterr()
    assert callers(tmp_path, "list") == 0
    assert capsys.readouterr().out.splitlines() == [
        "chronic service",
        "gp-0042 care-team member=gp-0042",
    ]
    assert callers(tmp_path, "remove", "gp-0042") == 0
    assert "its token no longer works" in capsys.readouterr().out
    assert callers(tmp_path, "remove", "gp-0042") == 1


def test_a_caller_that_is_not_a_service_needs_a_role(tmp_path, capsys):
    assert callers(tmp_path, "add", "glucomind") == 1
    assert "needs a role: --role operator|service|care-team" in capsys.readouterr().err
    assert callers(tmp_path, "add", "nurse-1", "--role", "care-team") == 1
    assert "needs member=" in capsys.readouterr().err
