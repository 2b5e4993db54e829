package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"portico.dev/portico/internal/pki"
)

// newInitCmd is `portico init DIR`: the PKI and secrets of a deployment.
func newInitCmd() *cobra.Command {
	var opts pki.InitOptions
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Create the CA, certificates, tokens, kubeconfig and client.yaml a deployment needs (idempotent)",
		Long: `Create, in DIR (mode 0700, every file 0600): a root CA (ca.crt, ca.key), the control
plane's serving certificate (control-plane.crt/.key), a data-plane client certificate
(dataplane.crt/.key), bootstrap.token, admin.token, a kubeconfig and client.yaml.

Running it again creates only what is missing and reports certificates that are close
to expiry or carry other names than --hosts. --rotate renews the control-plane and
data-plane certificates with the same CA; --rotate-tokens issues new tokens;
--rotate-ca replaces the CA and everything else.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("admin-addr") {
				opts.AdminAddr = "" // keep the server named by existing files
			}
			res, err := pki.Init(args[0], opts)
			if err != nil {
				return err
			}
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			for _, f := range res.Files {
				line := fmt.Sprintf("%-8s %s", f.Action, f.Path)
				if f.Note != "" {
					line += " (" + f.Note + ")"
				}
				fmt.Fprintln(out, line)
			}
			for _, n := range res.Notes {
				fmt.Fprintln(out, "note:", n)
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(errw, "warning:", w)
			}
			if !res.Changed() {
				fmt.Fprintln(out, "nothing changed")
			}
			fmt.Fprintf(out, "admin token: %s (the CLI finds it through %s)\n",
				res.AdminTokenFile, filepath.Join(res.Dir, pki.ClientConfigFile))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&opts.Hosts, "hosts", nil, "extra DNS names or IP addresses for the control-plane certificate (besides localhost, 127.0.0.1, ::1)")
	f.BoolVar(&opts.Rotate, "rotate", false, "issue new control-plane and data-plane certificates signed by the existing CA (tokens are kept)")
	f.BoolVar(&opts.RotateTokens, "rotate-tokens", false, "issue new bootstrap and admin tokens (the kubeconfig is rewritten)")
	f.BoolVar(&opts.RotateCA, "rotate-ca", false, "replace the CA and re-issue every certificate and token")
	f.StringVar(&opts.AdminAddr, "admin-addr", pki.DefaultAdminAddr, "admin API address written into client.yaml and the kubeconfig")
	return cmd
}
