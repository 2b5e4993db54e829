package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
)

// readBody reads the whole body within the limit and returns it with the name the
// loader should parse it under: "request.json", "request.yaml", or "request" (sniffed)
// when the client sent no Content-Type.
func readBody(rq *request) ([]byte, string, error) {
	name := "request"
	if ct := rq.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			return nil, "", errorf(CodeUnsupportedMedia, "malformed Content-Type %q", ct)
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			name = "request.json"
		case mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml" || mt == "text/x-yaml":
			name = "request.yaml"
		default:
			return nil, "", errorf(CodeUnsupportedMedia, "unsupported Content-Type %q: send application/json or application/yaml", mt)
		}
	}
	data, err := io.ReadAll(rq.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, "", tooLarge(tooBig.Limit)
	}
	if err != nil {
		return nil, "", errorf(CodeInvalid, "reading the request body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, "", errorf(CodeInvalid, "the request body is empty")
	}
	return data, name, nil
}

func tooLarge(limit int64) *Error {
	return errorf(CodeTooLarge, "the request body is larger than the limit of %d bytes", limit)
}

// parseObjects decodes a body with the strict loader (unknown fields, validation and
// duplicates are reported with their paths) and returns its objects in document order.
func parseObjects(name string, data []byte, withDocs bool) ([]v1alpha1.Object, error) {
	res, err := resource.Parse(name, data)
	var le *resource.LoadError
	if errors.As(err, &le) {
		if !withDocs {
			for i := range le.Problems {
				le.Problems[i].Document, le.Problems[i].Item = 0, 0
			}
		}
		return nil, fromProblems(CodeInvalid, fmt.Sprintf("%d problems in the request", len(le.Problems)), le.Problems)
	}
	if err != nil {
		return nil, errorf(CodeInvalid, "%v", err)
	}
	objs := res.Objects()
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := res.Origins[resource.KeyOf(objs[i])], res.Origins[resource.KeyOf(objs[j])]
		if a.Document != b.Document {
			return a.Document < b.Document
		}
		return a.Item < b.Item
	})
	var problems []resource.Problem
	for _, o := range objs {
		if c, ok := o.(*v1alpha1.Certificate); ok {
			k := resource.KeyOf(o)
			for field, v := range map[string]string{"spec.certFile": c.Spec.CertFile, "spec.keyFile": c.Spec.KeyFile} {
				if v != "" {
					problems = append(problems, resource.Problem{Kind: k.Kind, Namespace: k.Namespace, Name: k.Name, Field: field,
						Message: "files cannot be read through the admin API: send the PEM inline in spec.cert and spec.key"})
				}
			}
		}
	}
	if len(problems) > 0 {
		sort.SliceStable(problems, func(i, j int) bool { return problems[i].Field < problems[j].Field })
		return nil, fromProblems(CodeInvalid, fmt.Sprintf("%d problems in the request", len(problems)), problems)
	}
	if len(objs) == 0 {
		return nil, errorf(CodeInvalid, "the request body holds no object")
	}
	return objs, nil
}

// parseOne decodes a PUT body: one object whose kind, name and namespace must match
// the path (or be absent, and are filled in).
func parseOne(rq *request, name string, data []byte) (v1alpha1.Object, error) {
	var tree any
	var js []byte
	var err error
	if multiDocument(name, data) {
		return nil, errorf(CodeInvalid, "PUT takes one object: use POST /api/v1/apply for several")
	}
	if strings.HasSuffix(name, ".json") || (name == "request" && startsJSON(data)) {
		js = data
	} else if js, err = yaml.YAMLToJSONStrict(data); err != nil {
		// Let the loader explain the syntax error with its line.
		_, perr := parseObjects(name, data, false)
		if perr == nil {
			perr = errorf(CodeInvalid, "invalid YAML: %v", err)
		}
		return nil, perr
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		_, perr := parseObjects("request.json", data, false)
		if perr == nil {
			perr = errorf(CodeInvalid, "invalid JSON: %v", err)
		}
		return nil, perr
	}
	m, ok := tree.(map[string]any)
	if !ok || m["kind"] == "List" {
		return nil, errorf(CodeInvalid, "PUT takes one object: use POST /api/v1/apply for lists")
	}
	if err := fillIdentity(m, rq.kind, rq.namespace, rq.name); err != nil {
		return nil, err
	}
	filled, err := json.Marshal(m)
	if err != nil {
		return nil, errorf(CodeInvalid, "%v", err)
	}
	objs, err := parseObjects("request.json", filled, false)
	if err != nil {
		return nil, err
	}
	return objs[0], nil
}

// fillIdentity fills kind, apiVersion, name and namespace from the path, or checks
// that the body agrees with it.
func fillIdentity(m map[string]any, kind, namespace, name string) error {
	mismatch := func(field string, got any, want string) error {
		e := errorf(CodeInvalid, "%s is %v in the body but %q in the path", field, got, want)
		e.Field = field
		return e
	}
	if _, set := m["apiVersion"]; !set {
		m["apiVersion"] = v1alpha1.APIVersion
	}
	if k, set := m["kind"]; !set {
		m["kind"] = kind
	} else if k != kind {
		return mismatch("kind", fmt.Sprintf("%q", k), kind)
	}
	meta, _ := m["metadata"].(map[string]any)
	if meta == nil {
		if _, set := m["metadata"]; set {
			e := errorf(CodeInvalid, "metadata must be an object")
			e.Field = "metadata"
			return e
		}
		meta = map[string]any{}
		m["metadata"] = meta
	}
	if n, set := meta["name"]; !set {
		meta["name"] = name
	} else if n != name {
		return mismatch("metadata.name", fmt.Sprintf("%q", n), name)
	}
	if ns, set := meta["namespace"]; !set || ns == "" {
		if namespace != "" {
			meta["namespace"] = namespace
		}
	} else if ns != namespace {
		return mismatch("metadata.namespace", fmt.Sprintf("%q", ns), namespace)
	}
	return nil
}

func startsJSON(data []byte) bool {
	t := bytes.TrimSpace(data)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// multiDocument reports a YAML stream with a document marker after some content.
func multiDocument(name string, data []byte) bool {
	if strings.HasSuffix(name, ".json") || startsJSON(data) {
		return false
	}
	content := false
	for line := range strings.SplitSeq(string(data), "\n") {
		t := strings.TrimRight(line, "\r")
		if strings.HasPrefix(t, "---") && (len(t) == 3 || t[3] == ' ' || t[3] == '\t') {
			if content {
				return true
			}
			continue
		}
		if s := strings.TrimSpace(t); s != "" && !strings.HasPrefix(s, "#") {
			content = true
		}
	}
	return false
}
