#!/bin/sh
# The command virtme-ng runs in the guest (harness.stages.vm.guest_command): bring up
# the network and the harness's own sshd, say so, then bound the guest's life.
# Usage: guest-init.sh READY_LINE BUDGET_S SSHD_CONFIG [SSHD_PIDFILE]
#
# virtme-ng's init runs this as soon as its basic set-up is done: no DHCP (the address
# is QEMU's user-mode default, which the host forwards the SSH port to) and none of
# virtme-ng's sshd script (a bash script of a dozen programs); under TCG every program
# started costs ~0.1 s, so this script uses shell builtins wherever it can.
#   1. eth0 up with 10.0.2.15/24 and QEMU's gateway 10.0.2.2 as default route (one
#      `ip -batch`);
#   2. root's passwd entry: an empty private home and /bin/sh as login shell (sshd
#      runs every command through it; the host root's ~/.bashrc -- 3-9 s under TCG --
#      is not read, and dash starts faster than bash);
#   3. root's shadow entry "*" instead of virtme-ng's "!": the harness's sshd runs
#      without PAM, and sshd refuses an account whose password starts with "!"
#      (public-key logins included);
#   4. sshd with the harness's config (per-run host key and authorized key, no PAM,
#      internal SFTP), logging to the kernel log; the ready line once its pid file
#      exists (sshd forks to the background before it listens, and writes the pid
#      file after).
# The guest's / is the host's / over 9p; /etc is a tmpfs overlay and /etc/shadow a
# tmpfs file (virtme-ng's), so the files are written in place; where that fails, a
# copy on /run is bind-mounted over them.  Nothing reaches the host.
# On failure it prints "FAILED_LINE: why" (READY_LINE with -FAILED) and still waits
# out its budget, so the harness reports the cause instead of a timeout.
# Paths can be moved for the unit tests: RH_PRIVATE, RH_ETC, RH_KMSG, RH_SSH_SCRATCH,
# RH_SSHD, RH_SSHD_DIR.  RH_PID_TRIES: how many 20 ms waits for the pid file (1500: a
# debug kernel under TCG starts sshd slowly, and each wait is a program).

ready=$1
budget=$2
config=$3
pidfile=${4:-/run/recharge-harness/sshd.pid}
d=${RH_PRIVATE:-/run/recharge-harness}
etc=${RH_ETC:-/etc}
kmsg=${RH_KMSG:-/dev/kmsg}
sshd=${RH_SSHD:-/usr/sbin/sshd}

say() {
	echo "$1" >"$kmsg"
	echo "$1"
}

fail() {
	say "$ready-FAILED: $*"
	exec sleep "$budget"
}

# root's home, sshd's privilege separation directory, the harness shell's directory
# (harness.stages.ssh: saves its first command a program)
mkdir -p -m 700 "$d/root" "${RH_SSHD_DIR:-/run/sshd}" \
	"${RH_SSH_SCRATCH:-/run/rh-harness-ssh}" || fail "mkdir"

ip -batch - <<EOF || fail "network: ip could not set up eth0"
link set dev eth0 up
addr add 10.0.2.15/24 dev eth0
route add default via 10.0.2.2 dev eth0
EOF

# put NAME TEXT: the file $etc/NAME gets TEXT (a copy of shadow: readable by root only)
put() {
	{ printf '%s' "$2" >"$etc/$1"; } 2>/dev/null && return
	(
		[ "$1" = shadow ] && umask 077
		printf '%s' "$2" >"$d/$1"
	) && mount --bind "$d/$1" "$etc/$1"
}

# root_passwd LINE: $entry = root's passwd LINE with the private home and /bin/sh
root_passwd() {
	old_ifs=$IFS
	IFS=:
	set -f
	# shellcheck disable=SC2086 # split at the colons on purpose
	set -- $1
	set +f
	IFS=$old_ifs
	entry="$1:$2:$3:$4:$5:$d/root:/bin/sh"
}

# edit NAME: $etc/NAME (passwd or shadow) with root's entry changed; left alone
# without one
edit() {
	text=
	found=
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in
		root:*)
			found=1
			if [ "$1" = shadow ]; then
				line="root:*:::::::"
			else
				root_passwd "$line"
				line=$entry
			fi
			;;
		esac
		text="$text$line
"
	done <"$etc/$1" || return 1
	[ -n "$found" ] || return 0
	put "$1" "$text"
}

edit passwd || fail "passwd: root's entry not changed"
if [ -e "$etc/shadow" ]; then
	edit shadow || fail "shadow: root's entry not changed"
fi

[ -x "$sshd" ] || fail "no $sshd in the guest (the host's; install openssh-server)"
"$sshd" -f "$config" -E "$kmsg" || fail "sshd exited with status $?"
tries=${RH_PID_TRIES:-1500}
while [ ! -s "$pidfile" ]; do
	tries=$((tries - 1))
	[ "$tries" -gt 0 ] || fail "sshd did not start listening (its log: the kernel log)"
	sleep 0.02
done

say "$ready"
exec sleep "$budget"
