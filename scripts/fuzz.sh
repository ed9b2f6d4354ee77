#!/usr/bin/env bash
# Runs every fuzz test of the repository for a few seconds each, on top of
# its seed corpus (which plain `go test` runs too). A failing input is
# written by go test to the package's testdata/fuzz/FuzzX/ folder: commit it,
# it then runs with every `go test` as a regression test.
#
#   FUZZTIME=30s bash scripts/fuzz.sh     # longer
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-3s}
# package                     fuzz test
targets=(
  "./internal/wharf           FuzzRelPath"
  "./internal/ns/catalog      FuzzManifest"
  "./internal/ns/catalog      FuzzPolicyValues"
  "./internal/urlsign         FuzzSignedURL"
  "./internal/ps/serve        FuzzRange"
  "./internal/client          FuzzContentRange"
)
# Every FuzzX of the tree must be listed above.
listed=$(printf '%s\n' "${targets[@]}" | awk '{print $2}' | sort)
found=$(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)\(' --include='*_test.go' internal cmd | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort)
if [ "$listed" != "$found" ]; then
  echo "scripts/fuzz.sh: the fuzz tests listed differ from those in the tree:"; diff <(echo "$listed") <(echo "$found") || true
  exit 1
fi
# Go 1.26's fuzzing coordinator can fail a run at the end of -fuzztime with a
# bare "context deadline exceeded" and no input written (golang/go#75804,
# fixed in Go 1.27): its deadline races the stop of its workers. A real
# finding always writes its input first, so only that signature is run
# again, up to three times in all; any other failure fails at once.
deadline_race() {
  grep -q 'context deadline exceeded' "$1" && ! grep -q 'Failing input written to' "$1"
}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  for try in 1 2 3; do
    echo "fuzz $name ($pkg) for $FUZZTIME"
    if "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" >"$log" 2>&1; then
      break
    fi
    cat "$log"
    if deadline_race "$log" && [ "$try" -lt 3 ]; then
      echo "fuzz $name: stopped by Go's fuzzing coordinator at its deadline with no input found (golang/go#75804); running it again"
      continue
    fi
    echo "fuzz $name: FAILED (the input is in $pkg/testdata/fuzz/$name/)"
    status=1
    break
  done
done
exit $status
