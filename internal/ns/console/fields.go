package console

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// fieldSpec describes one policy field for the forms: its JSON name (the
// catalog names fields so in its errors), label and input kind.
type fieldSpec struct {
	Name  string
	Label string
	Kind  string // location, bool, mode, int, rate
	Help  string
}

var (
	packageServerFields = []fieldSpec{
		{"windows_location", "Windows primary file storage location", "location", `"default" (<install dir>\Package Delivery) or a path such as E:\Store\PS-packages`},
		{"linux_location", "Linux primary file storage location", "location", `"default" (<install dir>/Package Delivery) or an absolute path such as /srv/wharf`},
		{"all_fixed_drives", "Allow usage of all fixed drives", "bool", "store packages on other fixed drives when the primary one runs low"},
		{"relocation_mode", "Relocation mode", "mode", "online keeps serving while packages move; exclusive pauses serving"},
	}
	siteServerFields = []fieldSpec{
		{"poll_interval_seconds", "Config poll interval", "int", "seconds a configuration long-poll waits, 1 to 300"},
		{"download_concurrency", "Download concurrency", "int", "package files a Package Server downloads at once, 1 to 64"},
		{"download_bandwidth", "Download bandwidth limit", "rate", "such as 50MB/s or 20MiB/s; 0 for no limit"},
	}
)

func fieldsOf(kind string) []fieldSpec {
	if kind == api.PolicySiteServer {
		return siteServerFields
	}
	return packageServerFields
}

// fieldValues turns settings (a struct of pointer fields) into form text
// per JSON field name, for the fields that are set.
func fieldValues(settings any, specs []fieldSpec) map[string]string {
	data, _ := json.Marshal(settings)
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(data, &raw)
	out := map[string]string{}
	for _, f := range specs {
		v, ok := raw[f.Name]
		if !ok {
			continue
		}
		switch f.Kind {
		case "bool":
			var b bool
			_ = json.Unmarshal(v, &b)
			out[f.Name] = yesNo(b)
		case "int":
			out[f.Name] = string(v)
		case "rate":
			var n int64
			_ = json.Unmarshal(v, &n)
			out[f.Name] = rateInput(n)
		default:
			var s string
			_ = json.Unmarshal(v, &s)
			out[f.Name] = s
		}
	}
	return out
}

// displayValue shows a field's form text for reading.
func displayValue(f fieldSpec, text string) string {
	if f.Kind == "rate" {
		if n, err := parseRate(text); err == nil {
			return formatRate(n)
		}
	}
	if f.Kind == "int" && f.Name == "poll_interval_seconds" {
		return text + " s"
	}
	return text
}

// rateInput writes a rate so that parseRate reads it back exactly, in the
// unit it was most likely given in.
func rateInput(n int64) string {
	if n <= 0 {
		return "0"
	}
	return wharf.FormatRate(n)
}

// parseField reads one field's form text into its JSON value.
func parseField(f fieldSpec, text string) (any, error) {
	text = strings.TrimSpace(text)
	switch f.Kind {
	case "bool":
		switch text {
		case "yes", "true", "on":
			return true, nil
		case "no", "false", "":
			return false, nil
		}
		return nil, fmt.Errorf("want yes or no")
	case "int":
		n, err := strconv.Atoi(text)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", text)
		}
		return n, nil
	case "rate":
		return parseRate(text)
	case "location":
		if text == "" {
			return nil, fmt.Errorf(`enter "default" or a path`)
		}
	}
	return text, nil
}

// settingsFrom builds settings of type T from JSON values per field name.
func settingsFrom[T any](values map[string]any) (T, error) {
	var out T
	data, err := json.Marshal(values)
	if err != nil {
		return out, err
	}
	err = json.Unmarshal(data, &out)
	return out, err
}

// fieldErrorStart finds where one field's problem starts in a catalog
// error: the catalog joins them as "field: problem; field: problem".
var fieldErrorStart = regexp.MustCompile(`(?:^|; )([a-z_]+): `)

// fieldErrors splits a catalog validation message into one message per
// known field; what names no known field comes back as rest.
func fieldErrors(msg string, specs []fieldSpec) (map[string]string, string) {
	known := map[string]bool{}
	for _, f := range specs {
		known[f.Name] = true
	}
	out := map[string]string{}
	locs := fieldErrorStart.FindAllStringSubmatchIndex(msg, -1)
	var starts [][]int
	for _, l := range locs {
		if known[msg[l[2]:l[3]]] {
			starts = append(starts, l)
		}
	}
	if len(starts) == 0 {
		return out, msg
	}
	rest := strings.TrimSuffix(msg[:starts[0][0]], "; ")
	for i, l := range starts {
		end := len(msg)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		out[msg[l[2]:l[3]]] = msg[l[3]+2 : end]
	}
	return out, rest
}
