// Package winetest helps the Windows tests (`_windows_test.go` files) that
// `make test-windows` runs under Wine (scripts/test-windows.sh).
//
// Wine emulates most of what the Package Server calls, not all. A test that
// reaches a call Wine lacks must say which call and be reported as skipped,
// never passed: [Gap] skips with a message starting "WINE GAP:", which the
// summary of make test-windows lists apart. On Windows itself (Version
// returns "") the same error fails the test, as it would on a customer's
// machine.
//
// scripts/wine/exec.sh maps drives for every test binary and names them in
// WHARF_WINE_DRIVES: [Drive] finds one by kind ("ext4" volumes D: and E:,
// "cdrom", "network", "removable").
package winetest
