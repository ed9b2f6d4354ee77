#!/usr/bin/env bash
# Runs Wharf's benchmarks. Each prints its own figure next to a reference
# measured in the same run, and the ratio between them.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== blob upload through the NS API vs a raw write + fsync of the same bytes (256 MiB)"
go test -run '^$' -bench 'BenchmarkBlobUpload' -benchtime 3x ./internal/ns/httpapi/
