package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/client"
	"portico.dev/portico/internal/resource"
)

// runCLI runs the portico command line in-process.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

// writeTree writes name → content files under a new temp folder.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

const upstreamYAML = `apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: echo}
spec:
  endpoints: [{address: "127.0.0.1:9001"}]
`

const routeYAML = `apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: echo}
spec:
  matches: [{path: {type: PathPrefix, value: /echo}}]
  backends: [{upstream: echo}]
`

// TestApplyBadFileSendsNothing: problems are reported with file, document and field
// before any connection is attempted (the server address is closed: reaching it
// would fail differently).
func TestApplyBadFileSendsNothing(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"a.yaml": upstreamYAML + "---\n" + strings.Replace(routeYAML, "PathPrefix", "Prefix", 1),
	})
	for _, cmd := range []string{"apply", "diff"} {
		_, _, err := runCLI(t, "", cmd, "-f", dir, "--server", closedAddr(t))
		var lerr *resource.LoadError
		if !errors.As(err, &lerr) {
			t.Fatalf("%s: want a load error, got %v", cmd, err)
		}
		want := filepath.Join(dir, "a.yaml") + ": document 2 (Route/echo): spec.matches[0].path.type:"
		if !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("%s: got %q, want it to start with %q", cmd, err, want)
		}
	}
}

func TestLoadInputsOrderAndDuplicates(t *testing.T) {
	dir := writeTree(t, map[string]string{"1-up.yaml": upstreamYAML, "2-route.yaml": routeYAML})
	objs, err := loadInputs([]string{"-", dir}, strings.NewReader(strings.Replace(upstreamYAML, "name: echo", "name: other", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, ref(o.Key))
	}
	if strings.Join(got, " ") != "upstream/other upstream/echo route/echo" {
		t.Fatalf("order: %v", got)
	}
	body, err := applyBody(objs)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte(`"status"`)) || !bytes.HasPrefix(body, []byte(`[{"apiVersion":"portico.dev/v1alpha1","kind":"Upstream"`)) {
		t.Fatalf("apply body: %s", body)
	}

	// The same object from two -f arguments.
	_, err = loadInputs([]string{dir, filepath.Join(dir, "2-route.yaml")}, nil)
	if err == nil || !strings.Contains(err.Error(), `metadata.name: duplicate Route "echo": first defined at `+filepath.Join(dir, "2-route.yaml")) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := loadInputs(nil, nil); err == nil {
		t.Fatal("no -f accepted")
	}
}

func TestSortForDelete(t *testing.T) {
	keys := []resource.Key{{Kind: "Gateway", Name: "g"}, {Kind: "Upstream", Name: "u"}, {Kind: "Route", Name: "r1"},
		{Kind: "Plugin", Name: "p"}, {Kind: "Route", Name: "r2"}, {Kind: "Certificate", Name: "c"}}
	sortForDelete(keys)
	var got []string
	for _, k := range keys {
		got = append(got, k.Kind+"/"+k.Name)
	}
	if strings.Join(got, " ") != "Plugin/p Route/r1 Route/r2 Upstream/u Certificate/c Gateway/g" {
		t.Fatal(got)
	}
}

func TestRenderTable(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	items := []json.RawMessage{
		json.RawMessage(`{"apiVersion":"portico.dev/v1alpha1","kind":"Route","metadata":{"name":"echo","creationTimestamp":"2026-01-02T11:00:00Z"},
		  "spec":{"hosts":["a.example","b.example"],"backends":[{"upstream":"blue","weight":90},{"upstream":"green","weight":10}]},
		  "status":{"conditions":[{"type":"Accepted","status":"True","reason":"Accepted"}]}}`),
		json.RawMessage(`{"apiVersion":"portico.dev/v1alpha1","kind":"Route","metadata":{"name":"bad","namespace":"team-a","creationTimestamp":"2025-12-30T12:00:00Z"},
		  "spec":{"backends":[{"upstream":"missing"}]},
		  "status":{"conditions":[{"type":"Accepted","status":"False","reason":"BackendNotFound"}]}}`),
	}
	var b bytes.Buffer
	if err := renderTable(&b, v1alpha1.KindRoute, items, true, now); err != nil {
		t.Fatal(err)
	}
	want := "NAMESPACE   NAME   HOSTS                 BACKENDS             STATUS                        AGE\n" +
		"-           echo   a.example,b.example   blue(90),green(10)   Accepted                      60m\n" +
		"team-a      bad    *                     missing              NotAccepted:BackendNotFound   3d\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	ups := []json.RawMessage{json.RawMessage(`{"kind":"Upstream","metadata":{"name":"u"},"spec":{"endpoints":[{"address":"a:1"},{"address":"b:1"},{"address":"c:1"},{"address":"d:1"}],"loadBalancer":{"algorithm":"ewma"}}}`)}
	if err := renderTable(&b, v1alpha1.KindUpstream, ups, false, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "ENDPOINTS") || !strings.Contains(b.String(), "a:1,b:1,c:1,+1 more   ewma        -        -") {
		t.Fatalf("upstream table:\n%s", b.String())
	}

	b.Reset()
	gws := []json.RawMessage{json.RawMessage(`{"kind":"Gateway","metadata":{"name":"default"},"spec":{"listeners":[{"name":"http","port":8080,"protocol":"HTTP"}]}}`)}
	if err := renderTable(&b, v1alpha1.KindGateway, gws, false, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "LISTENERS") || !strings.Contains(b.String(), "http:8080/HTTP") {
		t.Fatalf("gateway table:\n%s", b.String())
	}
}

