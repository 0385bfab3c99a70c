#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mm-run.sh [-l] DIR [TEST...]
#
# Runs a chosen list of the kernel's own mm selftests (the tested tree's
# tools/testing/selftests/mm, built there: DIR holds the binaries) in the
# guest, as one KTAP stream: each test is one case, its output nested as
# "# " lines (as the kselftest runner does), "ok" for exit 0, "ok ... # SKIP"
# for exit 4, "not ok" for anything else, "not ok ... # TIMEOUT" when its
# timeout (coreutils timeout, then SIGKILL 10 s later) ran out.  Exit: 0 all
# passed or skipped with some passing, 1 a failure, 4 all skipped.
#
# The binaries are copied to a directory on the ext4 scratch disk
# (/mnt/rhscratch/mm-run.<pid>) and run from there as ./NAME, as
# run_vmtests.sh runs them from their own directory: ksm_functional_tests
# re-executes ./ksm_functional_tests, gup_longterm makes a "local tmpfile"
# in the current directory (which must be a real filesystem, not the 9p
# root), gup_test creates its file there.
#
# TEST: a name from the table below (default: all of it), or the name of
# any other binary in DIR (run as ./NAME without arguments, timeout 300 s).
# -l lists the table.  MM_RUN_TIMEOUT_MULT (integer) multiplies every
# timeout; its default is 1, or 4 on a debug kernel (lockdep, which the
# harness's debug profile has with KASAN: /proc/lockdep exists), whose mm
# paths run several times slower under TCG.
#
# Before the run the THP and khugepaged settings are saved, and restored
# after every test (a test killed by its timeout cannot restore them
# itself); debugfs is mounted for gup_test; kernel.yama.ptrace_scope is 0
# during memfd_secret (as in run_vmtests.sh).
#
# Needs in the kernel (tools/testing/selftests/mm/config and what the
# series touches): CONFIG_GUP_TEST (gup_test), CONFIG_TRANSPARENT_HUGEPAGE,
# CONFIG_USERFAULTFD, CONFIG_PTE_MARKER_UFFD_WP, CONFIG_MEM_SOFT_DIRTY,
# CONFIG_KSM, CONFIG_SECRETMEM, CONFIG_MIGRATION and CONFIG_NUMA
# (migration SKIPs with fewer than 2 nodes), CONFIG_HUGETLBFS.  A test
# whose feature is missing SKIPs (exit 4) on its own.

SCRATCH=/mnt/rhscratch

