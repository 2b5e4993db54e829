package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/client"
)

// newGetCmd is `portico get KIND [NAME]`.
func newGetCmd() *cobra.Command {
	var cf clientFlags
	var namespace, output string
	var all bool
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "Show stored objects (KIND: gateway, route, upstream, certificate, streamroute, consumer, plugin; singular or plural)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := client.ResolveKind(args[0])
			if err != nil {
				return err
			}
			if output != "table" && output != "yaml" && output != "json" {
				return fmt.Errorf("-o %q: want table, yaml or json", output)
			}
			if all && len(args) == 2 {
				return fmt.Errorf("-A lists every namespace; to get one object name its namespace with -n")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 2 {
				obj, err := c.Get(cmd.Context(), kind, namespace, args[1])
				if err != nil {
					return err
				}
				return renderObjects(out, kind, []json.RawMessage{obj}, false, output, false, time.Now())
			}
			ns := namespace
			if all {
				ns = "*"
			}
			list, err := c.List(cmd.Context(), kind, ns)
			if err != nil {
				return err
			}
			if len(list.Items) == 0 && output == "table" {
				fmt.Fprintln(cmd.ErrOrStderr(), noneFound(kind, namespace, all))
				return nil
			}
			return renderObjects(out, kind, list.Items, true, output, all, time.Now())
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default: the unnamespaced objects)")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list objects of every namespace")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	cf.register(cmd)
	return cmd
}

func noneFound(kind, namespace string, all bool) string {
	switch {
	case all:
		return fmt.Sprintf("No %s found.", client.Plural(kind))
	case namespace != "":
		return fmt.Sprintf("No %s found in namespace %s.", client.Plural(kind), namespace)
	}
	return fmt.Sprintf("No unnamespaced %s found (-n NS for a namespace, -A for all).", client.Plural(kind))
}

