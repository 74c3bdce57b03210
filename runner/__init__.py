"""runner: the article's ns-proc container, in Python.

    runner (parent.py)  on the host: forks, writes the id maps, sets up the network
      child (child.py)  unshares user, mount, uts, ipc, pid, net; forks init
        init (init.py)  PID 1: hostname, mounts.py, waits for the network, runs the command
          command       PID 2, in a clean environment

Parent, child and init talk over one socketpair (channel.py); every wait has
the --timeout deadline (deadline.py); signals are passed down the line
(signals.py). Root filesystems: rootfs.py, busybox.py, tarball.py.
"""
