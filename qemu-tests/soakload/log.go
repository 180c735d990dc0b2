package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// logLine is line seq of the log, newline included: "SEQ DATA CRC32\n",
// the checksum over "SEQ DATA".
func logLine(seq int64, data string) []byte {
	body := fmt.Sprintf("%d %s", seq, data)
	return fmt.Appendf(nil, "%s %08x\n", body, crc32.ChecksumIEEE([]byte(body)))
}

// appendLog writes a line every 50 ms, each with one write(2), until
// SIGTERM. It is not stopped for a backup: what a backup holds of it is
// whatever was on disk (tar, rsync) or in the blocks (dd) at that moment.
func appendLog(args []string) error {
	fs := flag.NewFlagSet("log", flag.ContinueOnError)
	file := fs.String("file", "", "log file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("-file is required")
	}
	seq := int64(1)
	if b, err := os.ReadFile(*file); err == nil {
		lines, _, err := verifyLog(b)
		if err != nil {
			return err
		}
		seq = lines + 1
		// A torn tail from a crash is cut off, so the log goes on clean.
		if err := os.Truncate(*file, int64(len(b)-len(tailOf(b)))); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(*file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 24)
	for {
		select {
		case <-term:
			return f.Sync()
		case <-tick.C:
			rand.Read(buf)
			if _, err := f.Write(logLine(seq, hex.EncodeToString(buf))); err != nil {
				return err
			}
			seq++
		}
	}
}

// verifyLog checks the log up to its last clean line: lines 1..n in
// order, each with its checksum. After them may come one torn line (no
// newline yet) or zeros (a crash image: the size was written, the data
// not yet), nothing else.
func verifyLog(b []byte) (lines int64, tail int, err error) {
	rest := b
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		if !validLine(rest[:i+1], lines+1) {
			break
		}
		lines++
		rest = rest[i+1:]
	}
	if t := bytes.Trim(rest, "\x00"); bytes.IndexByte(t, '\n') >= 0 {
		return lines, len(rest), fmt.Errorf("log line %d is bad and is not the torn tail: %.80q", lines+1, rest)
	}
	return lines, len(rest), nil
}

func tailOf(b []byte) []byte {
	_, n, _ := verifyLog(b)
	return b[len(b)-n:]
}

func validLine(l []byte, seq int64) bool {
	f := bytes.Fields(l)
	if len(f) != 3 {
		return false
	}
	n, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil || n != seq {
		return false
	}
	return bytes.Equal(l, logLine(seq, string(f[1])))
}
