#!/bin/sh
# The command virtme-ng runs in an SSH guest (harness.stages.vm.guest_command), after
# its init has started sshd: make every later SSH session cheap, say so, then bound the
# guest's life.  Usage: guest-init.sh READY_LINE BUDGET_S
#
# The guest's / is the host's / over 9p; everything here is a bind mount in the guest
# (of a file on the guest's /run tmpfs), so nothing reaches the host.  sshd reads
# passwd and its PAM stack again for every connection, so no restart is needed.  Each
# step is guarded: one that cannot be done leaves the sessions slower, never broken.
#   1. root's passwd entry: an empty private home (the host root's ~/.bashrc is not
#      read: 3-9 s under TCG) and /bin/sh as login shell (sshd runs every command
#      through it; dash starts faster than bash and reads no start-up file);
#   2. sshd's PAM stack: accounts and sessions permitted, nothing else (Debian's runs
#      ~12 session modules for every session, the message of the day's run-parts
#      among them); authentication stays sshd's own (the per-run public key), and
#      password authentication is denied.  Only where pam_permit.so exists.
# Every program started here costs ~0.1 s under TCG: builtins where possible.
# Paths can be moved for the unit tests: RH_PRIVATE, RH_ETC, RH_KMSG, RH_SSH_SCRATCH,
# RH_PAM_MODULES (a glob of pam_permit.so candidates).

ready=$1
budget=$2
d=${RH_PRIVATE:-/run/recharge-harness}
etc=${RH_ETC:-/etc}
kmsg=${RH_KMSG:-/dev/kmsg}
pam_modules=${RH_PAM_MODULES:-/lib/*/security/pam_permit.so /usr/lib/*/security/pam_permit.so /usr/lib64/security/pam_permit.so /lib64/security/pam_permit.so /lib/security/pam_permit.so}

# with the directory of the harness's shell (harness.stages.ssh: saves its first
# command a program)
mkdir -p -m 700 "$d/root" "${RH_SSH_SCRATCH:-/run/rh-harness-ssh}"

# (awk exits 1 without a root entry: then passwd is left alone; /bin/sh exists, it
# runs this script)
if awk -F: -v OFS=: -v h="$d/root" \
	'$1 == "root" { $6 = h; $7 = "/bin/sh"; found = 1 } 1; END { exit !found }' \
	"$etc/passwd" >"$d/passwd"; then
	mount --bind "$d/passwd" "$etc/passwd"
fi

permit=
for m in $pam_modules; do
	[ -e "$m" ] && permit=$m && break
done
if [ -n "$permit" ] && [ -f "$etc/pam.d/sshd" ]; then
	printf '%s\n' "# recharge-harness guest: see harness/stages/guest-init.sh" \
		"auth required pam_deny.so" "account required pam_permit.so" \
		"password required pam_deny.so" "session required pam_permit.so" \
		>"$d/pam-sshd" && mount --bind "$d/pam-sshd" "$etc/pam.d/sshd"
fi

echo "$ready" >"$kmsg"
echo "$ready"
exec sleep "$budget"
