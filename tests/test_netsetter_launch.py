"""netsetter.launch parses a plain `netsetter PID` and `netsetter down PID` itself (no typer
import): it must agree with typer.

Each argv is parsed twice, by launch.parse and by the typer command netsetter.cli defines
(click's make_context: parsing only, nothing runs); the parameters must be the same. What
launch is not sure of it must hand to typer (None), never guess.
"""

from __future__ import annotations

import sys

import pytest
import typer

from netsetter import cli, launch

AGREE = [
    ["123"],
    ["up", "123"],
    ["123", "--backend", "rtnl"],
    ["--backend=netlink", "--json", "123"],
    ["--bridge", "b0", "--bridge-mac", "12:34:56:00:00:01", "--bridge-addr", "10.0.0.1/24", "--veth-host",
     "auto", "--veth-container", "vc", "--container-addr=auto", "--gateway", "10.0.0.1", "7"],
    ["up", "7", "--masquerade", "-p", "8080:80", "--publish", "8443:443", "--publish=1:1", "--debug"],
    ["7", "--dry-run", "--bridge", "a", "--bridge", "b"],
    ["", "--json"],
    ["down", "123"],
    ["down", "veth_h5", "--bridge", "--json"],
    ["down", "--veth-host", "vh", "--veth-container=vc", "--backend", "ip", "--debug", "5"],
]

TO_TYPER = [
    [], ["--help"], ["-h"], ["up"], ["up", "--help"], ["123", "--help"], ["down"], ["down", "--help"],
    ["ls"], ["gc", "--json"], ["compare", "--backend", "ip"], ["-1"], ["up", "-5"], ["1", "2"],
    ["down", "1", "2"], ["1", "--bogus"], ["1", "--bridge"], ["1", "--bridge", "--json"], ["1", "--json=1"],
    ["1", "-p8080:80"], ["1", "-p=1:1"], ["--", "1"], ["1", "--"], ["down", "--bridge=1", "5"],
    ["down", "5", "--masquerade"], ["1", "-"],
]


def typer_params(args: list[str]) -> tuple[str, dict[str, object]]:
    command, words = (args[0], args[1:]) if args[0] in launch.COMMANDS else ("up", args)
    group = typer.main.get_command(cli.app)
    params = dict(group.commands[command].make_context(command, list(words)).params)  # type: ignore[attr-defined]
    for key, value in params.items():  # click's tuples, as typer hands them to the command
        if isinstance(value, tuple):
            params[key] = list(value) or None
    return command, params


@pytest.mark.parametrize("args", AGREE, ids=" ".join)
def test_agrees_with_typer(args: list[str]) -> None:
    assert launch.parse(args) == typer_params(args)


@pytest.mark.parametrize("args", TO_TYPER, ids=lambda a: " ".join(a) or "(none)")
def test_unsure_goes_to_typer(args: list[str]) -> None:
    assert launch.parse(args) is None


def test_the_tables_name_every_option_of_up_and_down() -> None:
    """An option added to the typer CLI without its line here would send every use of it to typer:
    correct, but slow, and unseen."""
    group = typer.main.get_command(cli.app)
    for command, table in (("up", launch.UP), ("down", launch.DOWN)):
        options = {o for p in group.commands[command].params for o in p.opts if o.startswith("-")}  # type: ignore[attr-defined]
        assert options - {"--help"} == set(table.values) | set(table.flags), command


def test_up_and_down_import_no_typer(sandbox) -> None:
    """`netsetter PID --dry-run` and a `netsetter down` refused by its check run whole without
    typer, click or rich imported (in a sandbox: down's refusal comes before any change)."""
    code = ("import sys; from netsetter import launch\n"
            "a = launch.main(['4242', '--dry-run'])\n"
            "b = launch.main(['down', '4242', '--veth-host', 'no such name', '--backend', 'rtnl'])\n"
            "print(a, b, sorted(m for m in ('typer', 'click', 'rich') if m in sys.modules), file=sys.stderr)")
    out = sandbox().run(sys.executable, "-c", code)
    assert out.stderr.rstrip().split("\n")[-1] == "0 2 []", out.stderr
    assert "ip link add veth_host type veth peer name veth_conta" in out.stdout
    assert "netsetter: error: invalid host veth name" in out.stderr


@pytest.mark.parametrize("args", [
    ["4242", "--bridge", "br\udcff", "--dry-run"],
    ["4242", "--veth-host", "\udcff", "--dry-run"],
    ["4242", "--veth-container", "vc\udcff", "--dry-run"],
    ["down", "4242", "--veth-host", "\udcff"],
], ids=["bridge", "veth-host", "veth-container", "down veth-host"])
def test_a_link_name_that_is_not_utf8_is_refused_in_one_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A byte of argv that is not UTF-8 (b"\\xff" becomes the surrogate "\\udcff") was a
    UnicodeEncodeError traceback, exit 1; it is bad input, refused before any change."""
    assert launch.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("netsetter: error: invalid ") and "is not UTF-8" in err, err
    assert len(err.strip().splitlines()) == 1, err


class ClosedPipe:
    """sys.stdout as `netsetter PID | head -0` leaves it, unbuffered (PYTHONUNBUFFERED=1)."""

    def write(self, text: str) -> int:
        import errno

        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    def flush(self) -> None:
        pass


def test_a_closed_stdout_ends_as_typer_ends_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """typer's main turns EPIPE into exit 1 without a word; the launcher let BrokenPipeError out,
    and the boundary printed its traceback."""
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    with pytest.raises(SystemExit) as typer_end:
        cli.main(["4242", "--dry-run"])
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert launch.main(["4242", "--dry-run"]) == typer_end.value.code == 1
    assert capsys.readouterr().err == ""
