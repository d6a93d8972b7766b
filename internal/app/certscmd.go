package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/multijuego/multijuego/internal/certs"
)

const certsUsage = `usage:
  multijuego certs init DIR                 make a CA in DIR (ca.pem, ca-key.pem)
  multijuego certs issue DIR NAME HOST,...  make NAME.pem and NAME-key.pem, signed by DIR's CA,
                                            for those DNS names and IP addresses, as server and client`

// certsCmd is `multijuego certs`: a small CA for development and tests,
// for TLS and mutual TLS between roles and to PostgreSQL, Redis and NATS.
// Production brings its own certificates.
func certsCmd(args []string, out io.Writer, now time.Time) error {
	if len(args) == 0 {
		return errors.New(certsUsage)
	}
	switch {
	case args[0] == "init" && len(args) == 2:
		dir := args[1]
		if _, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err == nil {
			return fmt.Errorf("%s already holds a CA (ca-key.pem); remove it first to make another", dir)
		}
		c, k, err := certs.NewCA("multijuego development CA", now, 5*365*24*time.Hour)
		if err != nil {
			return err
		}
		if err := writeFiles(dir, map[string][]byte{"ca.pem": c, "ca-key.pem": k}); err != nil {
			return err
		}
		fmt.Fprintf(out, "CA in %s: give ca.pem to every process that must trust it; keep ca-key.pem private\n", dir)
		return nil
	case args[0] == "issue" && len(args) == 4:
		dir, name, hosts := args[1], args[2], strings.Split(args[3], ",")
		if strings.ContainsAny(name, `/\`) || name == "" || name == "ca" {
			return fmt.Errorf("certificate name %q: use a plain name such as gateway or auth-0", name)
		}
		caCert, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
		if err != nil {
			return fmt.Errorf("%w (run 'multijuego certs init %s' first)", err, dir)
		}
		caKey, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
		if err != nil {
			return err
		}
		c, k, err := certs.Issue(caCert, caKey, name, hosts, now, 365*24*time.Hour)
		if err != nil {
			return err
		}
		if err := writeFiles(dir, map[string][]byte{name + ".pem": c, name + "-key.pem": k}); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s.pem and %s-key.pem in %s, for %s, valid a year\n", name, name, dir, strings.Join(hosts, ", "))
		return nil
	}
	return errors.New(certsUsage)
}

func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}
