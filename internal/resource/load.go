package resource

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"portico.dev/portico/api/v1alpha1"
)

// Problem is one thing wrong with the input, located as precisely as the loader can:
// file, document, list item, object and field.
type Problem struct {
	File string
	// Document is the 1-based position among the file's non-empty YAML documents
	// (a JSON file is one document); 0 when the problem concerns the whole file.
	Document int
	// Item is the 1-based position inside a list document; 0 otherwise.
	Item      int
	Kind      string
	Namespace string
	Name      string
	Field     string
	Message   string
}

// String renders a problem as
// `file: document 2 (Route/echo): spec.matches[0].path.value: must start with "/"`.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(Origin{File: p.File, Document: p.Document, Item: p.Item}.String())
	if p.Kind != "" {
		name := p.Name
		if name == "" {
			name = "<unnamed>"
		}
		fmt.Fprintf(&b, " (%s)", Key{Kind: p.Kind, Namespace: p.Namespace, Name: name})
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// LoadError reports every problem found in the input at once, so a user fixes a file
// in one pass. Callers inspect Problems with errors.As.
type LoadError struct {
	Problems []Problem
}

// Error lists the problems, one a line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads a file, or every *.yaml, *.yml and *.json file directly inside a folder
// (sorted by name; sub-folders are not read), into one Resources value.
//
// YAML files hold any number of documents separated by "---"; a document (or a JSON
// file) is one object, a list of objects, or a `kind: List` with `items`. Decoding is
// strict: unknown fields are errors. Empty documents are skipped. A Certificate's
// certFile and keyFile are read (relative to the file that names them) into its inline
// cert and key, and the file fields are cleared. Every object is validated and names
// must be unique per kind and namespace. A Consumer's basic-auth password is replaced
// by its bcrypt passwordHash (see HashPassword).
//
// On any problem Load returns a *LoadError listing all of them. It still returns the
// objects it could decode (invalid or duplicate ones included) so that a caller can
// show what it made of them; the file provider discards them, because files are
// all-or-nothing.
func Load(path string) (*Resources, error) {
	l := newLoader(true)
	info, err := os.Stat(path)
	if err != nil {
		l.fileProblem(path, err.Error())
		return l.result()
	}
	files := []string{path}
	if info.IsDir() {
		files, err = configFiles(path)
		if err != nil {
			l.fileProblem(path, err.Error())
			return l.result()
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			l.fileProblem(f, err.Error())
			continue
		}
		l.parse(f, data)
	}
	return l.result()
}

// Parse decodes in-memory input (YAML, or JSON when name ends in ".json" or the data
// starts with "[" or "{") exactly as Load decodes a file, except that it never reads
// files: a Certificate's certFile and keyFile are left as they are (translation then
// reports them), so input from the network can never make the server read its disk.
// name labels problems.
func Parse(name string, data []byte) (*Resources, error) {
	l := newLoader(false)
	l.parse(name, data)
	return l.result()
}

func configFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	return files, nil
}

// loader accumulates objects and problems across files.
type loader struct {
	res       *Resources
	problems  []Problem
	readFiles bool
}

func newLoader(readFiles bool) *loader {
	return &loader{res: &Resources{Origins: map[Key]Origin{}}, readFiles: readFiles}
}

func (l *loader) fileProblem(file, msg string) {
	l.problems = append(l.problems, Problem{File: file, Message: msg})
}

func (l *loader) result() (*Resources, error) {
	if len(l.problems) > 0 {
		return l.res, &LoadError{Problems: l.problems}
	}
	return l.res, nil
}