func TestRenderYAMLAndJSON(t *testing.T) {
	items := []json.RawMessage{json.RawMessage(`{"kind":"Upstream","metadata":{"name":"u"},"apiVersion":"portico.dev/v1alpha1"}`)}
	var b bytes.Buffer
	if err := renderObjects(&b, "Upstream", items, true, "yaml", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := "apiVersion: portico.dev/v1alpha1\nitems:\n- apiVersion: portico.dev/v1alpha1\n  kind: Upstream\n  metadata:\n    name: u\nkind: List\n"
	if b.String() != want {
		t.Fatalf("yaml list:\n%s", b.String())
	}
	b.Reset()
	if err := renderObjects(&b, "Upstream", items, false, "json", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back["kind"] != "Upstream" {
		t.Fatalf("json object: %s (%v)", b.String(), err)
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 45 * time.Second: "45s", 119 * time.Second: "119s", 5 * time.Minute: "5m",
		150 * time.Minute: "150m", 5 * time.Hour: "5h", 72 * time.Hour: "3d", 3 * 365 * 24 * time.Hour: "3y",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if age("not a time", time.Now()) != "-" {
		t.Fatal("bad timestamp")
	}
}

func TestPrintApplyResult(t *testing.T) {
	res := &client.ApplyResult{DryRun: true, Items: []client.ApplyItem{
		{Kind: "Upstream", Name: "echo", Action: "unchanged"},
		{Kind: "Route", Namespace: "team-a", Name: "echo", Action: "updated"},
		{Kind: "Route", Name: "new", Action: "created"},
	}, Statuses: map[string][]v1alpha1.Condition{
		"Route/new": {{Type: "Accepted", Status: "False", Reason: "BackendNotFound", Message: `upstream "x" not found`}},
	}}
	var b bytes.Buffer
	printApplyResult(&b, res, true)
	want := `upstream/echo unchanged (dry run)
route/team-a/echo configured (dry run)
route/new created (dry run)

Statuses after the change:
  Route/new
    Accepted=False BackendNotFound: upstream "x" not found
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestComparableYAML(t *testing.T) {
	stored := json.RawMessage(`{"spec":{"endpoints":[{"address":"127.0.0.1:9001"}]},"apiVersion":"portico.dev/v1alpha1","kind":"Upstream",
	  "metadata":{"name":"echo","resourceVersion":"12","creationTimestamp":"2026-01-01T00:00:00Z"},"status":{"conditions":[{"type":"Accepted","status":"True","reason":"Accepted"}]}}`)
	remote, err := storedYAML("Upstream", stored)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := loadInputs([]string{"-"}, strings.NewReader(upstreamYAML))
	if err != nil {
		t.Fatal(err)
	}
	local, err := comparableYAML(objectMap(objs[0].Obj))
	if err != nil {
		t.Fatal(err)
	}
	if remote != local {
		t.Fatalf("stored and file renderings differ:\n%s\n---\n%s", remote, local)
	}
	if strings.Contains(remote, "resourceVersion") || strings.Contains(remote, "status") || !strings.HasPrefix(remote, "apiVersion:") {
		t.Fatalf("rendering:\n%s", remote)
	}
}
