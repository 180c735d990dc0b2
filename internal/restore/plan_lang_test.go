package restore

import (
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/i18n"
)

// englishTells are the words of the plan table's English texts that its
// German texts do not have: a German plan that contains one of them
// printed an English sentence (or a piece of one).
func englishTells(t *testing.T) map[string]i18n.ID {
	t.Helper()
	verbs := regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z]|\n`)
	var german strings.Builder
	for _, id := range i18n.PlanIDs() {
		de, _ := i18n.Format(id, i18n.German)
		german.WriteString(de + "\n")
	}
	tells := map[string]i18n.ID{}
	for _, id := range i18n.PlanIDs() {
		en, _ := i18n.Format(id, i18n.English)
		for _, frag := range verbs.Split(en, -1) {
			// Words the German texts use too ("/boot", "rsync -aHAX")
			// tell nothing.
			frag = strings.Trim(frag, " ()[],;:.-=/")
			if len(frag) < 4 || strings.Contains(german.String(), frag) {
				continue
			}
			tells[frag] = id
		}
	}
	if len(tells) < 50 {
		t.Fatalf("only %d English fragments in the plan table", len(tells))
	}
	return tells
}

// checkGerman fails when text holds an English fragment of the plan table
// as a whole word.
func checkGerman(t *testing.T, tells map[string]i18n.ID, text string) {
	t.Helper()
	var found []string
	for frag, id := range tells {
		re := regexp.MustCompile(`(^|[^\pL])` + regexp.QuoteMeta(frag) + `($|[^\pL])`)
		if re.MatchString(text) {
			found = append(found, string(id)+": "+frag)
		}
	}
	slices.Sort(found)
	if len(found) > 0 {
		t.Errorf("the German plan has English text:\n  %s\nplan:\n%s", strings.Join(found, "\n  "), text)
	}
	for _, want := range []string{"Partitionstabelle der Quelle:", "Kennungen", "Platz:"} {
		if !strings.Contains(text, want) {
			t.Errorf("the German plan lacks %q:\n%s", want, text)
		}
	}
}

// TestPlanGerman renders the plans of real restores and clones of the
// fixture in German: each set kind onto a larger new image file, a dd and
// ddz set onto a smaller one (shrink steps), a tgz set over an existing
// image that is resized (what is on the target now), one with
// --keep-ids, a clone onto a new image file and one onto an image that
// holds another disk. No sentence of the plan table may stay English; the
// English plan of the same restore must be the String() it always was.
func TestPlanGerman(t *testing.T) {
	fx := getFixture(t)
	tells := englishTells(t)
	de := i18n.New(i18n.German)
	src := fx.disk
	full := src.BootStart + src.BootSize + src.RootSize
	small := src.BootStart + src.BootSize + 96<<20
	check := func(t *testing.T, p interface {
		String() string
		Text(*i18n.Printer) string
	}) {
		t.Helper()
		text := p.Text(de)
		t.Logf("German plan:\n%s", text)
		checkGerman(t, tells, text)
		if en := p.String(); en != p.Text(i18n.New(i18n.English)) || en == text {
			t.Errorf("String() is not the English Text, or the German is the English:\n%s", en)
		}
	}
	kinds := make([]string, 0, len(fx.sets))
	for k := range fx.sets {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			p, err := planFor(t, fx, kind, filepath.Join(t.TempDir(), "new.img"), full*3/2, false)
			if err != nil {
				t.Fatal(err)
			}
			check(t, p)
		})
	}
	for _, kind := range []string{"dd", "ddz"} {
		t.Run(kind+" shrunk", func(t *testing.T) {
			p, err := planFor(t, fx, kind, filepath.Join(t.TempDir(), "small.img"), small, false)
			if err != nil {
				t.Fatal(err)
			}
			if p.shrink == nil {
				t.Fatal("root not planned to shrink")
			}
			check(t, p)
		})
	}
	t.Run("tgz over an image resized", func(t *testing.T) {
		img := filepath.Join(t.TempDir(), "old.img")
		if err := copyFile(src.Path, img, backupset.CompressNone); err != nil {
			t.Fatal(err)
		}
		p, err := planFor(t, fx, "tgz", img, full*3/2, false)
		if err != nil {
			t.Fatal(err)
		}
		if p.Target.Current == nil || p.Target.OldSize == p.Target.Size {
			t.Fatalf("target %+v: want an existing image being resized", p.Target)
		}
		check(t, p)
	})
	t.Run("keep ids", func(t *testing.T) {
		p, err := planFor(t, fx, "rsync", filepath.Join(t.TempDir(), "k.img"), full, true)
		if err != nil {
			t.Fatal(err)
		}
		check(t, p)
	})
	t.Run("clone", func(t *testing.T) {
		dir := t.TempDir()
		occupied := filepath.Join(dir, "occupied.img")
		if err := copyFile(src.Path, occupied, backupset.CompressNone); err != nil {
			t.Fatal(err)
		}
		for _, target := range []string{filepath.Join(dir, "new.img"), occupied} {
			p, err := NewClonePlan(context.Background(), CloneOptions{Source: src.Path, Target: target, Size: 384 << 20, Log: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if p.Sync {
				t.Fatalf("%s: planned as a sync", target)
			}
			check(t, p)
		}
	})
}
