#!/usr/bin/env bash
# Set up ns-proc on a fresh Debian 12 machine (as root) and run it.
#
#   ./dev.sh run  [OPTIONS] [-- CMD]   install, then the main job: a container (runner start) on the
#                                      built-in busybox root, with netsetter.sh's network
#   ./dev.sh run  PID [OPTIONS]        install, then give the netns of PID the network (netsetter)
#   ./dev.sh test [PYTEST ARGS]        install with the test extra, then run the test suite
#   ./dev.sh bench [OPTIONS]           install, then measure every path against its peers (python -m bench)
#
# It installs what is missing (Debian packages, a virtualenv in .venv with the
# project in it) and nothing else; running it again only checks.
set -euo pipefail
cd "$(dirname "$0")"

install() {
    local missing=()
    command -v ip >/dev/null || missing+=(iproute2)
    command -v ping >/dev/null || missing+=(iputils-ping)
    command -v iptables >/dev/null || missing+=(iptables)      # --masquerade and --publish
    command -v podman >/dev/null || missing+=(podman)          # the CNI plugin's end-to-end test
    command -v crun >/dev/null || missing+=(crun)
    [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)  # the reference CNI plugin
    # runner's built-in root: a static busybox (a dynamic one would need the host's libc inside)
    dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    # The benchmark's peer, Mininet, with its Linux-bridge switch. Without recommends:
    # they would pull in Open vSwitch, whose daemon starts on install.
    local bare=()
    command -v mnexec >/dev/null || bare+=(mininet)
    command -v brctl >/dev/null || bare+=(bridge-utils)
    if ((${#missing[@]} + ${#bare[@]})); then
        apt-get update -qq
        if ((${#missing[@]})); then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        fi
        if ((${#bare[@]})); then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${bare[@]}" >/dev/null
        fi
    fi
    [ -x .venv/bin/python ] || python3 -m venv .venv
    # compat: a plain path entry for the editable install, not an import hook that
    # costs every command ~30 ms at start-up
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" \
        --config-settings editable_mode=compat
}

cmd=${1:-}
shift || true
case "$cmd" in
    run)
        install
        if [[ "${1:-}" =~ ^[0-9]+$ ]]; then exec .venv/bin/netsetter "$@"; fi
        exec .venv/bin/runner start "$@" ;;
    test)
        install
        exec .venv/bin/python -m pytest "$@" ;;
    bench)
        install
        exec .venv/bin/python -m bench "$@" ;;
    *)
        echo "usage: $0 run [OPTIONS] [-- CMD] | $0 run PID [OPTIONS] | $0 test [PYTEST ARGS] | $0 bench [OPTIONS]" >&2
        exit 2 ;;
esac
