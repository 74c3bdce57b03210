"""The `runner` command. The container runner is not built yet."""

import sys


def main() -> int:
    print("runner: not built yet: `runner start` arrives with the runner issue; "
          "use `netsetter PID` to give a process a network", file=sys.stderr)
    return 1
