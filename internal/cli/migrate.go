package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"portico.dev/portico/internal/store"
)

// storeFlags locate the store: --store DSN, else SQLite in --data-dir.
type storeFlags struct {
	dsn, dataDir string
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.dsn, "store", "", "store DSN: postgres://… selects PostgreSQL; sqlite://PATH or a file path selects SQLite (default <data-dir>/portico.db)")
	cmd.PersistentFlags().StringVar(&f.dataDir, "data-dir", "./data", "data directory holding the SQLite database")
}

// resolve returns the DSN and, for SQLite, the database file.
func (f *storeFlags) resolve() (dsn string, sqlitePath string) {
	if f.dsn != "" {
		if p, ok := strings.CutPrefix(f.dsn, "sqlite://"); ok {
			return f.dsn, p
		}
		if strings.Contains(f.dsn, "://") {
			return f.dsn, ""
		}
		return f.dsn, f.dsn
	}
	p := filepath.Join(f.dataDir, "portico.db")
	return p, p
}

// newMigrateCmd is `portico migrate up|status`, run on the database directly.
func newMigrateCmd() *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply or inspect the store's schema migrations (works on the database directly)",
	}
	f.register(cmd)
	up := &cobra.Command{
		Use:   "up",
		Short: "Apply pending migrations (creates the SQLite database if needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, path := f.resolve()
			if path != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					return err
				}
			}
			s, err := store.Open(cmd.Context(), dsn)
			if err != nil {
				return fmt.Errorf("opening %s: %w", redactDSN(dsn), err)
			}
			defer s.Close()
			applied, err := store.Migrate(cmd.Context(), s)
			if err != nil {
				return err
			}
			st, err := s.Status(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(applied) == 0 {
				fmt.Fprintf(w, "%s (%s): schema is up to date at version %d\n", redactDSN(dsn), s.Driver(), st.Current)
				return nil
			}
			fmt.Fprintf(w, "%s (%s): applied %s; schema is at version %d\n", redactDSN(dsn), s.Driver(), versionList(applied), st.Current)
			return nil
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show applied and pending migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, path := f.resolve()
			if path != "" {
				if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("no SQLite database at %s (portico migrate up creates it)", path)
				}
			}
			s, err := store.Open(cmd.Context(), dsn)
			if err != nil {
				return fmt.Errorf("opening %s: %w", redactDSN(dsn), err)
			}
			defer s.Close()
			st, err := s.Status(cmd.Context())
			if err != nil {
				return err
			}
			printMigrationStatus(cmd.OutOrStdout(), redactDSN(dsn), s.Driver(), st)
			return nil
		},
	}
	cmd.AddCommand(up, status)
	return cmd
}

func printMigrationStatus(w io.Writer, dsn, driver string, st store.MigrationStatus) {
	fmt.Fprintf(w, "store:   %s (%s)\n", dsn, driver)
	fmt.Fprintf(w, "current: %d\nlatest:  %d\n", st.Current, st.Latest)
	fmt.Fprintf(w, "applied: %s\npending: %s\n", versionList(st.Applied), versionList(st.Pending))
}

func versionList(vs []int) string {
	if len(vs) == 0 {
		return "none"
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

// redactDSN hides a PostgreSQL password.
func redactDSN(dsn string) string {
	if !strings.Contains(dsn, "://") {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "<unparsable DSN>"
	}
	return u.Redacted()
}