// renderObjects writes objects as a table, YAML or JSON. A list renders as a
// `kind: List` in YAML and JSON.
func renderObjects(w io.Writer, kind string, items []json.RawMessage, isList bool, output string, allNS bool, now time.Time) error {
	switch output {
	case "yaml", "json":
		var v any = items[0]
		if isList {
			if items == nil {
				items = []json.RawMessage{}
			}
			v = map[string]any{"apiVersion": v1alpha1.APIVersion, "kind": "List", "items": items}
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if output == "json" {
			_, err = fmt.Fprintf(w, "%s\n", b)
			return err
		}
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	}
	return renderTable(w, kind, items, allNS, now)
}

// renderTable prints NAMESPACE (with -A), NAME, the kind's columns, STATUS and AGE.
func renderTable(w io.Writer, kind string, items []json.RawMessage, allNS bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	cols, cells := kindColumns(kind)
	head := append([]string{"NAME"}, cols...)
	head = append(head, "STATUS", "AGE")
	if allNS {
		head = append([]string{"NAMESPACE"}, head...)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, raw := range items {
		obj := v1alpha1.NewObject(kind)
		if err := json.Unmarshal(raw, obj); err != nil {
			return fmt.Errorf("decoding a %s from the server: %w", kind, err)
		}
		meta, status := metaOf(obj)
		row := append([]string{meta.Name}, cells(obj)...)
		row = append(row, acceptedStatus(status), age(meta.CreationTimestamp, now))
		if allNS {
			ns := meta.Namespace
			if ns == "" {
				ns = "-"
			}
			row = append([]string{ns}, row...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// metaOf returns an object's metadata and status.
func metaOf(obj v1alpha1.Object) (v1alpha1.ObjectMeta, v1alpha1.Status) {
	switch o := obj.(type) {
	case *v1alpha1.Gateway:
		return o.Metadata, o.Status
	case *v1alpha1.Route:
		return o.Metadata, o.Status
	case *v1alpha1.Upstream:
		return o.Metadata, o.Status
	case *v1alpha1.Certificate:
		return o.Metadata, o.Status
	case *v1alpha1.StreamRoute:
		return o.Metadata, o.Status
	case *v1alpha1.Consumer:
		return o.Metadata, o.Status
	case *v1alpha1.Plugin:
		return o.Metadata, o.Status
	}
	return v1alpha1.ObjectMeta{}, v1alpha1.Status{}
}

// kindColumns names a kind's own columns and computes them for one object.
func kindColumns(kind string) ([]string, func(v1alpha1.Object) []string) {
	switch kind {
	case v1alpha1.KindGateway:
		return []string{"LISTENERS"}, func(o v1alpha1.Object) []string {
			var ls []string
			for _, l := range o.(*v1alpha1.Gateway).Spec.Listeners {
				ls = append(ls, fmt.Sprintf("%s:%d/%s", l.Name, l.Port, l.Protocol))
			}
			return []string{joinCell(ls, "-")}
		}
	case v1alpha1.KindRoute:
		return []string{"HOSTS", "BACKENDS"}, func(o v1alpha1.Object) []string {
			r := o.(*v1alpha1.Route)
			return []string{joinCell(r.Spec.Hosts, "*"), backendsCell(r.Spec.Backends)}
		}
	case v1alpha1.KindUpstream:
		return []string{"ENDPOINTS", "ALGORITHM"}, func(o v1alpha1.Object) []string {
			u := o.(*v1alpha1.Upstream)
			var eps []string
			for _, e := range u.Spec.Endpoints {
				eps = append(eps, e.Address)
			}
			epCell := joinCell(eps, "-")
			if u.Spec.DNS != nil {
				epCell = "dns"
			}
			algo := v1alpha1.LBRoundRobin
			if u.Spec.LoadBalancer != nil && u.Spec.LoadBalancer.Algorithm != "" {
				algo = u.Spec.LoadBalancer.Algorithm
			}
			return []string{epCell, algo}
		}
	case v1alpha1.KindCertificate:
		return []string{"HOSTS"}, func(o v1alpha1.Object) []string {
			return []string{joinCell(o.(*v1alpha1.Certificate).Spec.Hosts, "-")}
		}
	case v1alpha1.KindStreamRoute:
		return []string{"LISTENER", "BACKENDS"}, func(o v1alpha1.Object) []string {
			s := o.(*v1alpha1.StreamRoute)
			return []string{s.Spec.Listener, backendsCell(s.Spec.Backends)}
		}
	case v1alpha1.KindConsumer:
		return []string{"CREDENTIALS", "GROUPS"}, func(o v1alpha1.Object) []string {
			c := o.(*v1alpha1.Consumer)
			var types []string
			for _, cr := range c.Spec.Credentials {
				types = append(types, cr.Type)
			}
			return []string{joinCell(types, "-"), joinCell(c.Spec.Groups, "-")}
		}
	case v1alpha1.KindPlugin:
		return []string{"PLUGIN", "ATTACHED-TO"}, func(o v1alpha1.Object) []string {
			p := o.(*v1alpha1.Plugin)
			to := "(global)"
			if a := p.Spec.AttachTo; a != nil {
				to = a.Kind + "/" + a.Name
			}
			return []string{p.Spec.Plugin, to}
		}
	}
	return nil, func(v1alpha1.Object) []string { return nil }
}

// joinCell joins up to three values, then "+N more"; empty gives def.
func joinCell(vals []string, def string) string {
	if len(vals) == 0 {
		return def
	}
	if len(vals) > 3 {
		return strings.Join(vals[:3], ",") + fmt.Sprintf(",+%d more", len(vals)-3)
	}
	return strings.Join(vals, ",")
}

// backendsCell renders backends as "a,b" or, when weighted, "a(90),b(10)".
func backendsCell(bs []v1alpha1.Backend) string {
	var out []string
	for _, b := range bs {
		s := b.Upstream
		if b.Weight != nil {
			s += fmt.Sprintf("(%d)", *b.Weight)
		}
		out = append(out, s)
	}
	return joinCell(out, "-")
}

// acceptedStatus renders the Accepted condition: "Accepted", "NotAccepted:Reason",
// or "-" when there is none.
func acceptedStatus(s v1alpha1.Status) string {
	for _, c := range s.Conditions {
		if c.Type != v1alpha1.ConditionAccepted {
			continue
		}
		if c.Status == "True" {
			return "Accepted"
		}
		if c.Reason != "" {
			return "NotAccepted:" + c.Reason
		}
		return "NotAccepted"
	}
	return "-"
}

// age renders the time since an RFC 3339 timestamp the way kubectl does: 45s, 12m,
// 5h, 3d, 2y.
func age(ts string, now time.Time) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return "-"
	}
	return shortDuration(now.Sub(t))
}

func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 3*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	case d < 2*365*24*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	return fmt.Sprintf("%dy", int(d.Hours()/24/365))
}
