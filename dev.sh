#!/usr/bin/env bash
# ns-proc on a Debian 12 machine, as root: install what a command needs, then run it.
# `./dev.sh help` says what each command does and installs.
set -euo pipefail
[[ $0 == */* ]] && cd "${0%/*}"

usage() {
    cat <<'EOF'
usage: ./dev.sh COMMAND [ARGS]          (as root, on Debian 12)

  run [OPTIONS] [-- CMD]         start a container (runner start, default CMD: a shell) with
                                 netsetter.sh's network, in a throwaway network namespace that
                                 plays the host: dev.sh makes it, and removes it when the
                                 container ends, also on Ctrl-C, SIGTERM or a failure. The
                                 namespace dev.sh runs in is not touched.
  run --host [OPTIONS] [-- CMD]  the same with the namespace dev.sh runs in as the host: the
                                 bridge brg-demo, the host end of the veth pair and, with
                                 --masquerade or -p, the firewall rules are made THERE (as
                                 netsetter.sh does) and removed when the container ends.
  run PID [OPTIONS]              netsetter PID: give the netns of process PID the network of
                                 netsetter.sh. This configures the namespace dev.sh runs in
                                 (the bridge and the host end stay); no throwaway namespace.
  test [PYTEST ARGS]             the test suite: pytest as root on the real kernel, every test
                                 in sandboxes of its own; side by side (one worker more than
                                 cores), then the tests marked serial alone. -n 0 or
                                 -p no:xdist: one serial pass
  bench [OPTIONS]                the benchmark (python -m bench), in sandboxes of its own
  help                           this text

OPTIONS are runner start's (./dev.sh run --help) or netsetter's (./dev.sh run PID --help).

Each command first installs what it needs and is missing, and nothing else: Debian packages
with apt-get, then the project into a virtualenv, .venv, with pip, byte-compiled.
  run    iproute2 iputils-ping busybox-static catatonit python3-venv (and iptables for --masquerade/-p)
  bench  run's, and mininet bridge-utils containernetworking-plugins (without recommends)
  test   bench's, and iptables podman crun, and the test extra (pytest, hypothesis)
Once that is done (.venv/.installed), a command calls no package manager until pyproject.toml
changes. In a network namespace with no route out, a missing package is an error that says so.
EOF
}

# Debian packages per command, and the pip extra. The benchmark's peers go in without
# recommends: Mininet's would pull in Open vSwitch, whose daemon starts on install.
RUN_DEBS=(iproute2 iputils-ping busybox-static catatonit)
BENCH_DEBS=(mininet bridge-utils containernetworking-plugins)
TEST_DEBS=(iptables podman crun containernetworking-plugins)
STAMP=.venv/.installed
# Every network wait of a package manager is bounded: a mirror that does not answer
# fails the install in about a minute instead of hanging it.
APT_OPTS=(-qq -o Acquire::Retries=1 -o Acquire::http::Timeout=20 -o Acquire::https::Timeout=20
          -o DPkg::Lock::Timeout=120)

die() {
    echo "dev.sh: error: $*" >&2
    exit 1
}

have_deb() {  # installed, as dpkg records it (no dpkg process)
    local list
    for list in "/var/lib/dpkg/info/$1.list" "/var/lib/dpkg/info/$1":*.list; do
        [[ -e $list ]] && return 0
    done
    return 1
}

has_route_out() {  # a default route in this network namespace, IPv4 or IPv6
    local _ dest plen dev
    while read -r _ dest _; do
        [[ $dest == 00000000 ]] && return 0
    done </proc/net/route
    [[ -r /proc/net/ipv6_route ]] || return 1
    while read -r dest plen _ _ _ _ _ _ _ dev; do
        [[ $dest == 00000000000000000000000000000000 && $plen == 00 && $dev != lo ]] && return 0
    done </proc/net/ipv6_route
    return 1
}

offline_hint() {  # ACTION: what installs it in the machine's own namespace
    echo "this network namespace has no route to the package mirrors; run ./dev.sh from the machine's own" \
         "network namespace instead (./dev.sh run makes a throwaway one for the container itself), or" \
         "install there first: $1"
}

# install LEVEL [DEB...]: LEVEL is run, bench or test; the DEBs are extra packages run needs.
install() {
    local level=$1 extra=base key line
    shift
    local want=("${RUN_DEBS[@]}" "$@") missing=() deb
    case $level in
        bench) want+=("${BENCH_DEBS[@]}") ;;
        test) want+=("${BENCH_DEBS[@]}" "${TEST_DEBS[@]}"); extra=test ;;
    esac
    for deb in "${want[@]}"; do
        have_deb "$deb" || missing+=("$deb")
    done
    read -r key _ < <(sha256sum pyproject.toml)
    line=
    [[ -r $STAMP ]] && read -r line <"$STAMP" || true
    if [[ ${#missing[@]} == 0 && -x .venv/bin/python ]] && { [[ $line == "$key test" ]] ||
                                                             [[ $extra == base && $line == "$key base" ]]; }; then
        return 0  # all there: no package manager, no python
    fi
    mkdir -p .venv
    exec 9>.venv/.lock  # one install at a time; a second waits, then finds it done
    flock -w 900 9 || die "another ./dev.sh has been installing into .venv for 15 minutes; is it stuck?"
    [[ -r $STAMP ]] && read -r line <"$STAMP" || true
    [[ ${#missing[@]} == 0 && -x .venv/bin/python ]] &&
        { [[ $line == "$key test" ]] || [[ $extra == base && $line == "$key base" ]]; } && return 0
    if [[ ! -x .venv/bin/python ]] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        missing+=(python3-venv)
    fi
    local online=1 timeout=30 retries=2
    has_route_out || { online= timeout=5 retries=0; }
    if ((${#missing[@]})); then
        [[ $online ]] || die "missing Debian packages ${missing[*]}: $(offline_hint "apt-get install ${missing[*]}")"
        apt_install "${missing[@]}"
    fi
    rm -f "$STAMP"
    [[ -x .venv/bin/python ]] || python3 -m venv .venv || die "python3 -m venv .venv failed (see above)"
    local spec=. log=.venv/pip.log
    [[ $extra == test ]] && spec=".[test]"
    # compat: a plain path entry for the editable install, not an import hook that costs
    # every command ~30 ms at start-up. Offline, pip still reads local indexes and wheels
    # (find-links, file:// indexes) and gives up on the others at once.
    [[ $online ]] && echo "dev.sh: pip install -e '$spec' into .venv (log: $log)" >&2
    if ! .venv/bin/python -m pip install -q --disable-pip-version-check --timeout "$timeout" \
            --retries "$retries" -e "$spec" --config-settings editable_mode=compat >"$log" 2>&1; then
        local last
        last=$(grep -v '^\s*$' "$log" | tail -n 1)
        [[ $online ]] || die "pip could not install the project into .venv ($last): $(offline_hint "./dev.sh $level")"
        die "pip could not install the project into .venv: $last (all of it in $log)"
    fi
    # Byte-code now, once: commands then never compile their modules at start-up.
    # PYTHONDONTWRITEBYTECODE only stops imports from writing it; the .pyc are still read.
    local site
    site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    env -u PYTHONDONTWRITEBYTECODE -u SOURCE_DATE_EPOCH .venv/bin/python -m compileall -q -j 0 \
        --invalidation-mode timestamp -x '^\./\.(git|venv)(/|$)' . >/dev/null
    env -u PYTHONDONTWRITEBYTECODE -u SOURCE_DATE_EPOCH .venv/bin/python -m compileall -q -j 0 \
        --invalidation-mode timestamp "$site" >/dev/null
    echo "$key $extra" >"$STAMP"
}

apt_install() {
    local with=() bare=() deb
    for deb in "$@"; do
        case " ${BENCH_DEBS[*]} " in
            *" $deb "*) bare+=("$deb") ;;
            *) with+=("$deb") ;;
        esac
    done
    echo "dev.sh: apt-get install $*" >&2
    local log
    log=$(mktemp /tmp/dev.sh-apt.XXXXXX)
    timeout 300 apt-get "${APT_OPTS[@]}" update >"$log" 2>&1 ||
        die "apt-get update failed: $(tail -n 1 "$log") (all of it in $log)"
    if ((${#with[@]})); then
        DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y "${with[@]}" >>"$log" 2>&1 ||
            die "apt-get install ${with[*]} failed: $(tail -n 1 "$log") (all of it in $log)"
    fi
    if ((${#bare[@]})); then
        DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y --no-install-recommends "${bare[@]}" \
            >>"$log" 2>&1 || die "apt-get install ${bare[*]} failed: $(tail -n 1 "$log") (all of it in $log)"
    fi
    rm -f "$log"
}

# --- run in a throwaway network namespace that plays the host ----------------------------

SANDBOX_PREFIX=nsp-dev-

reap_stale() {  # sandboxes of a dev.sh that was SIGKILLed: its pid is gone and nothing is in them
    local entry name pid
    for entry in /var/run/netns/"$SANDBOX_PREFIX"*; do
        [[ -e $entry ]] || continue
        name=${entry##*/}
        pid=${name#"$SANDBOX_PREFIX"}
        pid=${pid%%-*}
        [[ $pid =~ ^[0-9]+$ && ! -e /proc/$pid ]] || continue
        [[ -z $(ip netns pids "$name" 2>/dev/null) ]] || continue
        remove_netns "$name" "$(stat -L -c %i "$entry" 2>/dev/null || true)"
    done
}

remove_netns() {  # NAME INODE: the netns and what netsetter recorded for it (/run/ns-proc/netns-COOKIE,
    # whose file "netns" names the inode the namespace has while it lives)
    local meta
    if [[ -n $2 ]]; then
        for meta in /run/ns-proc/netns-*/netns; do
            [[ -f $meta ]] && grep -q "\"inode\": $2," "$meta" && rm -rf "${meta%/netns}"
        done
    fi
    ip netns del "$1" 2>/dev/null || [[ ! -e /var/run/netns/$1 ]] ||
        echo "dev.sh: warning: could not remove the sandbox netns $1: ip netns del $1" >&2
}

sandbox= inode= child=

on_exit() {
    [[ -n $sandbox ]] && remove_netns "$sandbox" "$inode"
    return 0
}

forward() {  # a signal for dev.sh goes on to runner, which stops the container and cleans up
    local signal=$1 num=$2
    if [[ -z $child ]]; then
        exit $((128 + num))  # nothing started yet: the EXIT trap removes the sandbox
    fi
    if [[ $signal == INT ]]; then
        # Ctrl-C on the terminal reached runner (of our process group) by itself.
        local stat fields
        read -r stat </proc/$$/stat
        read -r -a fields <<<"${stat##*) }"
        [[ ${fields[2]} == "${fields[5]}" ]] && return 0
    fi
    kill -s "$signal" "$child" 2>/dev/null || true
}

in_sandbox() {  # run "$@" with a fresh netns as its host network namespace
    reap_stale
    trap on_exit EXIT
    trap 'forward INT 2' INT
    trap 'forward TERM 15' TERM
    trap 'forward HUP 1' HUP
    sandbox=$SANDBOX_PREFIX$$-$SRANDOM
    ip netns add "$sandbox" || { sandbox=; die "could not make the sandbox netns (ip netns add, above)"; }
    inode=$(stat -L -c %i "/var/run/netns/$sandbox")
    ip -n "$sandbox" link set lo up
    if { true <&0; } 2>/dev/null; then exec 3<&0; else exec 3</dev/null; fi
    # An asynchronous command starts with SIGINT and SIGQUIT ignored: give them back, so
    # that Ctrl-C reaches runner and the container's command as it would without dev.sh.
    env --default-signal=INT,QUIT ip netns exec "$sandbox" "$@" <&3 3<&- &
    child=$!
    exec 3<&-
    # wait returns early when a trap runs: wait again until runner has ended.
    while kill -0 "$child" 2>/dev/null; do wait "$child" || true; done
    local status=0
    wait "$child" || status=$?
    exit "$status"
}

# --- the test suite in two passes ------------------------------------------------------

# run_tests [PYTEST ARGS]: the tests not marked serial side by side (pytest-xdist, one worker
# more than cores: a test spends much of its time waiting on the kernel and on the commands it
# runs, so that on 2 cores 3 workers took the quick lane from 122 s to 101 s; tests of one
# xdist_group on one worker), then the serial ones (netsetter gc judges
# every namespace of the machine) alone. Both passes get the same arguments; the status is
# the first failing pass's. With -n, --numprocesses, --dist or -p no:xdist given, the caller
# chooses: one pass, as given.
run_tests() {
    local arg
    for arg in "$@"; do
        case $arg in
            -n | -n* | --numprocesses | --numprocesses=* | --dist | --dist=* | no:xdist | -pno:xdist)
                exec .venv/bin/python -m pytest "$@" ;;
        esac
    done
    local first=0 second=0 workers
    workers=$(($(nproc) + 1))
    echo "dev.sh: pass 1 of 2: the tests not marked serial, side by side (-n $workers)" >&2
    .venv/bin/python -m pytest -n "$workers" --dist loadgroup --serial=none "$@" || first=$?
    echo "dev.sh: pass 2 of 2: the tests marked serial, alone" >&2
    .venv/bin/python -m pytest -p no:xdist --serial=only "$@" || second=$?
    # 5 is "no test collected": fine for one pass when the other ran some.
    if ((first == 5 && second == 5)); then exit 5; fi
    ((first == 5)) && first=0
    ((second == 5)) && second=0
    ((first)) && exit "$first"
    exit "$second"
}

cmd=${1:-}
shift || true
case $cmd in
    run)
        extra=()  # NAT needs iptables
        for arg in "$@"; do
            [[ $arg == -- ]] && break
            [[ $arg == --masquerade || $arg == -p* || $arg == --publish* ]] && extra=(iptables)
        done
        if [[ ${1:-} =~ ^[0-9]+$ ]]; then
            install run "${extra[@]}"
            exec .venv/bin/netsetter "$@"
        fi
        host=
        if [[ ${1:-} == --host ]]; then
            host=1
            shift
        fi
        install run "${extra[@]}"
        [[ $host ]] && exec .venv/bin/runner start "$@"
        in_sandbox .venv/bin/runner start "$@" ;;
    test)
        install test
        run_tests "$@" ;;
    bench)
        install bench
        exec .venv/bin/python -m bench "$@" ;;
    help | -h | --help)
        usage ;;
    *)
        usage >&2
        exit 2 ;;
esac
