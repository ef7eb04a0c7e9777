#!/bin/sh
# A short tortiectl session against a throwaway embedded (SQLite) store: apply the demo
# manifests, show them in several formats, label one, then show that a file with a mistake is
# rejected as a whole with one message naming file, document, line and field.
#
# Usage: control/cli/examples/demo.sh [path/to/tortiectl]   (default: target/release/tortiectl)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tortiectl=${1:-target/release/tortiectl}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT INT TERM
export DATASTORE_TYPE=sqlite SQLITE_PATH="$dir/tortie.db"

run() {
    printf '\n$ tortiectl %s\n' "$*"
    "$tortiectl" "$@"
}

run version
run apply -f "$here/demo-manifests"
run get tiers
run get ippools -o wide
run get globalnetworkpolicies -o wide
run get networkpolicies -A
run get networksets -A -o yaml
run get hostendpoints -o wide
run label hostendpoint node-1-eth0 zone=rack-a
run get hep node-1-eth0 -o custom-columns=NAME,NODE,ZONE:.metadata.labels.zone

printf '\n# A file with a mistake is rejected as a whole (exit status 1):\n'
if run apply -f "$here/demo-bad/bad-policy.yaml"; then
    echo "demo: the bad file was accepted" >&2
    exit 1
fi
printf '\n# Its valid first document (NetworkSet good-set) was not written either:\n'
run get networksets -A