# The default subset: what the series touches (memcg charge and its move
# between memcgs, the rmap walk over mapped folios, GUP/MAP_POPULATE and
# read/write/dirty accesses that mark folios accessed, LRU isolation of
# mlocked and large folios, THP split/collapse, migration, exiting tasks),
# each bounded to fit under TCG.
#
#   name                  timeout(s) needs    command (run in the work dir)
TABLE='
cow                     1200      -        ./cow
gup_test_u              300       -        ./gup_test -u
gup_test_a              300       -        ./gup_test -a
gup_test_ct             120       -        ./gup_test -ct -F 0x1 0 19 0x1000
gup_longterm            600       -        ./gup_longterm
migration               300       -        ./migration
mlock2-tests            300       -        ./mlock2-tests
mlock-random-test       300       -        ./mlock-random-test
madv_populate           300       -        ./madv_populate
map_populate            120       -        ./map_populate
mkdirty                 300       -        ./mkdirty
split_huge_page_test    900       -        ./split_huge_page_test
transhuge-stress        180       -        ./transhuge-stress -d 20 128
khugepaged              1200      -        ./khugepaged
khugepaged_shmem        1200      -        ./khugepaged all:shmem
khugepaged_mthp         1200      -        ./khugepaged -s 2
ksm_functional_tests    600       -        ./ksm_functional_tests
mremap_test             600       -        ./mremap_test
mrelease_test           300       -        ./mrelease_test
uffd-unit-tests         1200      -        ./uffd-unit-tests
soft-dirty              300       -        ./soft-dirty
pagemap_ioctl           900       -        ./pagemap_ioctl
memfd_secret            120       -        ./memfd_secret
hugepage-mmap           300       hugetlb  ./hugepage-mmap
hugepage-mremap         300       hugetlb  ./hugepage-mremap
hugetlb-madvise         300       hugetlb  ./hugetlb-madvise
map_hugetlb             300       hugetlb  ./map_hugetlb
'
# Left out of the default subset, and why:
#   uffd-stress            minutes of threads bouncing pages under TCG;
#                          uffd-unit-tests covers the same fault paths
#   compaction_test        wants most of RAM as huge pages; minutes under
#                          TCG and its result depends on the guest's size
#   ksm_tests              merge-time benchmarks (-P, -H), slow; -N needs
#                          2 NUMA nodes; ksm_functional_tests checks KSM
#   on-fault-limit         runs as "nobody" through sudo; RLIMIT_MEMLOCK
#                          only, nothing of memcg
#   hmm-tests, test_hmm.sh need the test_hmm module (CONFIG_TEST_HMM=m)
#   test_vmalloc.sh        needs the test_vmalloc module; vmalloc only
#   virtual_address_range, va_high_addr_switch.sh
#                          address-space layout up to 128 TB; slow under
#                          TCG, no memcg path
#   protection_keys_*, pkey_sighandler_tests
#                          need PKU, which TCG does not emulate
#   map_fixed_noreplace, mremap_dontunmap, mseal_test, seal_elf, mdwe_test
#                          VMA semantics only; the series does not touch them
#   droppable              fills memory until the kernel drops pages:
#                          minutes under TCG, depends on the guest's size
#   hugepage-shm, hugepage-vmemmap, hugetlb_dio, hugetlb_fault_after_madv,
#   hugetlb_madv_vs_map, thuge-gen, write_to_hugetlbfs,
#   charge_reserved_hugetlb.sh, hugetlb_reparenting_test.sh
#                          hugetlb folios are neither on the LRU nor
#                          recharged by the series; the scripts also need
#                          the hugetlb cgroup controller and fixed counts
#                          of huge pages (the four hugetlb tests above run
#                          as a smoke check when huge pages exist)
#   hugetlb-soft-offline, hugetlb-read-hwpoison
#                          destructive (run_vmtests.sh -d only)

usage() {
	echo "usage: $0 [-l] DIR [TEST...]" >&2
	exit 2
}

table_rows() {
	echo "$TABLE" | sed -e '/^[[:space:]]*$/d'
}

if [ "$1" = "-l" ]; then
	table_rows
	exit 0
fi
[ $# -ge 1 ] || usage
DIR=$1
shift
DEFAULT_MULT=1
[ -e /proc/lockdep ] && DEFAULT_MULT=4
MULT=${MM_RUN_TIMEOUT_MULT:-$DEFAULT_MULT}
case $MULT in
''|*[!0-9]*) echo "MM_RUN_TIMEOUT_MULT must be a positive integer" >&2; exit 2 ;;
esac

