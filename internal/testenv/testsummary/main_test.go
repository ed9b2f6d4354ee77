package main

import (
	"bytes"
	"strings"
	"testing"
)

// A stream as `go test -json` writes it: a package whose tests pass, fail
// and skip (one for a Wine gap, in a subtest), one that does not build.
const stream = `{"Action":"start","Package":"m/internal/a"}
{"Action":"run","Package":"m/internal/a","Test":"TestPass"}
{"Action":"output","Package":"m/internal/a","Test":"TestPass","Output":"=== RUN   TestPass\n"}
{"Action":"output","Package":"m/internal/a","Test":"TestPass","Output":"--- PASS: TestPass (0.00s)\n"}
{"Action":"pass","Package":"m/internal/a","Test":"TestPass"}
{"Action":"run","Package":"m/internal/a","Test":"TestGap"}
{"Action":"run","Package":"m/internal/a","Test":"TestGap/junction"}
{"Action":"output","Package":"m/internal/a","Test":"TestGap/junction","Output":"wineserver: file_set_error() can't map error: File name too long\n"}
{"Action":"output","Package":"m/internal/a","Test":"TestGap/junction","Output":"    a_test.go:12: WINE GAP: FSCTL_SET_REPARSE_POINT: not supported (Wine 8.0)\n"}
{"Action":"output","Package":"m/internal/a","Test":"TestGap/junction","Output":"--- SKIP: TestGap/junction (0.00s)\n"}
{"Action":"skip","Package":"m/internal/a","Test":"TestGap/junction"}
{"Action":"pass","Package":"m/internal/a","Test":"TestGap"}
{"Action":"run","Package":"m/internal/a","Test":"TestSkip"}
{"Action":"output","Package":"m/internal/a","Test":"TestSkip","Output":"    a_test.go:20: needs root\n"}
{"Action":"skip","Package":"m/internal/a","Test":"TestSkip"}
{"Action":"run","Package":"m/internal/a","Test":"TestFail"}
{"Action":"output","Package":"m/internal/a","Test":"TestFail","Output":"    a_test.go:30: got 1, want 2\n"}
{"Action":"output","Package":"m/internal/a","Test":"TestFail","Output":"--- FAIL: TestFail (0.00s)\n"}
{"Action":"fail","Package":"m/internal/a","Test":"TestFail"}
{"Action":"output","Package":"m/internal/a","Output":"FAIL\n"}
{"Action":"output","Package":"m/internal/a","Output":"FAIL\tm/internal/a\t0.5s\n"}
{"Action":"fail","Package":"m/internal/a"}
{"ImportPath":"m/internal/b [m/internal/b.test]","Action":"build-output","Output":"internal/b/b.go:3:1: syntax error\n"}
{"ImportPath":"m/internal/b [m/internal/b.test]","Action":"build-fail"}
{"Action":"start","Package":"m/internal/b"}
{"Action":"output","Package":"m/internal/b","Output":"FAIL\tm/internal/b [build failed]\n"}
{"Action":"fail","Package":"m/internal/b","FailedBuild":"m/internal/b [m/internal/b.test]"}
`

func TestSummary(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out)
	if err := s.read(strings.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	if s.finish("Windows tests") {
		t.Error("finish reported success for a stream with failures")
	}
	got := out.String()
	for _, want := range []string{
		"FAIL\tm/internal/a\t0.5s\t[4 tests: 2 passed, 1 failed, 1 skipped]\n",
		"a_test.go:30: got 1, want 2",
		"internal/b/b.go:3:1: syntax error",
		"FAIL\tm/internal/b [build failed]\t[0 tests: 0 passed, 0 failed, 0 skipped]\n",
		"Windows tests: 2 packages, 4 tests run: 2 passed, 1 failed, 1 skipped\n",
		"  SKIP internal/a TestGap/junction: WINE GAP: FSCTL_SET_REPARSE_POINT: not supported (Wine 8.0)\n  SKIP internal/a TestSkip: needs root\n",
		"\nFAIL\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "=== RUN   TestPass") {
		t.Errorf("output shows a passing test's lines:\n%s", got)
	}
}

func TestSummaryAllPass(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out)
	in := `{"Action":"run","Package":"m/x","Test":"TestA"}
{"Action":"pass","Package":"m/x","Test":"TestA"}
{"Action":"output","Package":"m/x","Output":"ok  \tm/x\t0.1s\n"}
{"Action":"pass","Package":"m/x"}
`
	if err := s.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if !s.finish("tests") {
		t.Errorf("finish reported failure:\n%s", out.String())
	}
	if want := "ok  \tm/x\t0.1s\t[1 tests: 1 passed, 0 failed, 0 skipped]\n"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}
