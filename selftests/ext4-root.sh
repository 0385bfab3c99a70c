#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs a program with "/" on the ext4 scratch disk instead of virtme-ng's 9p
# root, everything else unchanged.
#
# Why: the 9p root (cache=none) keeps no dentries, negative ones included,
# and tmpfs drops negative dentries as well. test_kmem's test_kmem_basic
# makes its kernel memory by stat()ing 100,000 missing names under "/" and
# needs them to stay in the dcache; on the 9p root they never do, so the
# test fails on every kernel, patched or not.
#
# How: in a private mount namespace, the host root is bind-mounted
# (recursively) at $ROOT/host, and $ROOT (a directory on the scratch disk)
# holds one symlink per top-level entry of the host root pointing into it;
# then chroot $ROOT. Paths resolve as before, but lookups of names that do
# not exist under "/" happen in an ext4 directory.
#
# Usage: ext4-root.sh PROGRAM [ARGS...]   (run from the directory to keep)
# Environment: RH_SCRATCH (default /mnt/rhscratch).
# Exit: the program's exit code; 125 if the environment cannot be set up.

scratch=${RH_SCRATCH:-/mnt/rhscratch}
if [ $# -lt 1 ]; then
	echo "usage: $0 PROGRAM [ARGS...]" >&2
	exit 2
fi
if ! awk -v m="$scratch" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; then
	echo "ext4-root.sh: $scratch is not mounted (run guest-setup.sh)" >&2
	exit 125
fi
root=$scratch/.ext4-root
mkdir -p "$root/host" || exit 125

exec unshare -m /bin/sh -c '
	root=$1
	shift
	mount --make-rprivate / && mount --rbind / "$root/host" || exit 125
	for e in /* /.[!.]*; do
		[ -e "$e" ] || [ -L "$e" ] || continue
		n=${e#/}
		[ -e "$root/$n" ] || [ -L "$root/$n" ] || ln -s "/host/$n" "$root/$n" || exit 125
	done
	exec chroot "$root" /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$PWD" "$@"
' sh "$root" "$@"
