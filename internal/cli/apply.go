package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/client"
	"portico.dev/portico/internal/resource"
)

// newApplyCmd is `portico apply -f FILE|DIR|-`: validate locally, then one
// transactional POST /api/v1/apply.
func newApplyCmd() *cobra.Command {
	var cf clientFlags
	var files []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update objects from files through the admin API, all or nothing",
		Long: `Apply reads the files (a folder: its *.yaml, *.yml and *.json files; "-": stdin),
checks them exactly as the file provider does — problems name the file, document and
field, and nothing is sent while any remains — then writes every object in one
transaction. --dry-run stores nothing and shows the statuses the change would give.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			objs, err := loadInputs(files, cmd.InOrStdin())
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			body, err := applyBody(objs)
			if err != nil {
				return err
			}
			res, err := c.Apply(cmd.Context(), body, dryRun)
			if err != nil {
				return err
			}
			printApplyResult(cmd.OutOrStdout(), res, dryRun)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, folder or - (stdin); repeatable")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "store nothing; show what would change and the resulting statuses")
	cf.register(cmd)
	return cmd
}

// applyBody is the objects as one JSON array, status left out.
func applyBody(objs []localObject) ([]byte, error) {
	items := make([]map[string]any, len(objs))
	for i, o := range objs {
		items[i] = objectMap(o.Obj)
	}
	return json.Marshal(items)
}

// applyVerb is kubectl's word for each apply action.
func applyVerb(action string) string {
	if action == "updated" {
		return "configured"
	}
	return action
}

// printApplyResult prints `route/x created|configured|unchanged`, and for a dry run
// the statuses the change would give.
func printApplyResult(w io.Writer, res *client.ApplyResult, dryRun bool) {
	suffix := ""
	if dryRun || res.DryRun {
		suffix = " (dry run)"
	}
	for _, it := range res.Items {
		key := resource.Key{Kind: it.Kind, Namespace: it.Namespace, Name: it.Name}
		fmt.Fprintf(w, "%s %s%s\n", ref(key), applyVerb(it.Action), suffix)
	}
	printStatuses(w, res.Statuses)
}

// printStatuses lists conditions per object, sorted by object.
func printStatuses(w io.Writer, statuses map[string][]v1alpha1.Condition) {
	if len(statuses) == 0 {
		return
	}
	names := make([]string, 0, len(statuses))
	for n := range statuses {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "\nStatuses after the change:")
	for _, n := range names {
		fmt.Fprintf(w, "  %s\n", n)
		for _, c := range statuses[n] {
			line := fmt.Sprintf("    %s=%s", c.Type, c.Status)
			if c.Reason != "" {
				line += " " + c.Reason
			}
			if c.Message != "" {
				line += ": " + strings.TrimSpace(c.Message)
			}
			fmt.Fprintln(w, line)
		}
	}
}
