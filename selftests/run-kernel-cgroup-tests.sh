#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs the kernel's own cgroup selftests (built from the tree under test) in
# an environment where they can pass, as one KTAP stream in the style of the
# kselftest runner: each program's own output is nested with a "# " prefix
# and followed by "ok N selftests: cgroup: NAME" (or "not ok", "# SKIP").
#
# The working directory is on the ext4 scratch disk (see guest-setup.sh):
# test_memcontrol makes its page cache with O_TMPFILE files in ".", which
# gives no page cache on tmpfs or 9p.
#
# Usage: run-kernel-cgroup-tests.sh DIR [TEST...]
#   DIR   directory holding the built binaries (tools/testing/selftests/cgroup
#         of the tree, or its O= output directory)
#   TEST  programs to run (default: test_memcontrol test_kmem test_core)
# Environment: RH_KSELFTEST_TIMEOUT seconds per program (default 900),
#              RH_SCRATCH working directory base (default /mnt/rhscratch).
# Exit: 0 if nothing failed, 1 otherwise, 2 on bad usage.

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 DIR [TEST...]" >&2
	exit 2
fi
dir=$(cd "$1" && pwd)
shift
[ $# -eq 0 ] && set -- test_memcontrol test_kmem test_core

timeout_s=${RH_KSELFTEST_TIMEOUT:-900}
scratch=${RH_SCRATCH:-/mnt/rhscratch}

echo "TAP version 13"
echo "1..$#"

if awk -v m="$scratch" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; then
	work="$scratch/kselftest-cgroup.$$"
	mkdir -p "$work"
	echo "# working directory $work ($(awk -v m="$scratch" '$2 == m { t = $3 } END { print t }' /proc/self/mounts))"
else
	work=$(mktemp -d /tmp/kselftest-cgroup.XXXXXX)
	echo "# WARNING: $scratch is not mounted (run guest-setup.sh); page-cache tests will fail in $work"
fi
if [ -e /proc/sys/vm/recharge_offline_memcgs ]; then
	echo "# vm.recharge_offline_memcgs=$(cat /proc/sys/vm/recharge_offline_memcgs)"
else
	echo "# vm.recharge_offline_memcgs missing"
fi

linebuf=
if command -v stdbuf >/dev/null 2>&1; then
	linebuf="stdbuf -oL -eL"
fi

n=0
failed=0
for t in "$@"; do
	n=$((n + 1))
	echo "# selftests: cgroup: $t"
	if [ ! -x "$dir/$t" ]; then
		echo "# $dir/$t: not built"
		echo "not ok $n selftests: cgroup: $t # exit=127"
		failed=1
		continue
	fi
	# Run from the scratch disk; prefix the program's output with "# ".
	rcfile="$work/.rc.$n"
	(
		cd "$work" || exit 125
		# Line-buffered: these programs fork without flushing stdout,
		# and a pipe would make every child repeat the pending lines.
		$linebuf timeout --kill-after=10 "$timeout_s" "$dir/$t" 2>&1
		echo $? > "$rcfile"
	) | sed -u 's/^/# /'
	rc=$(cat "$rcfile" 2>/dev/null || echo 125)
	rm -f "$rcfile"
	case $rc in
	0)	echo "ok $n selftests: cgroup: $t" ;;
	4)	echo "ok $n selftests: cgroup: $t # SKIP" ;;
	124)	echo "not ok $n selftests: cgroup: $t # TIMEOUT $timeout_s seconds"
		failed=1 ;;
	*)	echo "not ok $n selftests: cgroup: $t # exit=$rc"
		failed=1 ;;
	esac
done

rm -rf "$work"
exit $failed
