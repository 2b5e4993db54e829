package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"portico.dev/portico/api/v1alpha1"
)

// yamlDoc is one YAML document and the 1-based file line it starts on.
type yamlDoc struct {
	text []byte
	line int
}

// splitYAML splits a YAML stream at "---" and "..." markers and drops documents that
// hold only blank lines and comments. The raw text of each document is kept (rather
// than re-encoded) so that scalars decode against the target type.
func splitYAML(data []byte) []yamlDoc {
	var docs []yamlDoc
	var cur bytes.Buffer
	start := 1
	flush := func(next int) {
		if !blankYAML(cur.String()) {
			docs = append(docs, yamlDoc{text: bytes.Clone(cur.Bytes()), line: start})
		}
		cur.Reset()
		start = next
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for i, ln := range lines {
		text := strings.TrimRight(string(ln), "\r\n")
		switch {
		case text == "---" || strings.HasPrefix(text, "--- ") || strings.HasPrefix(text, "---\t"):
			flush(i + 1)
			cur.WriteString(text[3:] + "\n") // "--- {inline: doc}" keeps its content
		case text == "..." || strings.HasPrefix(text, "... "):
			flush(i + 2)
		default:
			cur.Write(ln)
		}
	}
	flush(0)
	return docs
}

func blankYAML(s string) bool {
	for line := range strings.SplitSeq(s, "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// decodeTree parses a document into generic JSON values (numbers as json.Number).
// YAML parser messages get file-relative line numbers.
func decodeTree(data []byte, isJSON bool, line int) (any, error) {
	js := data
	if !isJSON {
		var err error
		js, err = yaml.YAMLToJSONStrict(data)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
			msg = strings.Join(strings.Fields(strings.TrimPrefix(msg, "yaml: ")), " ")
			msg = yamlLine.ReplaceAllStringFunc(msg, func(m string) string {
				n, _ := strconv.Atoi(m[len("line "):])
				return "line " + strconv.Itoa(n+line-1)
			})
			return nil, fmt.Errorf("invalid YAML: %s", msg)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(js, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("invalid JSON: unexpected data after the top-level value")
	}
	return v, nil
}

func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Errorf("invalid JSON: line %d: %v", line, se)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("invalid JSON: unexpected end of input")
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

// decodeObject decodes raw into obj strictly. It reports every unknown field with its
// path (encoding/json stops at the first and gives no path) and any type mismatch.
// failed is true when obj could not be decoded at all.
func decodeObject(raw map[string]any, obj v1alpha1.Object) (errs []v1alpha1.FieldError, failed bool) {
	checkFields("", raw, reflect.TypeOf(obj), &errs)
	js, err := json.Marshal(raw)
	if err == nil && json.Unmarshal(js, obj) != nil {
		// sigs.k8s.io/yaml converts scalars to the target type (a number where a string
		// is expected becomes that string), as kubectl does. It is slower, so it only
		// runs when the plain decode fails (which it does exactly for such scalars).
		reflect.ValueOf(obj).Elem().SetZero()
		err = yaml.Unmarshal(js, obj)
	}
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			errs = append(errs, v1alpha1.FieldError{Field: te.Field,
				Message: fmt.Sprintf("expected %s, got %s", te.Type, te.Value)})
		} else {
			errs = append(errs, v1alpha1.FieldError{Message: err.Error()})
		}
		return errs, true
	}
	return errs, false
}

// YAML 1.1 reads the plain keys on/yes/y (off/no/n) as booleans, so `on:` in a retry
// policy arrives as "true". These sets let checkFields restore the field name.
var (
	yamlTrueKeys  = []string{"on", "yes", "y"}
	yamlFalseKeys = []string{"off", "no", "n"}
)

// checkFields walks a generic value against the Go type it decodes into and reports
// every key the type does not have, case-sensitively (encoding/json would accept
// "Hosts" for "hosts"; a strict schema should not).
func checkFields(path string, v any, t reflect.Type, errs *[]v1alpha1.FieldError) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		fields := jsonFields(t)
		restoreBoolKey(m, fields, "true", yamlTrueKeys)
		restoreBoolKey(m, fields, "false", yamlFalseKeys)
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			if !ok {
				*errs = append(*errs, v1alpha1.FieldError{Field: join(path, k), Message: unknownField(k, fields)})
				continue
			}
			checkFields(join(path, k), m[k], ft, errs)
		}
	case reflect.Slice:
		if list, ok := v.([]any); ok {
			for i, it := range list {
				checkFields(path+"["+strconv.Itoa(i)+"]", it, t.Elem(), errs)
			}
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			for _, k := range sortedKeys(m) {
				checkFields(join(path, k), m[k], t.Elem(), errs)
			}
		}
	}
}

func restoreBoolKey(m map[string]any, fields map[string]reflect.Type, key string, names []string) {
	val, ok := m[key]
	if !ok {
		return
	}
	if _, real := fields[key]; real {
		return
	}
	for _, n := range names {
		if _, isField := fields[n]; isField {
			if _, taken := m[n]; !taken {
				delete(m, key)
				m[n] = val
			}
			return
		}
	}
}

func unknownField(k string, fields map[string]reflect.Type) string {
	for name := range fields {
		if strings.EqualFold(name, k) {
			return fmt.Sprintf("unknown field (did you mean %q?)", name)
		}
	}
	return "unknown field"
}

// jsonFields maps a struct's JSON field names to their types, flattening embedded
// structs without a JSON name (TypeMeta) as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
