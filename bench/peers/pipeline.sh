#!/usr/bin/env bash
# The container of `runner start`, done with the tools the article started from:
# unshare for the namespaces, pivot_root for the root, netsetter.sh for the network.
#
#   pipeline.sh [--no-net] ROOT SCRIPT -- CMD [ARGS...]
#
#   unshare: new user (root mapped to us), mount, UTS, IPC, PID and net namespaces;
#            its child (PID 1 inside) says "ready" over a fifo at once, then
#            sets the hostname, mounts /proc and a small /dev, pivots into ROOT
#            and detaches the old root, and waits for "go" before exec'ing CMD
#   meanwhile, here: bash SCRIPT <pid of unshare> gives that netns its network,
#            then "go"; when CMD has ended, the host end of the veth pair is
#            deleted, as runner does (the kernel would do it, but only later)
#
# ROOT needs bin/busybox (static) and the directories proc, dev and .oldroot.
# The benchmark measures this whole script against `runner start`.
set -euo pipefail

net=1
if [ "${1:-}" = --no-net ]; then net=0; shift; fi
root=$1 script=$2
shift 2
[ "${1:-}" = -- ] && shift

fifos=$(mktemp -d)
trap 'rm -rf "$fifos"' EXIT
mkfifo "$fifos/ready" "$fifos/go"

# The inside, run by sh as PID 1 of the new PID namespace, before and after pivot_root.
inside='
root=$1 fifos=$2; shift 2
echo ready > "$fifos/ready"
exec 3<> "$fifos/go"              # opened before pivot_root hides it; <> never blocks on a fifo
hostname ns-proc
mount --make-rprivate /           # nothing mounted here propagates to the host
mount --bind "$root" "$root"      # pivot_root needs the new root to be a mount point
mount -t proc proc "$root/proc"   # a procfs of the new PID namespace
mount -t tmpfs -o nosuid,mode=755 tmpfs "$root/dev"
for dev in null zero full random urandom tty; do
    : > "$root/dev/$dev"; mount --bind "/dev/$dev" "$root/dev/$dev"
done
cd "$root"
pivot_root . .oldroot
read -r _ <&3                     # the network is ready (or there is none)
exec 3<&-
exec /bin/busybox sh -c "/bin/busybox umount -l /.oldroot && exec \"\$@\"" sh "$@"
'

unshare --user --map-root-user --mount --uts --ipc --pid --net --fork --kill-child -- \
    /bin/sh -c "$inside" inside "$root" "$fifos" "$@" &
pid=$!
read -r _ < "$fifos/ready"        # unshare has made the namespaces: $pid is in them
if [ "$net" = 1 ]; then
    bash "$script" "$pid" > /dev/null 2>&1
fi
echo go > "$fifos/go"
status=0
wait "$pid" || status=$?
if [ "$net" = 1 ]; then
    ip link del veth_host 2> /dev/null || true
fi
exit "$status"
