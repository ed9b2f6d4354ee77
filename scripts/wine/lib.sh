# lib.sh: shared by the scripts that run Wharf's Windows tests under Wine
# (scripts/wine/prefix.sh, scripts/wine/exec.sh, scripts/test-windows.sh).
# Source it; it defines variables and functions only.

# WINE_DIR is where this file lives; the C sources of the stand-in are here.
WINE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# WINE_CACHE holds the prepared Wine prefix (one per Wine version and
# stand-in source) and the per-test-binary copies while they run.
WINE_CACHE="${WHARF_WINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wharf/wine}"

wine_log() { printf 'wine: %s\n' "$*" >&2; }

# find_wine sets WINE64 and WINESERVER to Debian's wine64 loader and
# wineserver, or returns 1 with WINE_MISSING saying what is missing.
find_wine() {
	WINE64="" WINESERVER="" WINE_MISSING=""
	local c
	for c in "$(command -v wine64 2>/dev/null)" /usr/lib/wine/wine64 /usr/lib/x86_64-linux-gnu/wine/wine64; do
		if [[ -n "$c" && -x "$c" ]]; then
			WINE64="$c"
			break
		fi
	done
	for c in "$(command -v wineserver 2>/dev/null)" /usr/lib/wine/wineserver /usr/lib/x86_64-linux-gnu/wine/wineserver; do
		if [[ -n "$c" && -x "$c" ]]; then
			WINESERVER="$c"
			break
		fi
	done
	if [[ -z "$WINE64" || -z "$WINESERVER" ]]; then
		WINE_MISSING="wine64 is not installed (Debian package wine64; scripts/test-setup.sh installs it as root)"
		return 1
	fi
}

# prefix_key names a prepared prefix: it changes with the Wine version and
# with the stand-in's sources and the script that prepares the prefix.
prefix_key() {
	{
		"$WINE64" --version 2>/dev/null
		cat "$WINE_DIR/bcryptprimitives.c" "$WINE_DIR/bcryptprimitives.def" "$WINE_DIR/prngcheck.c" "$WINE_DIR/prefix.sh"
	} | sha256sum | cut -c1-16
}

# prefix_dir prints the directory of the prepared prefix (which may not
# exist yet).
prefix_dir() { printf '%s/prefix-%s\n' "$WINE_CACHE" "$(prefix_key)"; }
