#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Prepares a freshly booted test guest (run as root, once per boot; running
# it again is harmless):
#   - the ext4 scratch disk labelled "rhscratch" is mounted at /mnt/rhscratch
#     (page cache on a real block filesystem, O_TMPFILE support);
#   - the swap disk labelled "rhswap" is marked non-rotational, then swapon'd
#     (see environment.md: THP + rotational swap breaks test_memcontrol);
#   - a tmpfs is mounted at /run/rhtmp (shmem tests).
# Prints facts about the guest as key=value lines on stdout.  Exits non-zero
# with a message on stderr if something could not be set up.
#
# Usage: guest-setup.sh [--allow-missing]
#   --allow-missing  a missing scratch or swap disk is reported
#                    (scratch=missing, swap=missing) instead of an error.

SCRATCH_LABEL=rhscratch
SWAP_LABEL=rhswap
SCRATCH_MNT=/mnt/rhscratch
TMP_MNT=/run/rhtmp

allow_missing=0
[ "${1:-}" = "--allow-missing" ] && allow_missing=1

failed=0
err() {
	echo "guest-setup: error: $*" >&2
	failed=1
}

fact() {
	echo "$1=$2"
}

# A device by filesystem label: blkid's lookup, then a scan of /sys/block.
find_label() {
	dev=$(blkid -L "$1" 2>/dev/null)
	if [ -n "$dev" ] && [ -b "$dev" ]; then
		echo "$dev"
		return 0
	fi
	for sys in /sys/block/*; do
		name=${sys##*/}
		case $name in loop*|ram*|zram*) continue ;; esac
		for d in "/dev/$name" /dev/"$name"[0-9]*; do
			[ -b "$d" ] || continue
			if [ "$(blkid -o value -s LABEL "$d" 2>/dev/null)" = "$1" ]; then
				echo "$d"
				return 0
			fi
		done
	done
	return 1
}

