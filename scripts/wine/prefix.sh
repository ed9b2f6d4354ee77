#!/usr/bin/env bash
# prefix.sh prepares the Wine prefix the Windows tests run in (make
# test-windows) and prints its path. It is idempotent and cached: the prefix
# is made once per Wine version and stand-in source, under $WINE_CACHE (see
# lib.sh); later calls only print the path. scripts/test-setup.sh calls it.
#
# What it does, once:
#   1. wineboot --init in a fresh prefix (no Mono or Gecko: nothing needs them);
#   2. builds the test-only stand-in bcryptprimitives.dll (ProcessPrng over
#      RtlGenRandom; see bcryptprimitives.c) with Debian's mingw-w64 cross
#      compiler and puts it into the prefix's system32, then checks it with
#      prngcheck.exe;
#   3. declares the drive types the volume tests use: R: a CD-ROM drive, N:
#      a network drive, A: a removable drive (exec.sh maps the letters to
#      folders for each test binary);
#   4. renames the prefix into place, so a half-made prefix is never used.
#
# Exit status 0 with the path on stdout, or 1 with the reason on stderr.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

find_wine || { wine_log "$WINE_MISSING"; exit 1; }
CC=x86_64-w64-mingw32-gcc
command -v "$CC" >/dev/null || { wine_log "$CC is missing (Debian package gcc-mingw-w64-x86-64-win32)"; exit 1; }

dir="$(prefix_dir)"
if [[ -f "$dir/.wharf-ready" ]]; then
	printf '%s\n' "$dir"
	exit 0
fi
mkdir -p "$WINE_CACHE"
tmp="$(mktemp -d "$WINE_CACHE/new-prefix.XXXXXX")"
trap 'WINEPREFIX="$tmp/prefix" "$WINESERVER" -k 2>/dev/null || true; rm -rf "$tmp"' EXIT
export WINEPREFIX="$tmp/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
start=$SECONDS
wine_log "preparing a Wine prefix in $dir ($("$WINE64" --version))"
"$WINE64" wineboot --init >/dev/null 2>&1 || { wine_log "wineboot --init failed"; exit 1; }
"$WINESERVER" -w

sys32="$WINEPREFIX/drive_c/windows/system32"
"$CC" -O2 -shared -s -o "$sys32/bcryptprimitives.dll" \
	"$WINE_DIR/bcryptprimitives.c" "$WINE_DIR/bcryptprimitives.def" -ladvapi32
"$CC" -O2 -s -o "$tmp/prngcheck.exe" "$WINE_DIR/prngcheck.c"
if ! out="$("$WINE64" "$tmp/prngcheck.exe" 2>&1)"; then
	wine_log "the stand-in bcryptprimitives.dll does not work: $out"
	exit 1
fi

for d in "r:=cdrom" "n:=network" "a:=floppy"; do
	"$WINE64" reg add 'HKLM\Software\Wine\Drives' /v "${d%%=*}" /d "${d#*=}" /f >/dev/null 2>&1
done
"$WINESERVER" -w

touch "$WINEPREFIX/.wharf-ready"
# Another run may have made the same prefix meanwhile (and may be using it):
# keep that one. A leftover without its ready mark is half made: replace it.
if [[ -d "$dir" && ! -f "$dir/.wharf-ready" ]]; then
	rm -rf "$dir"
fi
if ! mv -T "$WINEPREFIX" "$dir" 2>/dev/null && [[ ! -f "$dir/.wharf-ready" ]]; then
	wine_log "cannot move the new prefix into $dir"
	exit 1
fi
# Prefixes of another Wine version or stand-in are garbage once no run can
# still be using them (a day old).
find "$WINE_CACHE" -maxdepth 1 -name 'prefix-*' ! -path "$dir" -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
wine_log "prefix ready in $((SECONDS - start))s"
printf '%s\n' "$dir"
