"""Whatever the option values: no traceback, and no change unless the run succeeds."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import NAMES

from .sandbox import Sandbox
from .test_safety import state

OPTIONS = ["--bridge", "--bridge-mac", "--bridge-addr", "--veth-host", "--veth-container",
           "--container-addr", "--gateway"]

argv_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
plausible = st.sampled_from(["brg-demo", "veth_x", "", "a" * 15, "a" * 16, "a/b", "a b", "a:b", "10.10.10.101/24",
                             "10.10.10.102/24", "10.10.10.100", "10.10.10.0/24", "10.10.10.255/24", "fd00::1/64",
                             "12:34:56:a1:b2:c3", "01:00:5e:00:00:01", "00:00:00:00:00:00", "-1", "--json"])
values = st.dictionaries(st.sampled_from(OPTIONS), st.one_of(argv_text, plausible), max_size=4)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=values, backend=st.sampled_from(NAMES))
def test_any_option_values(values, backend):
    box = Sandbox(tag="prop")
    try:
        c = box.container()
        before = state(box, c)
        args = [a for k, v in values.items() for a in (k, v)]
        proc = box.netsetter(str(c.pid), "--backend", backend, *args)
        assert "Traceback" not in proc.stderr + proc.stdout
        assert proc.returncode in (0, 1, 2), proc.stderr
        if proc.returncode:
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            assert proc.stderr.startswith("netsetter: error: ")
            assert state(box, c) == before
        else:
            assert c.snapshot().addrs  # the container got its address
    finally:
        box.close()
