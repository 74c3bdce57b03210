"""netsetter compare: the original script and the port, side by side, state by state.

    compare(script, ["ip", "netlink"], config)
      -> the script's text is scanned: a line that would switch the guard off
         stops everything before it runs (guard.scan)
      -> a jail for the script: bash runs it one command at a time, a snapshot
         after each; a command the guard refuses stops it there (scriptrun)
      -> a jail per backend: the port's steps, a snapshot after each (portrun)
      -> commands and steps lined up, every row judged (align)
      -> every jail killed and gone, also on failure, Ctrl-C or SIGTERM; when
         compare itself is killed, the kernel kills the jails (jail.py)

The verdict is "same", "different", or "refused" (the guard stopped the
script: the port is not run, there is nothing to compare it with).

The package: comparison.py (compare, Comparison), scriptrun.py and portrun.py
(the two sides), jail.py (where each side runs), snapshot.py (the state of a
netns as `ip -j` shows it), sandbox.py (throwaway host and container netns for
tests and benchmarks), align.py, guard.py, lockdown.py, report.py.
This __init__ imports nothing, so that snapshot or sandbox can be imported alone.
"""
