"""The `runner` command line: help that teaches, usage errors as one line and status 2.

Usage errors are found before anything is started, so these run in-process.
"""

from __future__ import annotations

import pytest

from runner.cli import main


def test_help_names_what_it_does(capsys):
    assert main(["start", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("runner start [OPTIONS] [-- CMD ARGS]", "busybox-static", "-[namespace-process]-#", "--no-net",
                 "sudo -n netsetter", "--timeout", "--rootfs", "--env", "10.10.10.100", "125", "127"):
        assert text in " ".join(out.split()), text


def test_no_arguments_shows_help(capsys):
    assert main([]) == 2
    assert "start" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--env", "FOO"], "invalid --env 'FOO': must have the form KEY=VALUE"),
    (["--timeout", "0"], "invalid --timeout '0': must be a finite number of seconds, more than 0"),
    (["--timeout", "-1"], "invalid --timeout '-1': must be a finite number of seconds"),
    (["--timeout", "inf"], "invalid --timeout 'inf': must be a finite number of seconds"),
    (["--timeout", "nan"], "invalid --timeout 'nan': must be a finite number of seconds"),
    (["--timeout", "1e300"], "invalid --timeout '1e+300': must be a finite number of seconds"),
    (["--rootfs", ""], "invalid --rootfs '': is empty"),
    (["--preserve-fds", "-1"], "invalid --preserve-fds '-1': must be from 0 to 1024"),
    (["--preserve-fds", "900"], "is not open"),
    (["--keep-layer", ""], "invalid --keep-layer"),
    (["--hostname", "x" * 65], "is longer than the kernel's 64 bytes"),
    (["--hostname", "box\udcff"], "invalid hostname 'box\\udcff': is not UTF-8 text"),  # b"\xff" in argv
    (["--container-addr", "10.10.20.1/24"], "is outside the bridge's subnet 10.10.10.0/24"),
    (["--backend", "carrier-pigeon"], "choose one of: ip, netlink"),
    (["--rootfs", "/nonexistent"], "invalid --rootfs '/nonexistent': does not exist"),
    (["--no-such-option"], "No such option: --no-such-option"),
])
def test_usage_error_is_one_line(capsys, args, message):
    assert main(["start", *args, "--", "/bin/true"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("runner: error: ") and err.count("\n") == 1
    assert message in err
