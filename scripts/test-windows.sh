#!/usr/bin/env bash
# test-windows.sh cross-compiles the Windows test binaries of the packages
# with Windows code and runs them under Wine (make test-windows; make test
# runs it after the Linux tests). It prints go test's ok/FAIL line of every
# package with the number of tests run, passed, failed and skipped, the
# output of failed tests, and every skipped test with its reason — those
# skipped because Wine lacks a call the product needs ("WINE GAP: <call>")
# first.
#
# When Wine cannot be used (not installed, no prefix) the Windows tests are
# reported as skipped with the reason — never as passed — and the script
# exits 0, so `make test` does not fail because of the machine.
#
# The harness is test scaffolding, not product: scripts/wine/ (the prefix,
# a stand-in bcryptprimitives.dll, the -exec wrapper that maps drives) and a
# Go overlay (below). Environment:
#   WHARF_WINE_PKGS   packages to run instead of those found below
#   WHARF_WINE_FLAGS  more go test flags (e.g. "-run TestJunction -v")
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/wine/lib.sh

GO="${GO:-go}"
# The packages with Windows code or Windows tests (a _windows.go or
# _windows_test.go file), found afresh on every run, and these, which have
# none but run the product's storage on Windows: the PS state DB (SQLite)
# and the NS blob store.
also=(./internal/ps/store ./internal/ns/blobs)
if [[ -n "${WHARF_WINE_PKGS:-}" ]]; then
	read -r -a pkgs <<<"$WHARF_WINE_PKGS"
else
	mapfile -t pkgs < <(
		{
			GOOS=windows "$GO" list -f '{{.ImportPath}}{{range .GoFiles}} {{.}}{{end}}{{range .TestGoFiles}} {{.}}{{end}}{{range .XTestGoFiles}} {{.}}{{end}}' ./... |
				awk '/_windows(_test)?\.go/ {print $1}'
			for p in "${also[@]}"; do
				[[ -d "$p" ]] && GOOS=windows "$GO" list "$p"
			done
		} | sort -u
	)
fi

skip_all() {
	local p
	for p in "${pkgs[@]}"; do
		printf 'SKIP\t%s\t[Windows tests not run: %s]\n' "$p" "$1"
	done
	printf '\nWindows tests under Wine: NOT RUN, every package skipped: %s\n' "$1"
	exit 0
}

find_wine || skip_all "$WINE_MISSING"
prefix="$(bash scripts/wine/prefix.sh)" || skip_all "the Wine prefix could not be prepared (see the messages above)"

# Wine 8 answers NtSetInformationFile(FileDispositionInformationEx) with
# STATUS_NOT_IMPLEMENTED, which Go's os.RemoveAll and os.Root.Remove (via
# internal/syscall/windows.Deleteat) do not take for "unsupported": every
# t.TempDir cleanup would fail. The overlay adds that status to the ones
# after which Deleteat falls back to FileDispositionInfo — the path Go takes
# on Windows before 10 1607 and on FAT — in the test binaries only. The
# product's code is unchanged; the summary notes the overlay.
overlay_flag=()
goroot="$("$GO" env GOROOT)"
src="$goroot/src/internal/syscall/windows/at_windows.go"
ovdir="$WINE_CACHE/overlay-$("$GO" env GOVERSION)"
if [[ -f "$ovdir/overlay.json" ]]; then
	overlay_flag=(-overlay "$ovdir/overlay.json")
elif [[ -f "$src" ]] && grep -q '^		STATUS_NOT_SUPPORTED: ' "$src"; then
	mkdir -p "$ovdir"
	sed 's|^\(\t\t\)STATUS_NOT_SUPPORTED: |\1STATUS_NOT_SUPPORTED, NTStatus(0xC0000002) /* STATUS_NOT_IMPLEMENTED: Wine 8 */: |' \
		"$src" >"$ovdir/at_windows.go"
	printf '{"Replace":{"%s":"%s"}}\n' "$src" "$ovdir/at_windows.go" >"$ovdir/overlay.json"
	overlay_flag=(-overlay "$ovdir/overlay.json")
else
	wine_log "WARNING: cannot make the Deleteat overlay for $("$GO" env GOVERSION) ($src changed); os.RemoveAll will fail under Wine 8"
fi

echo "Windows tests under Wine ($("$WINE64" --version)), prefix $prefix"
start=$SECONDS
export WHARF_WINE_PREFIX="$prefix"
# -p 2: each binary has its own prefix copy and wineserver; more at once
# only makes the machine thrash.
GOOS=windows GOARCH=amd64 "$GO" test -count=1 -p 2 -timeout 10m "${overlay_flag[@]}" \
	-exec "$PWD/scripts/wine/exec.sh" -json ${WHARF_WINE_FLAGS:-} "${pkgs[@]}" 2>&1 |
	"$GO" run ./internal/testenv/testsummary -title "Windows tests under Wine"
status=$?
echo "Windows tests took $((SECONDS - start))s"
if ((status != 0)); then
	echo "hint: a test that fails here with Unix paths (/vol/a, /a/store) over the fakes is not a Windows test:"
	echo "      give its file a //go:build !windows line (README.md, \"Windows tests under Wine\")"
fi
if ((${#overlay_flag[@]})); then
	echo "note: test binaries built with a Go overlay letting os.RemoveAll fall back when Wine answers STATUS_NOT_IMPLEMENTED (see scripts/test-windows.sh)"
fi
exit $status
