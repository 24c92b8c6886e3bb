#!/usr/bin/env bash
# steved: unlock once, then every write goes through the daemon's single writer
# (no Argon2id per command); follow the event stream from a seq, resume it
# without a gap, ping, status, lock, stop.  Needs no network and no API key.
# Run from anywhere.  See docs/daemon.md.
set -euo pipefail
work="$(mktemp -d)"
export STEVE_DIR="$work/project"
export STEVE_PASSPHRASE="${STEVE_PASSPHRASE:-daemon-passphrase}"
export STEVE_AUTHOR_NAME="Daemon" STEVE_AUTHOR_EMAIL="daemon@example.invalid"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }
follower=""
cleanup() {
  if [ -n "$follower" ]; then kill "$follower" 2>/dev/null || true; fi
  steve daemon stop 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

run steve init "$STEVE_DIR"
run steve daemon start --ttl 10m      # derives the key once, prints steved's pid
run steve ping -c 5
say "printf 'hello\\n' | steve hash-object -w --stdin   (forwarded: runs inside steved)"
blob=$(printf 'hello through steved\n' | steve hash-object -w --stdin)
echo "$blob"
run steve cat-file -t "$blob"                            # a read (forwarded: no cached key)
run steve events append --type example.note --payload '{"step": 1}'
run steve events append --type example.note --payload '{"step": 2}'

say "steve events --follow --from-seq 1 --json   (server push; in the background)"
steve events --follow --from-seq 1 --json > "$work/follow.jsonl" &
follower=$!
run steve events append --type example.note --payload '{"step": 3}'
for _ in $(seq 1 100); do [ "$(wc -l < "$work/follow.jsonl")" -ge 3 ] && break; sleep 0.1; done
kill "$follower"; wait "$follower" 2>/dev/null || true; follower=""
cat "$work/follow.jsonl"
last=$(tail -n 1 "$work/follow.jsonl" | python3 -c 'import json, sys; print(json.load(sys.stdin)["seq"])')
run steve events append --type example.note --payload '{"step": 4}'
say "steve events --follow --from-seq $((last + 1))   (resume: no gap, no duplicate)"
timeout 3 steve events --follow --from-seq $((last + 1)) || true

run steve daemon status
run steve lock                 # the daemon drops its key; the next write hands it back
printf 'after lock\n' | steve hash-object -w --stdin
run steve fsck
run steve events verify
run steve daemon stop
