"""The command line is checked before any login: a bad tool name or argument is one line and
exit 2, and neither the network nor a browser is touched. With --json every outcome, failures
included, is one JSON object on stdout."""

import json
import webbrowser

import pytest

from mcp_agent import cli
from tests.support.net import free_port


@pytest.fixture(autouse=True)
def no_login(monkeypatch):
    """Fails the test if the agent goes as far as connecting or opening a browser."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the agent started a login for a command line it should have refused")

    monkeypatch.setattr(cli, "connect", forbidden)
    monkeypatch.setattr(webbrowser, "open", forbidden)
    monkeypatch.setenv("AGENT_CALLBACK_PORT", "8976")


BAD = {
    "a tool name with a space": (["call", "get time"], "is not a tool name"),
    "a tool name with a slash": (["call", "../whoami"], "is not a tool name"),
    "an over-long tool name": (["call", "x" * 129], "is not a tool name"),
    "a broken JSON object": (["call", "echo", 'payload={"a": 1'], "argument 'payload' is not valid JSON"),
    "a broken JSON array": (["call", "echo", "items=[1, 2"], "argument 'items' is not valid JSON"),
    "an unterminated JSON string": (["call", "echo", 'text="abc'], "argument 'text' is not valid JSON"),
    "no key=value": (["call", "echo", "hello"], "argument 'hello' is not key=value"),
    "an empty key": (["call", "echo", "=1"], "argument '=1' is not key=value"),
    "a key given twice": (["call", "echo", "a=1", "a=2"], "argument 'a' is given twice"),
    "an unknown command": (["logon"], "invalid choice: 'logon'"),
    "an unknown option": (["--jsn", "tools"], "unrecognized arguments: --jsn"),
    "a missing tool name": (["call"], "the following arguments are required: name"),
}


@pytest.mark.parametrize(("argv", "message"), BAD.values(), ids=BAD.keys())
def test_a_bad_command_line_is_one_line_and_exit_2_before_any_login(capsys, argv, message):
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("mcp-agent: ")
    assert message in err


@pytest.mark.parametrize(("argv", "message"), BAD.values(), ids=BAD.keys())
def test_with_json_a_bad_command_line_is_a_json_error_on_stdout(capsys, argv, message):
    assert cli.main(["--json", *argv]) == 2
    out, err = capsys.readouterr()
    assert err == ""
    error = json.loads(out)
    assert list(error) == ["error"]
    assert error["error"]["kind"] == "usage"
    assert message in error["error"]["message"]


def test_arguments_that_parse_as_json_are_json_and_the_rest_are_text():
    assert cli.parse_arguments(["n=3", "flag=true", 'o={"a": [1]}', "text=hello world", "s=a=b", "neg=-x"]) == {
        "n": 3, "flag": True, "o": {"a": [1]}, "text": "hello world", "s": "a=b", "neg": "-x"}


def test_a_configuration_error_with_json_is_a_json_error(capsys, monkeypatch):
    monkeypatch.delenv("AGENT_CALLBACK_PORT")
    assert cli.main(["--json", "tools"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["kind"] == "configuration"
    assert "AGENT_CALLBACK_PORT" in error["message"]


def test_a_failure_during_the_run_with_json_is_a_json_error(capsys, monkeypatch, tmp_path):
    """Nothing listens on the port: the connection is refused. (The real `connect`.)"""
    monkeypatch.undo()
    monkeypatch.setenv("AGENT_CALLBACK_PORT", "8976")
    monkeypatch.setenv("AGENT_STATE_DIR", str(tmp_path))
    assert cli.main(["--json", "--no-browser", "--server", f"http://127.0.0.1:{free_port()}/mcp", "tools"]) == 1
    out, _ = capsys.readouterr()
    error = json.loads(out)["error"]
    assert error["kind"] == "connection"
    assert error["message"].startswith("cannot connect")


def test_json_after_call_is_a_tool_argument_not_the_option(capsys):
    """`call NAME --json` would be parsed as an option of `call` and refused; the refusal is then
    not in JSON, since --json was not given as the agent's own option."""
    assert cli.main(["call", "echo", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("mcp-agent: ")
