#!/usr/bin/env bash
# Backup, restore and rekey: back the repository up while it is in use, restore
# the backup into a new directory and check it (fsck with the event log, the
# event chain), then change the restored copy's passphrase.
# Uses the repository of STEVE_DIR (the tour's when run from examples/tour.sh),
# else makes a small one.  Needs no network and no API key.  Run from anywhere.
set -euo pipefail
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export STEVE_PASSPHRASE="${STEVE_PASSPHRASE:-backup-passphrase}"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

if [ -z "${STEVE_DIR:-}" ]; then
  export STEVE_DIR="$work/project"
  run steve init "$STEVE_DIR"
  printf 'kept in the backup\n' > "$work/note.txt"
  run steve update-ref refs/heads/main "$(steve hash-object -w "$work/note.txt")" ""
fi
source_dir="$STEVE_DIR"

run steve backup "$work/backup"                 # a consistent copy; writers may keep going
say "cat $work/backup/manifest.json   (plain: counts and heads, no content)"
python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); print(json.dumps({k: m[k] for k in ("counts", "events", "files")}, indent=1))' "$work/backup/manifest.json"
run steve restore "$work/backup" "$work/restored"  # checked against the manifest, then fsck'd

export STEVE_DIR="$work/restored"
run steve fsck --events
run steve events verify

say "STEVE_NEW_PASSPHRASE=... steve rekey   (on the restored copy)"
STEVE_NEW_PASSPHRASE="a new passphrase" steve rekey
say "steve fsck   (the old passphrase no longer opens it)"
steve fsck || echo "exit status $?"
run env STEVE_PASSPHRASE="a new passphrase" steve fsck
export STEVE_DIR="$source_dir"
