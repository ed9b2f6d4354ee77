// Command testsummary reads the output of `go test -json` on stdin and
// prints what `go test` would — the ok/FAIL line of every package and the
// output of every failed test — with, on each package's line, how many
// tests ran, passed, failed and were skipped. At the end it lists every
// skipped test with its reason, those skipped because the platform lacks a
// call the product needs (a skip message starting "WINE GAP:", see
// internal/testenv/winetest) first. scripts/test-windows.sh pipes the
// Windows tests it runs under Wine through it.
//
// Counts are of top-level tests; a subtest's skip is listed with its
// reason but counted within its parent. The exit status is 1 when a test,
// a package or a build failed, and 0 otherwise.
//
// Usage:
//
//	go test -json ./... | go run ./internal/testenv/testsummary [-title NAME]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	title := flag.String("title", "tests", "what the summary calls the tests (\"Windows tests under Wine\")")
	flag.Parse()
	s := newSummary(os.Stdout)
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: %v\n", err)
		os.Exit(1)
	}
	if !s.finish(*title) {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	FailedBuild string
	ImportPath  string
}

// counts are one package's top-level tests.
type counts struct{ run, pass, fail, skip int }

type skip struct{ pkg, test, reason string }

type summary struct {
	w       io.Writer
	counts  map[string]*counts
	output  map[string][]string // test output so far, by package + "\x00" + test
	skips   []skip
	failed  bool
	pkgs    []string // in the order they ended
	pkgLine map[string]string
}

func newSummary(w io.Writer) *summary {
	return &summary{w: w, counts: map[string]*counts{}, output: map[string][]string{}, pkgLine: map[string]string{}}
}

func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not an event: go test's own messages (a build error of a
			// package with no test binary, "no Go files"): pass them on.
			fmt.Fprintf(s.w, "%s\n", line)
			if len(line) > 0 {
				s.failed = s.failed || strings.HasPrefix(string(line), "FAIL")
			}
			continue
		}
		s.event(e)
	}
	return sc.Err()
}

func (s *summary) c(pkg string) *counts {
	c := s.counts[pkg]
	if c == nil {
		c = &counts{}
		s.counts[pkg] = c
	}
	return c
}

func (s *summary) event(e event) {
	key := e.Package + "\x00" + e.Test
	top := e.Test != "" && !strings.Contains(e.Test, "/")
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.w, e.Output)
	case "build-fail":
		s.failed = true
	case "run":
		if top {
			s.c(e.Package).run++
		}
	case "output":
		if e.Test == "" {
			// The package's own lines: "ok", "FAIL", "PASS", panics.
			out := strings.TrimRight(e.Output, "\n")
			switch {
			case out == "PASS" || out == "FAIL" || out == "":
			case strings.HasPrefix(out, "ok  \t") || strings.HasPrefix(out, "FAIL\t") || strings.HasPrefix(out, "?   \t"):
				s.pkgLine[e.Package] = out
			default:
				fmt.Fprintln(s.w, out)
			}
			return
		}
		s.output[key] = append(s.output[key], e.Output)
	case "pass", "fail", "skip":
		if e.Test == "" {
			s.endPackage(e)
			return
		}
		c := s.c(e.Package)
		if top {
			switch e.Action {
			case "pass":
				c.pass++
			case "fail":
				c.fail++
			case "skip":
				c.skip++
			}
		}
		switch e.Action {
		case "fail":
			s.failed = true
			// A test's own lines only: a failed subtest printed its
			// lines when it ended.
			for _, l := range s.output[key] {
				fmt.Fprint(s.w, l)
			}
		case "skip":
			s.skips = append(s.skips, skip{e.Package, e.Test, skipReason(s.output[key])})
		}
		delete(s.output, key)
	}
}

// skipReason is the message of t.Skip: the output lines that are not the
// test's own === and --- lines.
func skipReason(lines []string) string {
	var msg []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		// "file_test.go:12: message": drop the position.
		if i := strings.Index(t, ": "); i > 0 && strings.Contains(t[:i], ".go:") {
			t = t[i+2:]
		}
		if strings.HasPrefix(t, "WINE GAP:") {
			return t // the reason; other lines are noise (Wine's own messages on stderr)
		}
		msg = append(msg, t)
	}
	if len(msg) == 0 {
		return "(no reason given)"
	}
	return strings.Join(msg, " / ")
}

func (s *summary) endPackage(e event) {
	line := s.pkgLine[e.Package]
	if line == "" {
		switch e.Action {
		case "pass":
			line = "ok  \t" + e.Package
		case "fail":
			line = "FAIL\t" + e.Package
		default:
			line = "?   \t" + e.Package
		}
	}
	if e.Action == "fail" {
		s.failed = true
	}
	c := s.c(e.Package)
	if c.run > 0 || e.Action != "skip" {
		line += fmt.Sprintf("\t[%d tests: %d passed, %d failed, %d skipped]", c.run, c.pass, c.fail, c.skip)
	}
	fmt.Fprintln(s.w, line)
	s.pkgs = append(s.pkgs, e.Package)
}

// finish prints the totals and the skips; it reports whether everything
// passed.
func (s *summary) finish(title string) bool {
	var t counts
	for _, p := range s.pkgs {
		c := s.c(p)
		t.run += c.run
		t.pass += c.pass
		t.fail += c.fail
		t.skip += c.skip
	}
	fmt.Fprintf(s.w, "\n%s: %d packages, %d tests run: %d passed, %d failed, %d skipped\n",
		title, len(s.pkgs), t.run, t.pass, t.fail, t.skip)
	sort.SliceStable(s.skips, func(i, j int) bool {
		return isGap(s.skips[i].reason) && !isGap(s.skips[j].reason)
	})
	if len(s.skips) > 0 {
		fmt.Fprintln(s.w, "skipped:")
		for _, k := range s.skips {
			fmt.Fprintf(s.w, "  SKIP %s %s: %s\n", short(k.pkg), k.test, k.reason)
		}
	}
	ok := !s.failed && t.fail == 0
	if ok {
		fmt.Fprintln(s.w, "PASS")
	} else {
		fmt.Fprintln(s.w, "FAIL")
	}
	return ok
}

func isGap(reason string) bool { return strings.HasPrefix(reason, "WINE GAP:") }

// short drops the module path from a package path.
func short(pkg string) string {
	if i := strings.Index(pkg, "/internal/"); i >= 0 {
		return pkg[i+1:]
	}
	return pkg
}
