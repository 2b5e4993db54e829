package cli

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/client"
	"portico.dev/portico/internal/resource"
)

// newDeleteCmd is `portico delete KIND NAME` and `portico delete -f FILE`.
func newDeleteCmd() *cobra.Command {
	var cf clientFlags
	var files []string
	var namespace string
	var dryRun, ignoreNotFound bool
	cmd := &cobra.Command{
		Use:   "delete (KIND NAME | -f FILE|DIR|-)",
		Short: "Delete stored objects, named or listed in files",
		Long: `Delete removes one object (KIND NAME, -n for its namespace) or every object of the
files. Objects from files are deleted one at a time, those that reference others first
(plugins, consumers, routes before upstreams, certificates and gateways); an object
still referenced by another is refused with a conflict.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(files) > 0 {
				if len(args) > 0 {
					return errors.New("give KIND NAME or -f, not both")
				}
				return nil
			}
			if len(args) != 2 {
				return errors.New("want KIND NAME, or -f FILE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var keys []resource.Key
			if len(files) > 0 {
				objs, err := loadInputs(files, cmd.InOrStdin())
				if err != nil {
					return err
				}
				for _, o := range objs {
					keys = append(keys, o.Key)
				}
				sortForDelete(keys)
			} else {
				kind, err := client.ResolveKind(args[0])
				if err != nil {
					return err
				}
				keys = []resource.Key{{Kind: kind, Namespace: namespace, Name: args[1]}}
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			suffix := ""
			if dryRun {
				suffix = " (dry run)"
			}
			var failed []string
			for _, k := range keys {
				_, err := c.Delete(cmd.Context(), k.Kind, k.Namespace, k.Name, dryRun)
				switch {
				case err == nil:
					fmt.Fprintf(cmd.OutOrStdout(), "%s deleted%s\n", ref(k), suffix)
				case ignoreNotFound && client.IsCode(err, "not_found"):
				default:
					if len(keys) == 1 {
						return err
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", ref(k), err)
					failed = append(failed, ref(k))
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("%d of %d objects not deleted: %s", len(failed), len(keys), strings.Join(failed, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, folder or - (stdin) naming the objects; repeatable")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of KIND NAME")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "delete nothing; report what would be deleted")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat objects that do not exist as deleted")
	cf.register(cmd)
	return cmd
}

// sortForDelete orders keys so that referencing kinds go first (the reverse of
// v1alpha1.Kinds, the apply order), stably within a kind.
func sortForDelete(keys []resource.Key) {
	rank := func(k string) int { return -slices.Index(v1alpha1.Kinds, k) }
	sort.SliceStable(keys, func(i, j int) bool { return rank(keys[i].Kind) < rank(keys[j].Kind) })
}

// newHistoryCmd is `portico history KIND NAME`.
func newHistoryCmd() *cobra.Command {
	var cf clientFlags
	var namespace string
	var showDiff bool
	cmd := &cobra.Command{
		Use:   "history KIND NAME",
		Short: "List the stored revisions of an object (who, when; --diff: what changed)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := client.ResolveKind(args[0])
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			revs, err := c.History(cmd.Context(), kind, namespace, args[1])
			if err != nil {
				return err
			}
			if showDiff {
				return renderHistoryDiffs(cmd.OutOrStdout(), revs)
			}
			return renderHistory(cmd.OutOrStdout(), revs)
		},
	}
	cmd.Flags().BoolVar(&showDiff, "diff", false, "show what each revision changed, as a unified diff against the one before")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the object")
	cf.register(cmd)
	return cmd
}

// renderHistory prints REVISION OPERATION ACTOR TIME, oldest first.
func renderHistory(w io.Writer, revs []client.Revision) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tOPERATION\tACTOR\tTIME")
	for _, r := range revs {
		actor := r.Actor
		if actor == "" {
			actor = "-"
		}
		when := r.Time
		if t, err := time.Parse(time.RFC3339Nano, r.Time); err == nil {
			when = t.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Revision, r.Operation, actor, when)
	}
	return tw.Flush()
}

// renderHistoryDiffs prints, for each revision, its header and the diff from the
// previous content (a create diffs against nothing, a delete against the last content).
func renderHistoryDiffs(w io.Writer, revs []client.Revision) error {
	var prev []string
	for _, r := range revs {
		var cur []string
		if len(r.Object) > 0 {
			var m map[string]any
			if err := json.Unmarshal(r.Object, &m); err != nil {
				return fmt.Errorf("revision %d: %w", r.Revision, err)
			}
			y, err := comparableYAML(m)
			if err != nil {
				return err
			}
			cur = splitLines(y)
		}
		actor := cmp.Or(r.Actor, "-")
		fmt.Fprintf(w, "# revision %d: %s by %s at %s\n", r.Revision, r.Operation, actor, r.Time)
		fmt.Fprint(w, unifiedDiff(prev, cur, "before", fmt.Sprintf("revision %d", r.Revision), 3))
		prev = cur
	}
	return nil
}

// newRollbackCmd is `portico rollback KIND NAME --to-revision N`.
func newRollbackCmd() *cobra.Command {
	var cf clientFlags
	var namespace string
	var revision int64
	cmd := &cobra.Command{
		Use:   "rollback KIND NAME --to-revision N",
		Short: "Restore an object to the content it had at a revision (see portico history)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := client.ResolveKind(args[0])
			if err != nil {
				return err
			}
			if revision <= 0 {
				return errors.New("--to-revision N is required (a revision from portico history)")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			obj, err := c.Rollback(cmd.Context(), kind, namespace, args[1], revision)
			if err != nil {
				return err
			}
			rv := ""
			if m := rawMap(obj); m != nil {
				if meta, ok := m["metadata"].(map[string]any); ok {
					if s, ok := meta["resourceVersion"].(string); ok && s != "" {
						rv = " (now resourceVersion " + s + ")"
					}
				}
			}
			key := resource.Key{Kind: kind, Namespace: namespace, Name: args[1]}
			fmt.Fprintf(cmd.OutOrStdout(), "%s rolled back to revision %s%s\n", ref(key), strconv.FormatInt(revision, 10), rv)
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the object")
	cmd.Flags().Int64Var(&revision, "to-revision", 0, "the revision to restore")
	cf.register(cmd)
	return cmd
}
