#!/usr/bin/env bash
# Runs Wharf's benchmarks. Each prints its own figure next to a reference
# measured in the same run, and the ratio between them. As root on Debian it
# installs the reference tools it needs (nginx, wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs() {
	local missing=()
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
	done
	if ((${#missing[@]})); then
		echo "bench: installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
			{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
		# The Debian package starts a system nginx; the benchmark runs its own.
		systemctl stop nginx 2>/dev/null || service nginx stop 2>/dev/null || true
	fi
}

need_debs nginx:nginx-light wrk:wrk

echo "== blob upload through the NS API vs a raw write + fsync of the same bytes (256 MiB)"
go test -run '^$' -bench 'BenchmarkBlobUpload' -benchtime 3x ./internal/ns/httpapi/ | grep -E '^Benchmark|^ok'

echo "== fleet: simulated Package Servers long-polling wharf ns serve (idle cost, change latency, enrollment wake-ups)"
# 10,000 pollers hold 10,000 connections in the simulator and as many in the NS.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 20100 ]; then
	echo "   open-file limit $(ulimit -n): 10,000 pollers need about 10,100 per process; sizes above it may fail"
fi
bash scripts/test-setup.sh >/dev/null || echo "   test-setup failed: the PostgreSQL runs may fail" # the PostgreSQL runs
go test -run '^$' -bench 'BenchmarkFleet' -benchtime 1x -timeout 60m ./internal/e2e/ | grep -E '^(fleet|  |Benchmark|ok)'

echo "== serving: wharf ps serve vs nginx on the same package files (wrk, loopback): 4 KiB and 64 KiB req/s, 100 MiB MB/s, the same over TLS with one certificate; wharf get of 1 GiB vs curl from the same PS"
go test -run '^$' -bench 'BenchmarkServeVsNginx' -benchtime 1x ./internal/e2e/ | grep -E '^Benchmark|^ok'

if [ "$(id -u)" = 0 ]; then
	need_debs rsync:rsync
	echo "== cross-volume relocation vs cp -a + rm -rf, mv, rsync --remove-source-files, 4 parallel cp -a (two loop-mounted ext4 volumes, caches dropped, final sync)"
	echo "   speed-vs-TOOL = the tool's time / the relocation's time (above 1: the relocation is faster)"
	go test -run '^$' -bench 'BenchmarkCrossVolume' -benchtime 1x -timeout 30m ./internal/ps/relocate/ | grep -E '^Benchmark|^ok'
	echo "== same-volume relocation of 100,000 packages (one rename each)"
	go test -run '^$' -bench 'BenchmarkSameVolume' -benchtime 1x -timeout 30m ./internal/ps/relocate/ | grep -E '^Benchmark|^ok'
	echo "== a Package Server with ${WHARF_LARGE_N:-100000} small packages: download rate first/last 10 %, restart, RSS, status and console times, relocations under client load"
	go test -run '^$' -bench 'BenchmarkLargeStore' -benchtime 1x -timeout 4h ./internal/e2e/ | grep -E '^(Benchmark|  |ok)'
else
	echo "== relocation benchmarks skipped: they loop-mount volumes and need root"
fi
