package main

import (
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // pure Go: cross-compiles for the arm64 guest without cgo
)

// pauseState is what the database held when the service paused: the data
// a backup taken while it is paused must bring back exactly.
type pauseState struct {
	Rows     int64  `json:"rows"`
	DBSHA256 string `json:"db_sha256"`
	WALBytes int64  `json:"wal_bytes"` // 0: all of the data is in the database file
}

const (
	pidName       = "pid"
	pausedName    = "paused.json"
	lastPauseName = "last-pause.json"
)

// openDB opens the database with one connection, so the checkpoint runs
// on the connection that wrote.
func openDB(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	dbPath := fs.String("db", "", "database file")
	state := fs.String("state", "", "state folder (pid, paused.json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dbPath == "" || *state == "" {
		return errors.New("-db and -state are required")
	}
	if err := os.MkdirAll(*state, 0o755); err != nil {
		return err
	}
	db, err := openDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		return fmt.Errorf("journal mode %q (%v); want wal", mode, err)
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, at TEXT NOT NULL, payload BLOB NOT NULL, sum TEXT NOT NULL)`); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT)
	if err := os.WriteFile(filepath.Join(*state, pidName), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Println("SOAKLOAD-SERVING")
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case s := <-sigs:
			switch s {
			case syscall.SIGUSR1:
				if err := pause(db, *dbPath, *state, sigs); err != nil {
					return err
				}
			case syscall.SIGUSR2: // not paused: nothing to resume
			default:
				return nil
			}
		case <-tick.C:
			if err := insert(db, 5); err != nil {
				return err
			}
		}
	}
}

// insert adds n rows in one transaction; each row's sum is the SHA-256 of
// its payload, so a row torn by a bad copy shows.
func insert(db *sql.DB, n int) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for range n {
		p := make([]byte, 64+int(time.Now().UnixNano()%192))
		rand.Read(p)
		sum := sha256.Sum256(p)
		if _, err := tx.Exec(`INSERT INTO rows (at, payload, sum) VALUES (?, ?, ?)`, time.Now().UTC().Format(time.RFC3339Nano), p, hex.EncodeToString(sum[:])); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// pause brings the data to rest, records it and waits for SIGUSR2 (or
// SIGTERM).
func pause(db *sql.DB, dbPath, state string, sigs <-chan os.Signal) error {
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	var st pauseState
	if err := db.QueryRow("SELECT count(*) FROM rows").Scan(&st.Rows); err != nil {
		return err
	}
	f, err := os.Open(dbPath)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return err
	}
	st.DBSHA256 = hex.EncodeToString(h.Sum(nil))
	if fi, err := os.Stat(dbPath + "-wal"); err == nil {
		st.WALBytes = fi.Size()
	}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(state, lastPauseName), b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(state, pausedName), b, 0o644); err != nil {
		return err
	}
	fmt.Printf("SOAKLOAD-PAUSED %s\n", b)
	for s := range sigs {
		switch s {
		case syscall.SIGUSR2:
			fmt.Println("SOAKLOAD-RESUMED")
			return os.Remove(filepath.Join(state, pausedName))
		case syscall.SIGUSR1: // already paused
		default:
			os.Remove(filepath.Join(state, pausedName))
			return errors.New("terminated while paused")
		}
	}
	return nil
}

// signalAndWait is the stop (pause) or start (resume) command: it signals
// the service and returns once its paused.json says it did as asked.
func signalAndWait(args []string, stop bool) error {
	fs := flag.NewFlagSet("pause", flag.ContinueOnError)
	state := fs.String("state", "", "state folder of serve")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(*state, pidName))
	if err != nil {
		return fmt.Errorf("service not running: %w", err)
	}
	pid, err := strconv.Atoi(string(b[:len(b)-1]))
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	sig := syscall.SIGUSR2
	if stop {
		sig = syscall.SIGUSR1
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	deadline := time.Now().Add(*timeout)
	for {
		_, err := os.Stat(filepath.Join(*state, pausedName))
		if (err == nil) == stop {
			return nil
		}
		if syscall.Kill(pid, 0) != nil {
			return fmt.Errorf("service (pid %d) is gone", pid)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service (pid %d) did not answer within %s", pid, *timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
