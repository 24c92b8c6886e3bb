#!/usr/bin/env bash
# The main job: a tour of STEVE's plumbing on a fresh encrypted repository,
# then a design frozen from examples/design.yaml, a run walked through its
# stages by the state machine, `steve log`, an example project built and
# tested in containers (image built offline from a static busybox), the
# certified files deployed through a real approval, a signed attestation of
# the test certificate verified with only the public key, the event log
# verified, and the history exported to git and audited there; then the same
# stages driven by a model (examples/lifecycle-llm.sh: the
# scripted provider answers offline from the fixture shipped with STEVE),
# inspect mode over that run (examples/inspect.sh), RESEARCH offline from a
# mirror shipped with the example, with cited summaries checked against the
# mirrored bytes (examples/research.sh), a backup restored and rekeyed, a
# vault secret used by a build step yet absent from an export
# (examples/secrets.sh), errors explained and completion (examples/ux.sh), and
# the guided first run, unattended (examples/start.sh).
# Needs no network and no API key.  Run from anywhere.  If /bin/busybox is
# missing, examples/project/build-and-test.sh says so and installs Debian's
# busybox-static (a system package) before going on; the image it builds is
# removed at the end.
set -euo pipefail
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export STEVE_DIR="$work/project"
export STEVE_PASSPHRASE="${STEVE_PASSPHRASE:-tour-passphrase}"
export STEVE_AUTHOR_NAME="Tour" STEVE_AUTHOR_EMAIL="tour@example.invalid"
export SOURCE_DATE_EPOCH=1700000000   # reproducible ids (tags, manifests): the README quotes them
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

mkdir -p "$STEVE_DIR/src"
printf 'print("hello from STEVE")\n' > "$STEVE_DIR/src/hello.py"
printf '# Example project\n' > "$STEVE_DIR/README.md"

run steve init "$STEVE_DIR"
run steve unlock --ttl 5m          # cache the Argon2id-derived key in the kernel keyring
blob=$(steve hash-object -w "$STEVE_DIR/README.md")
say "steve hash-object -w README.md"; echo "$blob"
run steve cat-file -t "$blob"
run steve cat-file -p "$blob"
say "steve cat-file --raw $blob | b3sum  (the id is the BLAKE3 of the stored bytes)"
steve cat-file --raw "$blob" | python3 -c 'import sys, blake3; print(blake3.blake3(sys.stdin.buffer.read()).hexdigest())'
tree=$(steve write-tree "$STEVE_DIR")
say "steve write-tree"; echo "$tree"
run steve ls-tree -r "$tree"
run steve update-ref refs/heads/main "$tree" ""
run steve tag -m "first snapshot" v1 main
run steve show-ref
run steve rev-parse v1 'v1^{tree}' main@{0} "${tree:0:8}"
run steve cat-file -p v1
run steve reflog main
say "printf '%s\n' $tree v1 nope | steve cat-file --batch-check"
printf '%s\n' "$tree" v1 nope | steve cat-file --batch-check
run steve fsck
run steve gc --dry-run
say "steve rev-parse does-not-exist   (errors are typed, with a code and an exit status)"
steve rev-parse does-not-exist || echo "exit status $?"

# --- manifests and the stage machine: see examples/lifecycle.sh for more
here="$(cd "$(dirname "$0")" && pwd)"
run steve run new --name tour
run steve design "$here/design.yaml"
say "store the research source, then freeze the research and the plan"
printf 'Content-addressed storage: objects are named by the hash of their bytes.\n' \
  | steve hash-object -w --stdin
run steve research "$here/research.yaml"
run steve plan "$here/plan.yaml"
run steve run goto BUILD --reason "plan reviewed"
run steve run transitions
run steve log --oneline --graph
run steve status
say "from here to the deploy every write goes through steved, the single writer (docs/daemon.md)"
run steve daemon start --ttl 30m
trap 'steve daemon stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
say "build and test the example project in containers (examples/project)"
bash "$here/project/build-and-test.sh"
bash "$here/deploy.sh" "$work/deployed"   # DEPLOY: a real approval, then the certified files
run steve daemon status
run steve daemon stop
say "sign SLSA provenance for the certificate and verify it offline (examples/attest.sh)"
bash "$here/attest.sh"
say "intake -> design -> plan -> build -> test with a model, offline (examples/lifecycle-llm.sh)"
bash "$here/lifecycle-llm.sh"
bash "$here/inspect.sh"    # inspect mode: state, manifests, the DAG, decisions, resources, logs, errors
bash "$here/research.sh"   # RESEARCH offline from a shipped mirror: scope, import, search, cited summaries, freeze, verify
run steve events --type run.transition
run steve events verify
run steve export-git "$work/mirror.git" --all --bare   # manifests -> git commits (dulwich)
run git -C "$work/mirror.git" log --graph --all --format='%h %s'
run steve verify-git "$work/mirror.git"              # audit by hash: needs no key
bash "$here/backup.sh"                                # a backup restored, then rekeyed
bash "$here/secrets.sh"   # a vault secret used by a build step, absent from the export
bash "$here/daemon.sh"   # steved: one writer, event stream with resume (examples/daemon.sh)
bash "$here/ux.sh"       # errors a person can act on, the homely settings, completion
bash "$here/start.sh"    # the guided first run, unattended (steve start --yes)
run steve lock
echo
echo "Everything above lives in $STEVE_DIR/.steve/steve.db, encrypted with SQLCipher."
