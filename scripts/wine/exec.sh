#!/usr/bin/env bash
# exec.sh runs one Windows test binary under Wine: it is the -exec program of
# `go test` in scripts/test-windows.sh (go test calls it as
# `exec.sh pkg.test.exe [test flags]`).
#
# Every test binary gets a private copy of the prepared prefix (hard links,
# with the registry files copied, so tests may change the registry, install
# services and map drives without seeing each other) and its own wineserver,
# and these drives:
#   D: and E:  folders on two loop-mounted ext4 volumes (as root, when loop
#              devices work): two real volumes for cross-volume moves;
#   R:, N:, A: empty folders that Wine reports as a CD-ROM, a network and a
#              removable drive (declared in the prefix by prefix.sh).
# The test binary learns them from WHARF_WINE_DRIVES ("D:=ext4 E:=ext4
# R:=cdrom N:=network A:=removable"); internal/testenv/winetest reads it.
# On exit everything is torn down: Wine processes, mounts, the copy.
#
# Environment: WHARF_WINE_PREFIX, the prepared prefix (prefix.sh prints it).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

bin="$1"
shift
prefix="${WHARF_WINE_PREFIX:?set WHARF_WINE_PREFIX to the path prefix.sh prints}"
find_wine || { wine_log "$WINE_MISSING"; exit 1; }

mkdir -p "$WINE_CACHE/run"
work="$(mktemp -d "$WINE_CACHE/run/test.XXXXXX")"
mounts=()
cleanup() {
	WINEPREFIX="$work/prefix" "$WINESERVER" -k >/dev/null 2>&1
	WINEPREFIX="$work/prefix" "$WINESERVER" -w >/dev/null 2>&1
	local m
	for m in "${mounts[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM QUIT HUP

# The copy: hard links are instant (the prefix is ~700 MB of DLLs Wine never
# writes to); the registry files are copied, as wineserver rewrites them.
if ! cp -al "$prefix" "$work/prefix" 2>/dev/null; then
	rm -rf "$work/prefix"
	cp -a "$prefix" "$work/prefix"
fi
for f in "$prefix"/*.reg; do
	cp --remove-destination "$f" "$work/prefix/"
done
dosdevices="$work/prefix/dosdevices"

drives=()
note=""
if [[ "$(id -u)" -eq 0 && -e /dev/loop-control ]] && command -v mkfs.ext4 >/dev/null; then
	for letter in d e; do
		img="$work/$letter.img" mnt="$work/vol-$letter"
		mkdir -p "$mnt"
		truncate -s 128M "$img"
		if mkfs.ext4 -q -F "$img" >/dev/null 2>&1 && mount -o loop "$img" "$mnt" 2>/dev/null; then
			mounts+=("$mnt")
			# A folder on the volume, not its root: Wine reads a drive
			# mapped to a block device's mount point as a raw device
			# and cannot name its file system.
			mkdir -p "$mnt/wine"
			ln -s "$mnt/wine" "$dosdevices/$letter:"
			drives+=("${letter^^}:=ext4")
		else
			note="cannot loop-mount an ext4 volume here"
			break
		fi
	done
else
	note="the D: and E: volumes need root, /dev/loop-control and mkfs.ext4"
fi
for d in "r:=cdrom" "n:=network" "a:=removable"; do
	mkdir -p "$work/drive-${d:0:1}"
	l="${d%%=*}"
	ln -s "$work/drive-${d:0:1}" "$dosdevices/$l"
	drives+=("${l^^}=${d#*=}")
done

export WINEPREFIX="$work/prefix" WINEDEBUG="${WINEDEBUG:--all}" WINEDLLOVERRIDES="mscoree,mshtml="
export WHARF_WINE_DRIVES="${drives[*]}" WHARF_WINE_DRIVES_NOTE="$note"
"$WINE64" "$bin" "$@"
