package main

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// checkResult is what check found in a restored root.
type checkResult struct {
	Integrity string `json:"integrity"` // PRAGMA integrity_check: "ok"
	pauseState
	LogLines int64 `json:"log_lines"`
	LogTail  int   `json:"log_tail_bytes"`
}

// check judges a restored root: the database passes PRAGMA
// integrity_check and every row its own checksum, it equals the state the
// service recorded when it paused for this backup (-rows, -sha256), and
// the unstopped writer's log verifies up to a clean line. It prints the
// findings as JSON and fails on the first difference.
func check(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	root := fs.String("root", "", "restored root filesystem (mounted read-only)")
	db := fs.String("db", "var/lib/soakload/soak.db", "database, relative to -root")
	logf := fs.String("log", "var/log/soakload/writer.log", "log, relative to -root")
	rows := fs.Int64("rows", -1, "rows the database held at the pause")
	sum := fs.String("sha256", "", "SHA-256 of the database file at the pause")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var r checkResult
	var err error
	if r.pauseState, r.Integrity, err = checkDB(filepath.Join(*root, *db)); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(*root, *logf))
	if err != nil {
		return err
	}
	r.LogLines, r.LogTail, err = verifyLog(b)
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	switch {
	case err != nil:
		return err
	case r.Integrity != "ok":
		return fmt.Errorf("integrity_check: %s", r.Integrity)
	case r.LogLines == 0:
		return errors.New("the log has no clean line")
	case *rows >= 0 && r.Rows != *rows:
		return fmt.Errorf("the database has %d rows; the service held %d when it paused", r.Rows, *rows)
	case *sum != "" && r.DBSHA256 != *sum:
		return fmt.Errorf("the database file is not the one the service left at the pause (SHA-256 %s, want %s)", r.DBSHA256, *sum)
	case r.WALBytes != 0:
		return fmt.Errorf("the WAL holds %d bytes; the pause checkpointed it to 0", r.WALBytes)
	}
	return nil
}

// checkDB hashes the database file as restored, then opens a copy (the
// restored root is read-only, and SQLite writes its -shm) and runs the
// checks.
func checkDB(path string) (st pauseState, integrity string, err error) {
	tmp, err := os.MkdirTemp("", "soakload-check-")
	if err != nil {
		return st, "", err
	}
	defer os.RemoveAll(tmp)
	h := sha256.New()
	if err := copyFile(path, filepath.Join(tmp, "soak.db"), h); err != nil {
		return st, "", err
	}
	st.DBSHA256 = hex.EncodeToString(h.Sum(nil))
	if fi, err := os.Stat(path + "-wal"); err == nil {
		st.WALBytes = fi.Size()
		if err := copyFile(path+"-wal", filepath.Join(tmp, "soak.db-wal"), io.Discard); err != nil {
			return st, "", err
		}
	}
	db, err := openDB(filepath.Join(tmp, "soak.db"))
	if err != nil {
		return st, "", err
	}
	defer db.Close()
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil {
		return st, "", fmt.Errorf("integrity_check: %w", err)
	}
	if err := db.QueryRow("SELECT count(*) FROM rows").Scan(&st.Rows); err != nil {
		return st, "", err
	}
	bad, err := badRows(db)
	if err != nil {
		return st, "", err
	}
	if bad != 0 {
		return st, integrity, fmt.Errorf("%d rows do not match their checksum", bad)
	}
	return st, integrity, nil
}

// badRows counts the rows whose payload does not hash to their sum.
func badRows(db *sql.DB) (int64, error) {
	rs, err := db.Query("SELECT payload, sum FROM rows")
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	var bad int64
	for rs.Next() {
		var p []byte
		var sum string
		if err := rs.Scan(&p, &sum); err != nil {
			return 0, err
		}
		if h := sha256.Sum256(p); hex.EncodeToString(h[:]) != sum {
			bad++
		}
	}
	return bad, rs.Err()
}

func copyFile(from, to string, h io.Writer) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
