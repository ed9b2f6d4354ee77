#!/usr/bin/env bash
# test-setup.sh prepares this Debian machine for `go test ./...`: it makes sure
# the services the tests use are installed and running. `make test` runs it
# (as root) before the tests. It is idempotent: run it as often as you like;
# it only acts on what is missing and says what it does.
#
# Steps are small functions; main at the bottom calls them in order. Add a
# step as a function and one line in main.
#
# Environment:
#   WHARF_TEST_PG   PostgreSQL URL the tests use; when set, this script leaves
#                   PostgreSQL alone (it is somebody else's server).
#   PG_WAIT_SECONDS how long to wait for PostgreSQL to accept connections (30).
set -euo pipefail

readonly PG_HOST=127.0.0.1
readonly PG_PORT=5432
readonly PG_TEST_DB=test
PG_WAIT_SECONDS="${PG_WAIT_SECONDS:-30}"

log() { printf 'test-setup: %s\n' "$*"; }
warn() { printf 'test-setup: WARNING: %s\n' "$*" >&2; }
die() {
	printf 'test-setup: ERROR: %s\n' "$*" >&2
	exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# apt_install installs Debian packages that are missing.
apt_install() {
	local missing=()
	local pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
	done
	if ((${#missing[@]} == 0)); then
		return 0
	fi
	if ! is_root; then
		warn "packages missing: ${missing[*]}; run this script as root to install them"
		return 1
	fi
	log "installing ${missing[*]} with apt-get"
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }

# ensure_postgres_installed installs the Debian postgresql package when no
# cluster is configured (best effort: the tests say how to start one).
ensure_postgres_installed() {
	if [[ -d /etc/postgresql ]] && [[ -n "$(ls -A /etc/postgresql)" ]]; then
		return 0
	fi
	log "PostgreSQL is not installed (no /etc/postgresql)"
	if ! apt_install postgresql; then
		warn "could not install postgresql; the PostgreSQL tests will fail (set WHARF_SKIP_PG=1 to skip them)"
		return 1
	fi
}

# pg_version prints the version of the first configured cluster.
pg_version() { ls /etc/postgresql | head -1; }

# ensure_postgres_running starts the cluster unless something already
# answers on $PG_HOST:$PG_PORT, then waits for it.
ensure_postgres_running() {
	if pg_ready; then
		log "PostgreSQL is accepting connections on $PG_HOST:$PG_PORT"
		return 0
	fi
	local version
	version="$(pg_version)"
	[[ -n "$version" ]] || die "no PostgreSQL cluster in /etc/postgresql"
	is_root || die "PostgreSQL is not running; start it as root: pg_ctlcluster --skip-systemctl-redirect $version main start"
	log "starting PostgreSQL $version (cluster main): pg_ctlcluster --skip-systemctl-redirect $version main start"
	# pg_ctlcluster fails when the cluster is already starting; the wait below
	# decides.
	pg_ctlcluster --skip-systemctl-redirect "$version" main start || warn "pg_ctlcluster reported an error; waiting anyway"
	wait_for_postgres
}

wait_for_postgres() {
	local i
	for ((i = 0; i < PG_WAIT_SECONDS; i++)); do
		if pg_ready; then
			log "PostgreSQL is accepting connections on $PG_HOST:$PG_PORT (after ${i}s)"
			return 0
		fi
		sleep 1
	done
	die "PostgreSQL did not accept connections on $PG_HOST:$PG_PORT within ${PG_WAIT_SECONDS}s; see /var/log/postgresql/"
}

# as_postgres runs psql as the postgres superuser over the local socket.
as_postgres() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# ensure_test_access makes the default test DSN work: user postgres may
# connect over TCP from localhost without a password (trust), and the
# database the tests connect to first exists. Tests create and drop their
# own databases from there.
ensure_test_access() {
	local dsn="postgres://postgres@$PG_HOST:$PG_PORT/$PG_TEST_DB?sslmode=disable"
	if psql -X -q "$dsn" -c 'SELECT 1' >/dev/null 2>&1; then
		log "test database reachable as $dsn"
		return 0
	fi
	if ! is_root; then
		warn "cannot connect as $dsn; run this script as root to set up access"
		return 0
	fi
	if ! psql -X -q "postgres://postgres@$PG_HOST:$PG_PORT/postgres?sslmode=disable" -c 'SELECT 1' >/dev/null 2>&1; then
		local hba
		hba="$(as_postgres -At -c 'SHOW hba_file')" || die "cannot reach PostgreSQL as user postgres over the local socket"
		log "allowing passwordless local TCP connections for tests: adding 'host all all $PG_HOST/32 trust' to the top of $hba"
		sed -i "1i host all all $PG_HOST/32 trust" "$hba"
		as_postgres -c 'SELECT pg_reload_conf()' >/dev/null
	fi
	if [[ "$(as_postgres -At -c "SELECT 1 FROM pg_database WHERE datname = '$PG_TEST_DB'")" != 1 ]]; then
		log "creating database $PG_TEST_DB"
		as_postgres -c "CREATE DATABASE $PG_TEST_DB"
	fi
	psql -X -q "$dsn" -c 'SELECT 1' >/dev/null || die "still cannot connect as $dsn"
	log "test database reachable as $dsn"
}

setup_postgres() {
	if [[ -n "${WHARF_TEST_PG:-}" ]]; then
		log "WHARF_TEST_PG is set; leaving PostgreSQL setup to its owner"
		return 0
	fi
	ensure_postgres_installed || return 0
	ensure_postgres_running
	ensure_test_access
}

# setup_volume_tools installs what the real-volume tests (internal/ps/volume,
# internal/testenv/loopfs and the packages that reuse it) mount filesystems
# with: mkfs.ext4 (e2fsprogs), mkfs.xfs (xfsprogs), mkfs.vfat (dosfstools)
# and fusefat (fusefat, which brings fusermount from fuse); sqlite3 stalls the
# PS state DB in e2e.TestRelocationWithStalledCommits. Those tests run
# only as root; they also need /dev/loop-control and /dev/fuse (a container
# must be privileged).
setup_volume_tools() {
	apt_install e2fsprogs xfsprogs dosfstools fusefat sqlite3 ||
		warn "file-system tools missing; the real-volume tests will fail naming the package to install"
	local dev
	for dev in /dev/loop-control /dev/fuse; do
		[[ -e "$dev" ]] || warn "$dev is missing: the real-volume tests cannot mount (privileged container?)"
	done
}

# setup_browser installs Debian's chromium, which the console's browser tests
# (internal/e2e/console_test.go) drive headless through chromedp.
setup_browser() {
	if [[ -x /usr/bin/chromium ]]; then
		log "chromium is installed: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
		return 0
	fi
	apt_install chromium ||
		warn "chromium missing; the console browser tests will fail saying how to install it"
}

# setup_wine installs what the Windows tests (make test-windows) run with:
# Debian's wine64 and the mingw-w64 cross compiler, which builds the
# test-only stand-in bcryptprimitives.dll that Go's Windows runtime needs and
# Wine 8 lacks; then it prepares the cached Wine prefix (scripts/wine/
# prefix.sh). Without them the Windows tests are reported as skipped, with
# the reason, and make test goes on.
setup_wine() {
	local pkgs=(wine64 gcc-mingw-w64-x86-64-win32)
	local missing=() pkg
	for pkg in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
	done
	if ((${#missing[@]} > 0)); then
		if ! is_root; then
			warn "packages missing: ${missing[*]}; the Windows tests will be skipped (run this script as root)"
			return 0
		fi
		log "installing ${missing[*]} with apt-get (no recommends: no X, no fonts)"
		if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; }; then
			warn "could not install ${missing[*]}; the Windows tests will be skipped"
			return 0
		fi
	fi
	local prefix
	if prefix="$(bash "$(dirname "$0")/wine/prefix.sh")"; then
		log "Wine prefix for the Windows tests: $prefix"
	else
		warn "could not prepare the Wine prefix; the Windows tests will be skipped"
	fi
}

# setup_systemd installs systemd-analyze (Debian's systemd package), with
# which e2e.TestSystemdUnitsVerify checks the units of deploy/systemd; no
# systemd needs to run.
setup_systemd() {
	if command -v systemd-analyze >/dev/null 2>&1; then
		return 0
	fi
	apt_install systemd ||
		warn "systemd-analyze missing; the systemd unit test will be skipped, saying so"
}

main() {
	is_root || warn "not running as root: can check, but cannot install or start anything"
	setup_postgres
	setup_volume_tools
	setup_browser
	setup_systemd
	setup_wine
	log "done"
}

main "$@"
