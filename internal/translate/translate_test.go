package translate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/ir"
	"portico.dev/portico/internal/resource"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from the current output")

// golden is what a case's .out.yaml holds.
type golden struct {
	Snapshot *ir.Snapshot   `json:"snapshot"`
	Statuses []objectResult `json:"statuses"`
	Errors   []string       `json:"errors,omitempty"`
}

// objectResult shows an object's conditions one a line, "Type=Status Reason: message",
// so a reviewer can read them at a glance.
type objectResult struct {
	Object     string   `json:"object"`
	Conditions []string `json:"conditions"`
}

// parseCase decodes a case's input. Validation problems are expected (translation
// reports them as statuses); decoding problems mean the case itself is broken.
func parseCase(t *testing.T, name string, data []byte) *resource.Resources {
	t.Helper()
	res, err := resource.Parse(name, data)
	var le *resource.LoadError
	if err != nil && !errors.As(err, &le) {
		t.Fatalf("parse: %v", err)
	}
	if le != nil {
		for _, p := range le.Problems {
			if p.Kind == "" || strings.Contains(p.Message, "unknown field") || strings.HasPrefix(p.Message, "expected ") {
				t.Fatalf("input does not decode: %s", p)
			}
		}
	}
	return res
}

func render(snap *ir.Snapshot, st Statuses) []byte {
	out := golden{Snapshot: snap, Errors: st.Errors()}
	// Certificates are long; a digest shows which one was used, and keys stay out.
	red := *snap
	red.Certificates = nil
	for _, c := range snap.Certificates {
		sum := sha256.Sum256([]byte(c.Cert))
		c.Cert = "sha256:" + hex.EncodeToString(sum[:6])
		c.Key = "<redacted>"
		red.Certificates = append(red.Certificates, c)
	}
	out.Snapshot = &red
	for _, k := range st.Keys() {
		r := objectResult{Object: k.String()}
		for _, c := range st[k] {
			line := c.Type + "=" + c.Status + " " + c.Reason
			if c.Message != "" {
				line += ": " + c.Message
			}
			r.Conditions = append(r.Conditions, line)
		}
		out.Statuses = append(out.Statuses, r)
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		panic(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 45 {
		t.Errorf("only %d golden cases", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			res := parseCase(t, in, data)
			snap, st := Translate(res)
			if err := snap.Validate(); err != nil {
				t.Fatalf("snapshot does not validate: %v", err)
			}
			got := render(snap, st)

			// Determinism: same input, same bytes; input order must not matter either
			// (except which duplicate wins, so cases with duplicates are not reversed).
			snap2, st2 := Translate(parseCase(t, in, data))
			if again := render(snap2, st2); !bytes.Equal(got, again) {
				t.Fatal("two translations of the same input differ")
			}
			if !hasDuplicates(st) {
				rev := parseCase(t, in, data)
				reverseAll(rev)
				snap3, st3 := Translate(rev)
				if again := render(snap3, st3); !bytes.Equal(got, again) {
					t.Fatalf("output depends on input order:\n%s", again)
				}
			}

			outPath := filepath.Join("testdata", name+".out.yaml")
			if *update {
				if err := os.WriteFile(outPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(outPath)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update after checking):\n%s", outPath, got)
			}
		})
	}
}

func hasDuplicates(st Statuses) bool {
	for _, conds := range st {
		for _, c := range conds {
			if c.Reason == v1alpha1.ReasonDuplicate {
				return true
			}
		}
	}
	return false
}

func reverseAll(r *resource.Resources) {
	slices.Reverse(r.Gateways)
	slices.Reverse(r.Routes)
	slices.Reverse(r.Upstreams)
	slices.Reverse(r.Certificates)
	slices.Reverse(r.StreamRoutes)
	slices.Reverse(r.Consumers)
	slices.Reverse(r.Plugins)
}

func TestTranslateNil(t *testing.T) {
	snap, st := Translate(nil)
	if err := snap.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(st) != 0 || len(snap.Listeners) != 0 || snap.Version == "" {
		t.Fatalf("unexpected output for nil input: %+v %v", snap, st)
	}
}

// TestDoesNotMutateInput guards purity: translation must not change what it reads.
func TestDoesNotMutateInput(t *testing.T) {
	data, err := os.ReadFile("testdata/precedence-prefix-length.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := parseCase(t, "x.yaml", data)
	before, _ := yaml.Marshal(res)
	Translate(res)
	after, _ := yaml.Marshal(res)
	if !bytes.Equal(before, after) {
		t.Fatal("Translate changed its input")
	}
}

func TestVersionFollowsContent(t *testing.T) {
	res := parseCase(t, "a.yaml", []byte(basicInput))
	a, _ := Translate(res)
	res.Routes[0].Spec.Hosts = []string{"other.local"}
	b, _ := Translate(res)
	if a.Version == b.Version {
		t.Fatal("different content, same version")
	}
}

const basicInput = `
apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: echo}
spec:
  endpoints: [{address: "127.0.0.1:9001"}]
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: echo}
spec:
  hosts: ["echo.local"]
  backends: [{upstream: echo}]
`

func TestErrorsSkipsConsequentialProgrammed(t *testing.T) {
	st := Statuses{
		{Kind: "Route", Name: "a"}: {
			{Type: v1alpha1.ConditionAccepted, Status: "False", Reason: v1alpha1.ReasonInvalid, Message: "spec.x: bad"},
			{Type: v1alpha1.ConditionProgrammed, Status: "False", Reason: v1alpha1.ReasonNotProgrammed, Message: "invalid"},
		},
		{Kind: "Gateway", Name: "g"}: {
			{Type: v1alpha1.ConditionAccepted, Status: "True", Reason: v1alpha1.ReasonAccepted},
			{Type: v1alpha1.ConditionProgrammed, Status: "False", Reason: v1alpha1.ReasonNotProgrammed, Message: "not programmed: x"},
		},
	}
	want := []string{"Gateway/g: not programmed: x", "Route/a: spec.x: bad"}
	if got := st.Errors(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Errors() = %q, want %q", got, want)
	}
}

// TestExamples checks that the shipped examples load and translate without a
// single error: they are what users copy first.
func TestExamples(t *testing.T) {
	res, err := resource.Load("../../examples")
	if err != nil {
		t.Fatalf("examples do not load:\n%v", err)
	}
	snap, st := Translate(res)
	if errs := st.Errors(); len(errs) > 0 {
		t.Fatalf("examples translate with errors:\n%s", strings.Join(errs, "\n"))
	}
	if err := snap.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(snap.Listeners) == 0 {
		t.Fatal("examples produce no listener")
	}
}
