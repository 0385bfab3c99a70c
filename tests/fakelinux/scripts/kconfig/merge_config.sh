#!/bin/sh
# fake merge_config.sh -m -O DIR BASE FRAGMENTS...: concatenate (last wins later)
[ "$1" = -m ] && shift
[ "$1" = -O ] && { out=$2; shift 2; }
base=$1; shift
cat "$base" "$@" > "$out/.config.merged"
mv "$out/.config.merged" "$out/.config"