# The selection: name timeout needs command...
declare -a SEL=()
if [ $# -eq 0 ]; then
	while read -r line; do SEL+=("$line"); done < <(table_rows)
else
	for t in "$@"; do
		row=$(table_rows | awk -v n="$t" '$1 == n')
		[ -n "$row" ] || row="$t 300 - ./$t"
		SEL+=("$row")
	done
fi

echo "TAP version 13"
echo "1..${#SEL[@]}"

skip_all() {
	local i=0 row
	for row in "${SEL[@]}"; do
		i=$((i + 1))
		echo "ok $i ${row%% *} # SKIP $1"
	done
	echo "# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:${#SEL[@]} error:0"
	exit 4
}

[ "$(id -u)" = 0 ] || skip_all "needs root"
[ -d "$DIR" ] || skip_all "no mm selftests build directory $DIR"
mountpoint -q "$SCRATCH" 2>/dev/null ||
	skip_all "$SCRATCH is not mounted (run guest-setup.sh)"
command -v timeout >/dev/null || skip_all "no timeout(1) (coreutils)"

WORK=$SCRATCH/mm-run.$$
mkdir -p "$WORK" || skip_all "cannot create $WORK"

# --- THP / khugepaged settings: saved once, restored after every test ----
THP=/sys/kernel/mm/transparent_hugepage
declare -A SAVED=()
save_settings() {
	local f v
	for f in "$THP"/enabled "$THP"/defrag "$THP"/shmem_enabled \
		 "$THP"/hugepages-*/enabled "$THP"/hugepages-*/shmem_enabled \
		 "$THP"/use_zero_page "$THP"/khugepaged/*; do
		[ -f "$f" ] && [ -w "$f" ] || continue
		v=$(cat "$f" 2>/dev/null) || continue
		# "always [madvise] never" -> madvise
		case $v in *\[*\]*) v=${v#*[}; v=${v%%]*} ;; esac
		SAVED[$f]=$v
	done
	SAVED[/proc/sys/vm/nr_hugepages]=$(cat /proc/sys/vm/nr_hugepages)
}
restore_settings() {
	local f
	for f in "${!SAVED[@]}"; do
		[ "$(cat "$f" 2>/dev/null)" = "${SAVED[$f]}" ] && continue
		echo "${SAVED[$f]}" > "$f" 2>/dev/null
	done
}
cleanup() {
	restore_settings
	rm -rf "$WORK"
}
save_settings
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! mountpoint -q /sys/kernel/debug 2>/dev/null; then
	mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
fi
huge_total=$(awk '/^HugePages_Total:/ { print $2 }' /proc/meminfo)
echo "# mm-run: $DIR, work directory $WORK, timeouts x$MULT, HugePages_Total ${huge_total:-none}"

pass=0 fail=0 skip=0 i=0
for row in "${SEL[@]}"; do
	i=$((i + 1))
	read -r name tmo needs cmd <<< "$row"
	set -- $cmd
	bin=${1#./}
	tmo=$((tmo * MULT))
	if [ ! -x "$DIR/$bin" ]; then
		echo "ok $i $name # SKIP not built ($DIR/$bin missing)"
		skip=$((skip + 1))
		continue
	fi
	if [ "$needs" = hugetlb ] && [ "${huge_total:-0}" -le 0 ]; then
		echo "ok $i $name # SKIP no hugetlb pages (vm.nr_hugepages=0)"
		skip=$((skip + 1))
		continue
	fi
	cp -f "$DIR/$bin" "$WORK/$bin" || {
		echo "not ok $i $name # cannot copy $DIR/$bin to $WORK"
		fail=$((fail + 1))
		continue
	}
	yama=/proc/sys/kernel/yama/ptrace_scope
	yama_old=
	if [ "$bin" = memfd_secret ] && [ -w $yama ]; then
		yama_old=$(cat $yama)
		echo 0 > $yama
	fi
	echo "# ----- $cmd (timeout ${tmo}s)"
	start=$(date +%s)
	(cd "$WORK" && exec timeout -k 10 "$tmo" "$@" 2>&1 < /dev/null) |
		sed -e 's/^/# /'
	rc=${PIPESTATUS[0]}
	dur=$(( $(date +%s) - start ))
	[ -n "$yama_old" ] && echo "$yama_old" > $yama
	restore_settings
	rm -f "$WORK"/* 2>/dev/null
	echo "# $name: exit $rc after ${dur}s"
	case $rc in
	0)	echo "ok $i $name"; pass=$((pass + 1)) ;;
	4)	echo "ok $i $name # SKIP the test skipped itself (exit 4, see its output)"
		skip=$((skip + 1)) ;;
	124|137)
		if [ "$dur" -ge "$tmo" ]; then
			echo "not ok $i $name # TIMEOUT after ${tmo}s"
		else
			echo "not ok $i $name # exit=$rc"
		fi
		fail=$((fail + 1)) ;;
	126|127)
		echo "not ok $i $name # exit=$rc: could not be executed (missing library?)"
		fail=$((fail + 1)) ;;
	*)	echo "not ok $i $name # exit=$rc"; fail=$((fail + 1)) ;;
	esac
done

echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:$skip error:0"
[ $fail -gt 0 ] && exit 1
[ $pass -eq 0 ] && [ $skip -gt 0 ] && exit 4
exit 0
