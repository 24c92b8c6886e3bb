#!/usr/bin/env bash
# A signed attestation verified: SLSA provenance for the example project's test
# certificate (an in-toto statement in a DSSE envelope, with a CycloneDX SBOM of
# its artifacts), signed by a signing identity and verified offline with only
# the public key; then a signed tag on the certificate, verified.  Expects
# STEVE_DIR, a key in the environment and a test certificate (made by
# examples/project/build-and-test.sh), like examples/tour.sh sets them.  Needs
# no network.  The identity is a throwaway one in a temporary directory: yours
# lives in ~/.config/steve (`steve identity init`).
set -euo pipefail
keys="$(mktemp -d)"
trap 'rm -rf "$keys"' EXIT
export STEVE_IDENTITY_DIR="$keys/identity"
export STEVE_SIGNING_PASSPHRASE="tour-signing-passphrase"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

run steve identity init            # an Ed25519 key outside the repository
say "steve key show --public > steve.pub.pem   (all a verifier needs)"
steve key show --public | tee "$keys/steve.pub.pem"
cert=$(steve for-each-ref --format '%(objectname)' 'refs/runs/*/test_certificate' | tail -n 1)
run steve attest "$cert" -o "$keys/certificate.intoto.json"
say "the envelope: payloadType, signatures, and the statement's subjects and SBOM"
python3 - "$keys/certificate.intoto.json" <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
print("payloadType:", env["payloadType"], "| keyid:", env["signatures"][0]["keyid"][:16] + "...")
st = json.loads(base64.b64decode(env["payload"]))
print("_type:", st["_type"], "| predicateType:", st["predicateType"])
print("buildType:", st["predicate"]["buildDefinition"]["buildType"])
for s in st["subject"][:4]:
    print("  subject", s["name"][:60], "sha256", s["digest"]["sha256"][:12], "blake3", s["digest"]["blake3"][:12])
for d in st["predicate"]["buildDefinition"]["resolvedDependencies"]:
    if d["name"] in ("image", "sbom"):
        print("  dependency", d["name"], d["uri"][:40] + "...", sorted(d["digest"]))
PY
run steve verify-attestation "$keys/certificate.intoto.json" --key "$keys/steve.pub.pem"
say "one changed byte of the payload: refused"
python3 - "$keys/certificate.intoto.json" "$keys/tampered.json" <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
payload = bytearray(base64.b64decode(env["payload"]))
payload[len(payload) // 2] ^= 1
env["payload"] = base64.b64encode(bytes(payload)).decode()
json.dump(env, open(sys.argv[2], "w"))
PY
steve verify-attestation "$keys/tampered.json" --key "$keys/steve.pub.pem" || echo "exit status $?"
run steve tag -s -m "tested and attested" certified "$cert"
run steve verify-tag certified --key "$keys/steve.pub.pem"
