package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/client"
)

// newDiffCmd is `portico diff -f FILE|DIR|-`: what apply would change, as a unified
// diff per object; exit status 1 when anything differs.
func newDiffCmd() *cobra.Command {
	var cf clientFlags
	var files []string
	cmd := &cobra.Command{
		Use:   "diff -f FILE|DIR|-",
		Short: "Show how the files differ from the stored objects (exit status 1 when they do)",
		Long: `Diff compares each object of the files with the stored one, as YAML with sorted keys,
leaving out metadata.resourceVersion, metadata.creationTimestamp and status. An object
that is not stored shows as all added lines. Like kubectl diff, the exit status is 0
when nothing differs, 1 when something does, and 2 on an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := runDiff(cmd, files, &cf)
			if _, coded := err.(*exitCodeError); err != nil && !coded {
				fmt.Fprintln(cmd.ErrOrStderr(), "portico:", err)
				return &exitCodeError{code: 2, msg: err.Error(), err: err}
			}
			return err
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, folder or - (stdin); repeatable")
	cf.register(cmd)
	return cmd
}

// runDiff prints the differences and returns an exitCodeError(1) when there are some.
func runDiff(cmd *cobra.Command, files []string, cf *clientFlags) error {
	objs, err := loadInputs(files, cmd.InOrStdin())
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	differ := 0
	for _, o := range objs {
		d, err := diffObject(cmd, c, o)
		if err != nil {
			return err
		}
		if d != "" {
			differ++
			fmt.Fprint(cmd.OutOrStdout(), d)
		}
	}
	if differ > 0 {
		return &exitCodeError{code: 1, msg: fmt.Sprintf("%d of %d objects differ", differ, len(objs))}
	}
	return nil
}

// diffObject diffs one file object against the stored one ("" when equal).
func diffObject(cmd *cobra.Command, c *client.Client, o localObject) (string, error) {
	local, err := comparableYAML(objectMap(o.Obj))
	if err != nil {
		return "", err
	}
	name := o.Key.String()
	stored, err := c.Get(cmd.Context(), o.Key.Kind, o.Key.Namespace, o.Key.Name)
	if client.IsCode(err, "not_found") {
		return unifiedDiff(nil, splitLines(local), name+" (not stored)", name+" (new, "+o.Origin.String()+")", 3), nil
	}
	if err != nil {
		return "", err
	}
	remote, err := storedYAML(o.Key.Kind, stored)
	if err != nil {
		return "", err
	}
	return unifiedDiff(splitLines(remote), splitLines(local), name+" (stored)", name+" ("+o.Origin.String()+")", 3), nil
}

// storedYAML normalizes a stored object as file objects are: decoded into its type
// and encoded again, so both sides render fields the same way.
func storedYAML(kind string, raw json.RawMessage) (string, error) {
	obj := v1alpha1.NewObject(kind)
	if obj == nil {
		return "", fmt.Errorf("unknown kind %q", kind)
	}
	if err := json.Unmarshal(raw, obj); err != nil {
		return "", fmt.Errorf("decoding the stored %s: %w", kind, err)
	}
	return comparableYAML(objectMap(obj))
}

// comparableYAML drops what the server owns (resourceVersion, creationTimestamp,
// status) and renders YAML with sorted keys.
func comparableYAML(m map[string]any) (string, error) {
	delete(m, "status")
	if meta, ok := m["metadata"].(map[string]any); ok {
		delete(meta, "resourceVersion")
		delete(meta, "creationTimestamp")
	}
	b, err := yaml.Marshal(m)
	return string(b), err
}
