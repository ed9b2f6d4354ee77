package api

import (
	"strings"
	"testing"
	"time"
)

func TestUnmarshalStrict(t *testing.T) {
	var m PackageManifest
	good := `{"name":"a","version":"1","files":[{"path":"x","size":1,"sha256":"00"}],"assignment":{"all":true}}`
	if err := Unmarshal([]byte(good), &m); err != nil {
		t.Fatalf("good manifest refused: %v", err)
	}
	if m.Name != "a" || len(m.Files) != 1 || !m.Assignment.All {
		t.Fatalf("decoded %+v", m)
	}
	var p Package
	if err := Unmarshal([]byte(`{"id":"x","name":"n","created_at":"2024-01-02T03:04:05Z","files":[]}`), &p); err != nil || p.Name != "n" || p.CreatedAt.Year() != 2024 {
		t.Fatalf("embedded summary: %+v, %v", p, err)
	}
	bad := map[string]string{
		"duplicate key":       `{"name":"a","name":"b"}`,
		"duplicate nested":    `{"assignment":{"all":true,"all":false}}`,
		"case-mismatched":     `{"Name":"a"}`,
		"unknown":             `{"nmae":"a"}`,
		"invalid UTF-8":       "{\"name\":\"\xff\xfe\"}",
		"lone surrogate":      `{"name":"\ud800"}`,
		"invalid UTF-8 name":  "{\"na\xffme\":\"a\"}",
		"trailing data":       `{"name":"a"} {}`,
		"trailing garbage":    `{"name":"a"}x`,
		"truncated":           `{"name":"a"`,
		"wrong type":          `{"name":1}`,
		"empty":               ``,
		"fraction into int64": `{"files":[{"size":1.5}]}`,
	}
	for what, body := range bad {
		var m PackageManifest
		err := Unmarshal([]byte(body), &m)
		if err == nil {
			t.Errorf("%s: %q accepted as %+v", what, body, m)
			continue
		}
		if strings.Contains(err.Error(), "json: ") {
			t.Errorf("%s: error %q keeps the package prefix", what, err)
		}
		t.Logf("%s: %v", what, err)
	}
	var ts struct {
		At time.Time `json:"at"`
	}
	if err := Unmarshal([]byte(`{"at":"2024-01-02T03:04:05.123456Z"}`), &ts); err != nil {
		t.Fatalf("time: %v", err)
	}
}

func TestReadJSONLimit(t *testing.T) {
	var m PackageManifest
	if err := ReadJSON(strings.NewReader(`{"name":"abcdef"}`), 10, &m); err != ErrBodyTooLarge {
		t.Fatalf("over the limit: %v, want ErrBodyTooLarge", err)
	}
	if err := ReadJSON(strings.NewReader(`{"name":"a"}`), 12, &m); err != nil || m.Name != "a" {
		t.Fatalf("at the limit: %v", err)
	}
}
