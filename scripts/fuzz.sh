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
status=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "fuzz $name ($pkg) for $FUZZTIME"
  if ! "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" >/tmp/wharf-fuzz-$$.log 2>&1; then
    cat /tmp/wharf-fuzz-$$.log
    echo "fuzz $name: FAILED (the input is in $pkg/testdata/fuzz/$name/)"
    status=1
  fi
done
rm -f /tmp/wharf-fuzz-$$.log
exit $status