// parse splits one file's data into documents and decodes each.
func (l *loader) parse(file string, data []byte) {
	trimmed := strings.TrimSpace(string(data))
	isJSON := false
	switch strings.ToLower(filepath.Ext(file)) {
	case ".json":
		isJSON = true
	case ".yaml", ".yml":
	default: // in-memory input: sniff
		isJSON = strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[")
	}
	if isJSON {
		if trimmed != "" {
			l.document(file, 1, data, true, 0)
		}
		return
	}
	for i, doc := range splitYAML(data) {
		l.document(file, i+1, doc.text, false, doc.line)
	}
}

// document decodes one document into objects. line is where a YAML document starts
// in its file, to make parser line numbers file-relative.
func (l *loader) document(file string, num int, data []byte, isJSON bool, line int) {
	where := Problem{File: file, Document: num}
	tree, err := decodeTree(data, isJSON, line)
	if err != nil {
		where.Message = err.Error()
		l.problems = append(l.problems, where)
		return
	}
	switch v := tree.(type) {
	case nil:
		return // an empty document (e.g. only "null")
	case []any:
		l.items(where, v)
	case map[string]any:
		if v["kind"] == "List" {
			items, ok := v["items"].([]any)
			if !ok && v["items"] != nil {
				where.Field, where.Message = "items", "must be a list of objects"
				l.problems = append(l.problems, where)
				return
			}
			l.items(where, items)
			return
		}
		l.object(where, v)
	default:
		where.Message = fmt.Sprintf("expected an object or a list of objects, got %s", jsonType(tree))
		l.problems = append(l.problems, where)
	}
}

func (l *loader) items(where Problem, items []any) {
	for i, it := range items {
		w := where
		w.Item = i + 1
		m, ok := it.(map[string]any)
		if !ok {
			w.Message = fmt.Sprintf("expected an object, got %s", jsonType(it))
			l.problems = append(l.problems, w)
			continue
		}
		l.object(w, m)
	}
}

// object decodes, resolves and validates one object, recording every problem.
func (l *loader) object(where Problem, raw map[string]any) {
	where.Kind, _ = raw["kind"].(string)
	if meta, ok := raw["metadata"].(map[string]any); ok {
		where.Name, _ = meta["name"].(string)
		where.Namespace, _ = meta["namespace"].(string)
	}
	report := func(errs []v1alpha1.FieldError) {
		for _, e := range errs {
			p := where
			p.Field, p.Message = e.Field, e.Message
			l.problems = append(l.problems, p)
		}
	}
	obj := v1alpha1.NewObject(where.Kind)
	if obj == nil {
		if where.Kind == "" {
			report([]v1alpha1.FieldError{{Field: "kind", Message: "required"}})
		} else {
			report([]v1alpha1.FieldError{{Field: "kind", Message: fmt.Sprintf("unknown kind %q: one of %s",
				where.Kind, strings.Join(v1alpha1.Kinds, ", "))}})
		}
		return
	}
	errs, failed := decodeObject(raw, obj)
	report(errs)
	if failed {
		return
	}
	verrs := obj.Validate()
	if c, ok := obj.(*v1alpha1.Certificate); ok && l.readFiles {
		// Check the references as written, then the PEM data they point to.
		var fileErrs []v1alpha1.FieldError
		var renamed map[string]string
		fileErrs, renamed = readCertFiles(where.File, c)
		verrs = append(verrs, fileErrs...)
		if len(renamed) > 0 {
			seen := map[v1alpha1.FieldError]bool{}
			for _, e := range verrs {
				seen[e] = true
			}
			for _, e := range c.Validate() {
				if seen[e] {
					continue // already reported before the files were read
				}
				if f, ok := renamed[e.Field]; ok {
					e.Field = f
				}
				verrs = append(verrs, e)
			}
		}
	}
	if c, ok := obj.(*v1alpha1.Consumer); ok {
		// Plain passwords stop here: only their bcrypt hash goes further.
		verrs = append(verrs, HashConsumerPasswords(c)...)
	}
	report(verrs)
	l.add(where, obj)
}

// add appends a decoded object and reports a duplicate name.
func (l *loader) add(where Problem, obj v1alpha1.Object) {
	key := Key{Kind: where.Kind, Namespace: where.Namespace, Name: where.Name}
	origin := Origin{File: where.File, Document: where.Document, Item: where.Item}
	if prev, dup := l.res.Origins[key]; dup && key.Name != "" {
		p := where
		p.Field = "metadata.name"
		p.Message = fmt.Sprintf("duplicate %s %q: first defined at %s", key.Kind, key.Name, prev)
		l.problems = append(l.problems, p)
	} else {
		l.res.Origins[key] = origin
	}
	l.res.Add(obj)
}

// readCertFiles inlines certFile and keyFile (relative to the naming file) and clears
// them, so translation never does I/O. renamed maps the inline field a file was read
// into back to the file field, so PEM problems name the field the user wrote.
func readCertFiles(file string, c *v1alpha1.Certificate) (errs []v1alpha1.FieldError, renamed map[string]string) {
	renamed = map[string]string{}
	read := func(field, name string, dst *string) bool {
		if name == "" || *dst != "" {
			return false // nothing to read, or both set (validation reports it)
		}
		if !filepath.IsAbs(name) {
			name = filepath.Join(filepath.Dir(file), name)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			errs = append(errs, v1alpha1.FieldError{Field: field, Message: err.Error()})
			return false
		}
		*dst = string(data)
		return true
	}
	if read("spec.certFile", c.Spec.CertFile, &c.Spec.Cert) {
		c.Spec.CertFile = ""
		renamed["spec.cert"] = "spec.certFile"
	}
	if read("spec.keyFile", c.Spec.KeyFile, &c.Spec.Key) {
		c.Spec.KeyFile = ""
		renamed["spec.key"] = "spec.keyFile"
	}
	return errs, renamed
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
