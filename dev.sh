#!/usr/bin/env bash
# Set up ns-proc on a fresh Debian 12 machine (as root) and run it.
#
#   ./dev.sh run  [PID] [OPTIONS]   install, then the main job: netsetter on the built-in defaults
#   ./dev.sh test [PYTEST ARGS]     install with the test extra, then run the test suite
#
# It installs what is missing (Debian packages, a virtualenv in .venv with the
# project in it) and nothing else; running it again only checks.
set -euo pipefail
cd "$(dirname "$0")"

install() {
    local missing=()
    command -v ip >/dev/null || missing+=(iproute2)
    command -v ping >/dev/null || missing+=(iputils-ping)
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    if ((${#missing[@]})); then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
}

demo() {
    # No PID given: start a process in a network namespace of its own, give it the
    # network, show what it sees, then stop it (its veth pair goes with its netns;
    # the bridge stays for other containers, as with the script).
    coproc CONTAINER { exec unshare --net -- sh -c 'echo $$; exec sleep infinity'; }
    read -r pid <&"${CONTAINER[0]}"  # printed once its netns exists
    trap "kill $pid 2>/dev/null; wait 2>/dev/null || true" EXIT
    .venv/bin/netsetter "$pid" "$@"
    echo "--- inside pid $pid:"
    nsenter --net=/proc/$pid/ns/net ip -br addr
    nsenter --net=/proc/$pid/ns/net ip route
    nsenter --net=/proc/$pid/ns/net ping -c 1 -W 2 10.10.10.100 | head -2
}

cmd=${1:-}
shift || true
case "$cmd" in
    run)
        install
        if [[ "${1:-}" =~ ^[0-9]+$ ]]; then exec .venv/bin/netsetter "$@"; fi
        demo "$@" ;;
    test)
        install
        exec .venv/bin/python -m pytest "$@" ;;
    *)
        echo "usage: $0 run [PID] [OPTIONS] | $0 test [PYTEST ARGS]" >&2
        exit 2 ;;
esac
