package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/client"
	"portico.dev/portico/internal/resource"
)

// clientFlags are the flags every admin API command takes.
type clientFlags struct {
	server, token, config string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "admin API URL (else $"+client.EnvServer+", client.yaml, "+client.DefaultServer+")")
	fl.StringVar(&f.token, "token", "", "bearer token (else $"+client.EnvToken+", client.yaml token or tokenFile)")
	fl.StringVar(&f.config, "client-config", "", "client.yaml to read (else $"+client.EnvConfig+", else ./"+client.DefaultConfigFile+" if it exists)")
}

// client resolves the configuration and builds a client.
func (f *clientFlags) client() (*client.Client, error) {
	cfg, err := client.LoadConfig(client.Overrides{Server: f.server, Token: f.token, ConfigFile: f.config}, nil)
	if err != nil {
		return nil, err
	}
	return client.New(cfg)
}

// exitCodeError ends the process with a code other than the usual 1 failure, or
// reports an expected outcome (diff found differences) rather than a failure.
type exitCodeError struct {
	code int
	msg  string
	err  error
}

// Unwrap returns the error the exit code stands for, if any.
func (e *exitCodeError) Unwrap() error { return e.err }

func (e *exitCodeError) Error() string { return e.msg }

// ExitCode is the process exit code the error asks for.
func (e *exitCodeError) ExitCode() int { return e.code }

// localObject is one object read from the -f inputs.
type localObject struct {
	Key    resource.Key
	Origin resource.Origin
	Obj    v1alpha1.Object
	arg    int // index of the -f argument it came from, for ordering
}

// loadInputs reads every -f argument (a file, a folder, or "-" for stdin) exactly as
// the file provider would: strictly, validated, certificate files inlined. Every
// problem of every input is reported at once, as a *resource.LoadError, so nothing is
// sent until all inputs are good. Objects come back in input order.
func loadInputs(paths []string, stdin io.Reader) ([]localObject, error) {
	if len(paths) == 0 {
		return nil, errors.New("no input: pass -f FILE, -f DIR or -f - (stdin)")
	}
	var objs []localObject
	var problems []resource.Problem
	first := map[resource.Key]resource.Origin{}
	for i, p := range paths {
		var res *resource.Resources
		var err error
		if p == "-" {
			data, rerr := io.ReadAll(stdin)
			if rerr != nil {
				return nil, fmt.Errorf("reading stdin: %w", rerr)
			}
			res, err = resource.Parse("<stdin>", data)
		} else {
			res, err = resource.Load(filepath.Clean(p))
		}
		var lerr *resource.LoadError
		if errors.As(err, &lerr) {
			problems = append(problems, lerr.Problems...)
			continue
		} else if err != nil {
			return nil, err
		}
		for _, o := range allObjects(res) {
			key := keyOf(o)
			origin := res.Origins[key]
			if prev, dup := first[key]; dup {
				problems = append(problems, resource.Problem{File: origin.File, Document: origin.Document, Item: origin.Item,
					Kind: key.Kind, Namespace: key.Namespace, Name: key.Name, Field: "metadata.name",
					Message: fmt.Sprintf("duplicate %s %q: first defined at %s", key.Kind, key.Name, prev)})
				continue
			}
			first[key] = origin
			objs = append(objs, localObject{Key: key, Origin: origin, Obj: o, arg: i})
		}
	}
	if len(problems) > 0 {
		return nil, &resource.LoadError{Problems: problems}
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no objects found in %s", strings.Join(paths, ", "))
	}
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := objs[i], objs[j]
		if a.arg != b.arg {
			return a.arg < b.arg
		}
		if a.Origin.File != b.Origin.File {
			return a.Origin.File < b.Origin.File
		}
		if a.Origin.Document != b.Origin.Document {
			return a.Origin.Document < b.Origin.Document
		}
		return a.Origin.Item < b.Origin.Item
	})
	return objs, nil
}

// allObjects lists every object of res.
func allObjects(res *resource.Resources) []v1alpha1.Object {
	var out []v1alpha1.Object
	for _, o := range res.Gateways {
		out = append(out, o)
	}
	for _, o := range res.Certificates {
		out = append(out, o)
	}
	for _, o := range res.Upstreams {
		out = append(out, o)
	}
	for _, o := range res.Routes {
		out = append(out, o)
	}
	for _, o := range res.StreamRoutes {
		out = append(out, o)
	}
	for _, o := range res.Consumers {
		out = append(out, o)
	}
	for _, o := range res.Plugins {
		out = append(out, o)
	}
	return out
}

// keyOf reads an object's kind, namespace and name.
func keyOf(o v1alpha1.Object) resource.Key {
	m := objectMap(o)
	return mapKey(m)
}

// mapKey reads the key of an object decoded into a map.
func mapKey(m map[string]any) resource.Key {
	k := resource.Key{}
	k.Kind, _ = m["kind"].(string)
	if meta, ok := m["metadata"].(map[string]any); ok {
		k.Name, _ = meta["name"].(string)
		k.Namespace, _ = meta["namespace"].(string)
	}
	return k
}

// objectMap is an object as a generic JSON map, without its status (which users do
// not write).
func objectMap(o any) map[string]any {
	b, err := json.Marshal(o)
	if err != nil {
		panic(fmt.Sprintf("marshalling %T: %v", o, err)) // the API types always marshal
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(fmt.Sprintf("unmarshalling %T: %v", o, err))
	}
	delete(m, "status")
	return m
}

// ref renders a key as users type it: "route/x", or "route/ns/x" when namespaced.
func ref(k resource.Key) string {
	s := strings.ToLower(k.Kind) + "/"
	if k.Namespace != "" {
		s += k.Namespace + "/"
	}
	return s + k.Name
}

// rawMap decodes a JSON object, or returns nil.
func rawMap(raw []byte) map[string]any {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}
