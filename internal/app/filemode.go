package app

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
)

// privateDirs tightens the directories the server keeps its state in
// (data_dir, auth.keys_dir) to 0700 when they exist open to others: what
// the server makes itself it makes 0700 (directories) and 0600 (files),
// but a directory made earlier by hand, or by an older version, may be
// 0755, and a world-readable data_dir shows the database, the NATS files
// and the spool to every local user. A directory the process may not
// change (a read-only mount, one owned by another user) is left as it is,
// with a warning: that is the operator's to decide, not a reason to refuse
// to start.
func privateDirs(log *slog.Logger, dirs ...string) {
	for _, d := range dirs {
		st, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && (!st.IsDir() || st.Mode().Perm()&0o077 == 0)) {
			continue
		}
		if err == nil {
			if err = os.Chmod(d, 0o700); err == nil {
				log.Warn("state directory was open to other users; tightened to 0700", "dir", d, "was", st.Mode().Perm().String())
				continue
			}
		}
		log.Warn("state directory is open to other users and could not be tightened to 0700", "dir", d, "err", err)
	}
}
