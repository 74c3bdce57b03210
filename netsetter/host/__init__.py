"""The host's state, shared by every path (netsetter up and down, runner, the CNI plugin).

    state_dir.py  /run/ns-proc/net-<inode>/: a folder per host network namespace
    lock.py       one run at a time per host netns (flock)
    ipam.py       address leases on a bridge's subnet, one symlink each
    allocate.py   a run's "auto" names and address, chosen under the lock
    records.py    what netsetter made for each container, for teardown
    nat.py        masquerade and published ports (iptables), by owner
    teardown.py   netsetter down: remove what a run made
    topology.py   netsetter ls: bridges, ports, containers, leases, NAT
"""
