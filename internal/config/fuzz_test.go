package config

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// seeds adds every testdata file with the given extension as a seed.
func seeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
}

// sameValues compares every option of a and b by their TOML rendering.
func sameValues(t *testing.T, a, b *Config, keys []string) {
	t.Helper()
	for _, k := range keys {
		o, _ := lookup(k)
		if x, y := format(a, o, true), format(b, o, true); x != y {
			t.Fatalf("%s: %s became %s", k, x, y)
		}
	}
}

// FuzzParse feeds arbitrary text to the config parser. Whatever parses
// must survive a round trip through WriteTOML unchanged, so `config show`
// and `config import` never write a file that reads back differently.
func FuzzParse(f *testing.F) {
	seeds(f, "*.conf")
	f.Add("keep = -1\n[hooks]\ntimeout = \"1h\"\n")
	f.Add("exclude = \"/single\"\n")
	f.Add("a.b.c = 1\n[[x]]\ny = 2\n")
	f.Fuzz(func(t *testing.T, text string) {
		c := Defaults()
		set, _, err := apply(c, text)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteTOML(&out, c, set); err != nil {
			t.Fatal(err)
		}
		c2 := Defaults()
		set2, warnings, err := apply(c2, out.String())
		if err != nil {
			t.Fatalf("written config does not parse: %v\n%s", err, out.String())
		}
		if len(warnings) > 0 || !slices.Equal(set, set2) {
			t.Fatalf("keys %v became %v (warnings %v)", set, set2, warnings)
		}
		sameValues(t, c, c2, set)
	})
}

// FuzzImportRaspiBackup feeds arbitrary text to the raspiBackup importer:
// it must not panic, and what it imports must write and read back intact.
func FuzzImportRaspiBackup(f *testing.F) {
	seeds(f, "raspiBackup*.conf")
	f.Add("DEFAULT_STOPSERVICES=\"a 'b c' && d\"\nDEFAULT_STARTSERVICES='d; a'\n")
	f.Add("DEFAULT_EXCLUDE_LIST=\"--exclude\"\n")
	f.Add("DEFAULT_SMTP_SERVER=h:x\nDEFAULT_KEEPBACKUPS=99999999999999999999\n")
	f.Fuzz(func(t *testing.T, text string) {
		imp, err := ImportRaspiBackup(text)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteTOML(&out, imp.Config, imp.Set); err != nil {
			t.Fatal(err)
		}
		c := Defaults()
		set, warnings, err := apply(c, out.String())
		if err != nil {
			t.Fatalf("imported config does not parse: %v\n%s", err, out.String())
		}
		if len(warnings) > 0 || !slices.Equal(set, imp.Set) {
			t.Fatalf("keys %v became %v (warnings %v)", imp.Set, set, warnings)
		}
		sameValues(t, imp.Config, c, set)
		// Imported commands are argvs the config can split again.
		for _, l := range append(slices.Clone(c.StopCommands), c.StartCommands...) {
			if _, err := SplitCommand(l); err != nil {
				t.Fatalf("imported command %q does not split: %v", l, err)
			}
		}
	})
}

// FuzzSplitCommand checks that JoinCommand inverts SplitCommand.
func FuzzSplitCommand(f *testing.F) {
	f.Add(`/usr/bin/app 'a b' "c \"d\"" e\ f`)
	f.Add("docker compose -f /srv/x.yml stop")
	f.Fuzz(func(t *testing.T, line string) {
		argv, err := SplitCommand(line)
		if err != nil {
			return
		}
		back, err := SplitCommand(JoinCommand(argv))
		if err != nil || !slices.Equal(back, argv) {
			t.Fatalf("%q → %q → %q (%v)", line, argv, back, err)
		}
	})
}