# Creates a mount point; if the parent is read-only (the guest root is the
# host's / over 9p), a small tmpfs is put over the parent first.
make_mountpoint() {
	[ -d "$1" ] && return 0
	mkdir -p "$1" 2>/dev/null && return 0
	parent=${1%/*}
	if ! mountpoint -q "$parent"; then
		mount -t tmpfs -o size=1m,mode=0755 rhmnt "$parent" || return 1
	fi
	mkdir -p "$1"
}

is_mounted() {
	awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

mount_fstype() {
	awk -v m="$1" '$2 == m { t = $3 } END { print t }' /proc/self/mounts
}

if [ "$(id -u)" != 0 ]; then
	echo "guest-setup: must run as root" >&2
	exit 1
fi

# --- scratch filesystem --------------------------------------------------
if is_mounted "$SCRATCH_MNT"; then
	scratch_dev=$(awk -v m="$SCRATCH_MNT" '$2 == m { d = $1 } END { print d }' /proc/self/mounts)
else
	scratch_dev=$(find_label "$SCRATCH_LABEL")
	if [ -z "$scratch_dev" ]; then
		if [ $allow_missing = 1 ]; then
			echo "guest-setup: warning: no disk labelled $SCRATCH_LABEL" >&2
		else
			err "no block device labelled '$SCRATCH_LABEL' (attach the ext4 image made with mkfs.ext4 -L $SCRATCH_LABEL)"
		fi
	elif ! grep -qw ext4 /proc/filesystems; then
		err "the kernel has no ext4 (CONFIG_EXT4_FS) to mount $scratch_dev"
	elif ! make_mountpoint "$SCRATCH_MNT"; then
		err "cannot create $SCRATCH_MNT"
	elif ! mount -t ext4 "$scratch_dev" "$SCRATCH_MNT"; then
		err "cannot mount $scratch_dev on $SCRATCH_MNT"
	fi
fi
if is_mounted "$SCRATCH_MNT"; then
	fact scratch "$SCRATCH_MNT"
	fact scratch_dev "$scratch_dev"
	fact scratch_fstype "$(mount_fstype "$SCRATCH_MNT")"
	fact scratch_avail_kb "$(df -Pk "$SCRATCH_MNT" | awk 'NR == 2 { print $4 }')"
else
	fact scratch missing
fi

# --- swap ----------------------------------------------------------------
swap_dev=$(find_label "$SWAP_LABEL")
if [ -z "$swap_dev" ]; then
	if [ $allow_missing = 1 ]; then
		echo "guest-setup: warning: no disk labelled $SWAP_LABEL" >&2
	else
		err "no block device labelled '$SWAP_LABEL' (attach the image made with mkswap -L $SWAP_LABEL)"
	fi
	fact swap missing
else
	real=$(readlink -f "$swap_dev")
	name=${real##*/}
	# The rotational flag lives on the whole disk.
	disk=$name
	if [ ! -e "/sys/block/$disk" ]; then
		disk=$(basename "$(dirname "$(readlink -f "/sys/class/block/$name")")")
	fi
	rot=/sys/block/$disk/queue/rotational
	if ! grep -q "^$real " /proc/swaps; then
		if [ -w "$rot" ]; then
			echo 0 > "$rot" || err "cannot write $rot"
		else
			err "no $rot"
		fi
		swapon "$real" || err "swapon $real failed"
	fi
	fact swap "$real"
	fact swap_rotational "$(cat "$rot" 2>/dev/null || echo unknown)"
fi
fact swap_total_kb "$(awk '/^SwapTotal:/ { print $2 }' /proc/meminfo)"

# --- tmpfs for shmem -----------------------------------------------------
if ! is_mounted "$TMP_MNT"; then
	if ! make_mountpoint "$TMP_MNT"; then
		err "cannot create $TMP_MNT"
	elif ! mount -t tmpfs -o size=1500m,mode=1777 rhtmp "$TMP_MNT"; then
		err "cannot mount tmpfs on $TMP_MNT"
	fi
fi
if [ "$(mount_fstype "$TMP_MNT")" = tmpfs ]; then
	fact shmem_dir "$TMP_MNT"
else
	fact shmem_dir missing
fi

# --- facts ---------------------------------------------------------------
fact kernel "$(uname -r)"
fact kernel_version "$(uname -v)"
fact nr_cpus "$(grep -c ^processor /proc/cpuinfo)"
fact mem_total_kb "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
if [ -e /proc/sys/vm/recharge_offline_memcgs ]; then
	fact recharge_sysctl "$(cat /proc/sys/vm/recharge_offline_memcgs)"
else
	fact recharge_sysctl missing
fi
if grep -q '^recharge_pgs_scanned ' /proc/vmstat; then
	fact recharge_counters present
else
	fact recharge_counters missing
fi
cgroot=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
fact cgroup2 "${cgroot:-missing}"
if [ -n "$cgroot" ]; then
	fact cgroup_controllers "$(tr ' ' ',' < "$cgroot/cgroup.controllers")"
	# As systemd mounts it: test_core's test_cgcore_lesser_ns_open skips without it.
	if ! awk -v m="$cgroot" '$2 == m && $4 ~ /(^|,)nsdelegate(,|$)/ { f = 1 } END { exit !f }' \
			/proc/self/mounts; then
		mount -o remount,nsdelegate "$cgroot" 2>/dev/null
	fi
	fact cgroup2_options "$(awk -v m="$cgroot" '$2 == m { print $4; exit }' /proc/self/mounts)"
fi
thp=/sys/kernel/mm/transparent_hugepage/enabled
if [ -r $thp ]; then
	fact thp "$(sed 's/.*\[\(.*\)\].*/\1/' $thp)"
else
	fact thp missing
fi
if [ -r /sys/kernel/mm/lru_gen/enabled ]; then
	fact lru_gen "$(cat /sys/kernel/mm/lru_gen/enabled)"
else
	fact lru_gen missing
fi
# root's home as SSH sessions see it: the guest's private one when the harness's guest
# command could switch it (harness.stages.vm: the host root's ~/.bashrc is not read)
fact root_home "$(awk -F: '$1 == "root" { print $6 }' /etc/passwd)"
if [ -e /proc/net/if_inet6 ]; then
	fact ipv6 yes
else
	fact ipv6 no
fi

if [ $failed != 0 ]; then
	echo "guest-setup: FAILED (see errors above)" >&2
	exit 1
fi
exit 0
