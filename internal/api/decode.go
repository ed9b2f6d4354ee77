package api

import (
	"errors"
	"fmt"
	"io"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Unmarshal decodes data, which must hold exactly one JSON value, into v,
// strictly: the one decoder of every JSON body the API receives. Besides
// malformed JSON it refuses what encoding/json lets through:
//
//   - a member name twice in one object (encoding/json keeps the last);
//   - a member name that matches a field only when case is ignored
//     ("Name" for "name"), and any unknown member;
//   - invalid UTF-8, in strings and in names (encoding/json replaces it
//     by U+FFFD silently), including escaped lone surrogates ("\ud800");
//   - anything after the value.
//
// The error says what was wrong and where (a JSON pointer).
func Unmarshal(data []byte, v any) error {
	err := jsonv2.Unmarshal(data, v, jsonv2.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s", describe(err))
}

// describe shortens a decoding error to what a client needs: the problem
// and where, without the package's "json: " prefix.
func describe(err error) string {
	var se *jsonv2.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &syn):
		if syn.JSONPointer != "" {
			return fmt.Sprintf("at %s: %v", syn.JSONPointer, syn.Err)
		}
		return fmt.Sprintf("at byte %d: %v", syn.ByteOffset, syn.Err)
	case errors.As(err, &se):
		where := string(se.JSONPointer)
		if where == "" {
			where = "/"
		}
		var msg string
		switch {
		case se.Err != nil:
			msg = se.Err.Error()
		case se.GoType != nil && se.JSONKind != 0:
			msg = fmt.Sprintf("a JSON %s where %s was expected", se.JSONKind, se.GoType)
		default:
			msg = strings.TrimPrefix(err.Error(), "json: ")
		}
		if errors.Is(err, jsonv2.ErrUnknownName) {
			msg = "unknown member (names are matched exactly, case included)"
		}
		return fmt.Sprintf("at %s: %s", where, msg)
	}
	return err.Error()
}

// ReadJSON reads r to its end, at most limit bytes (a longer body is an
// error wrapping ErrBodyTooLarge), and decodes it with Unmarshal.
func ReadJSON(r io.Reader, limit int64, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return err
	}
	if int64(len(data)) > limit {
		return ErrBodyTooLarge
	}
	return Unmarshal(data, v)
}

// ErrBodyTooLarge is ReadJSON's error for a body over its limit.
var ErrBodyTooLarge = errors.New("body too large")
