"""Lean entry points: what a command imports, seen from a fresh interpreter, and how it leaves."""

from __future__ import annotations

import os
import subprocess
import sys

from .sandbox import ROOT

HEAVY = ("sh", "pyroute2", "rich", "asyncio", "ctypes.util")


def imported(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The top-level and dotted names of the modules a snippet left loaded, printed before leaving."""
    probe = (code + "\nimport sys, os\nsys.stdout.flush()\nos.write(99, ' '.join(sorted(sys.modules)).encode())\n")
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        proc = subprocess.run([sys.executable, "-c", f"import os; os.dup2({w}, 99)\n" + probe],
                              capture_output=True, text=True, pass_fds=(w,), timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
        os.close(w)
        w = -1
        with os.fdopen(r) as names:
            r = -1
            loaded = set(names.read().split())
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)
    assert loaded, proc.stderr
    return loaded


def test_netsetter_help_imports_nothing_heavy():
    loaded = imported("import sys\nfrom netsetter.cli import main\nmain(['--help'])")
    assert "typer" in loaded  # the probe saw the command's parser run
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_runner_help_imports_nothing_heavy():
    loaded = imported("from runner.cli import main\nmain(['start', '--help'])")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_cni_version_imports_nothing_heavy():
    loaded = imported("import os\nos.environ['CNI_COMMAND'] = 'VERSION'\nfrom netsetter_cni.main import main\nmain()")
    assert "netsetter_cni.main" in loaded
    assert not loaded & {*HEAVY, "typer"}, loaded & {*HEAVY, "typer"}


def test_fast_path_on_rtnl_imports_no_other_backend():
    loaded = imported("import netsetter.fast, backends\nbackends.open_backend('rtnl').close()")
    assert "backends.rtnl" in loaded
    assert not loaded & {*HEAVY, "typer", "backends.iproute", "backends.netlink"}


# What runner start's network costs at import when it is not what the path uses: dataclasses
# (with inspect, ast, tokenize: ~10 ms), typing (~3 ms), threading and socket.py (~1-3 ms).
NOT_ON_START = ("dataclasses", "inspect", "typing", "threading", "socket")


def test_runner_start_network_path_imports_no_dataclasses_typing_threading_socket():
    # runner start's own imports, its spec with a network (before the fork), then what
    # runner.network.prepare imports and opens while the child unshares (after it).
    loaded = imported("from runner import launch, parent, network\n"
                      "from runner.spec import build\n"
                      "params = launch.parse_start(['start', '--', '/bin/true'])\n"
                      "assert params is not None\n"
                      "params.pop('debug')\n"
                      "net = {k: params.pop(k) for k in ('bridge', 'bridge_mac', 'bridge_addr', 'veth_host',\n"
                      "                                  'veth_container', 'container_addr', 'gateway')}\n"
                      "spec = build(net_values=net, **params)\n"
                      "assert spec.net is not None and spec.net.container_addr.ip.packed\n"
                      "import ctypes, netsetter.fast\n"
                      "from netsetter.host import allocate, records, ipam\n"
                      "netsetter.fast.open_fast_backend('rtnl').close()\n"
                      "assert spec.net.resolved(veth_host='veth_h1').as_dict()['veth_host'] == 'veth_h1'\n")
    assert {"netsetter.fast", "netsetter.host.records", "backends.rtnl"} <= loaded
    assert not loaded & {*HEAVY, *NOT_ON_START, "typer"}, loaded & {*HEAVY, *NOT_ON_START, "typer"}


def test_ctrl_c_before_the_handlers_exist_is_still_one_line_and_130():
    # Until nskit.boundary has installed its handlers, Python's own turns Ctrl-C into a
    # traceback: the entry module imports nothing before it, and catches a KeyboardInterrupt
    # raised while it loads. Here the interrupt comes as the import of nskit begins.
    for entry in ("netsetter", "runner"):
        code = ("import runpy, sys\n"
                "before = set(sys.modules)\n"
                "class Interrupt:\n"
                "    def find_spec(self, name, path=None, target=None):\n"
                "        if name == 'nskit':\n"
                "            print(' '.join(sorted(set(sys.modules) - before)), flush=True)\n"
                "            raise KeyboardInterrupt\n"
                "sys.meta_path.insert(0, Interrupt())\n"
                f"runpy.run_module('{entry}', run_name='__main__', alter_sys=True)\n")
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert (run.returncode, run.stderr) == (130, f"{entry}: interrupted\n"), run.stderr
        assert entry in run.stdout.split(), run.stdout
        assert set(run.stdout.split()) <= {entry, "__future__"}, run.stdout


def test_a_signal_the_interpreter_wraps_on_its_way_out_is_still_one_line_and_130():
    # Python 3.11 turns an exception raised in __set_name__ into a RuntimeError: a Ctrl-C
    # landing there (platform's uname_result, while typer loads) came out as a traceback.
    code = ("import os, signal, time\n"
            "from nskit.boundary import start\n"
            "class Lands:\n"
            "    def __set_name__(self, owner, name):\n"
            "        os.kill(os.getpid(), signal.SIGINT)\n"
            "        time.sleep(5)\n"
            "def main():\n"
            "    class Loading:\n"
            "        here = Lands()\n"
            "start('prog', lambda: main)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (run.returncode, run.stderr) == (130, "prog: interrupted\n"), run.stderr


def test_commands_leave_with_their_status_and_their_output_flushed():
    # os._exit after main(): a status kept and every line printed, even to a pipe.
    ok = subprocess.run([sys.executable, "-m", "netsetter", "--help"], capture_output=True, text=True,
                        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert ok.returncode == 0 and "Usage" in ok.stdout and ok.stdout.endswith("\n")
    bad = subprocess.run([sys.executable, "-m", "runner", "start", "--no-such-option"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert bad.returncode == 2 and "no-such-option" in bad.stderr


def test_cni_add_and_del_paths_import_no_typing_dataclasses_or_socket_py():
    # each costs a CNI call ~5-10 ms (dataclasses pulls in inspect, ast, tokenize): their
    # classes are nskit.record.Record subclasses, their typing names only under TYPE_CHECKING
    loaded = imported("import netsetter_cni.main, netsetter_cni.commands, netsetter_cni.add, netsetter_cni.delete\n"
                      "import backends\nbackends.open_backend('rtnl').close()")
    assert {"netsetter_cni.add", "netsetter_cni.delete", "backends.rtnl.backend", "netsetter.faults"} <= loaded
    slow = {"typing", "dataclasses", "inspect", "socket", "selectors"}  # socket.py: _socket does
    assert not loaded & slow, loaded & slow
