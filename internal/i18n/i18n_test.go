package i18n

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"testing"
)

// verbs matches fmt verbs, without %%.
var verbs = regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z]`)

// TestCatalogueComplete fails when a message lacks a language or when a
// translation's verbs differ from the English ones (a wrong verb prints
// %!d(string=...) to the user).
func TestCatalogueComplete(t *testing.T) {
	for _, id := range IDs() {
		en, ok := Format(id, English)
		if !ok || en == "" {
			t.Errorf("%s: no English text", id)
			continue
		}
		for _, l := range Langs() {
			f, ok := Format(id, l)
			if !ok || f == "" {
				t.Errorf("%s: no %s translation", id, l)
				continue
			}
			if got, want := verbs.FindAllString(f, -1), verbs.FindAllString(en, -1); !slices.Equal(got, want) {
				t.Errorf("%s in %s has verbs %q; English has %q", id, l, got, want)
			}
		}
	}
}

func TestPick(t *testing.T) {
	for _, tt := range []struct {
		flag    string
		env     map[string]string
		want    Lang
		wantErr bool
	}{
		{"", nil, English, false},
		{"", map[string]string{"LANG": "de_DE.UTF-8"}, German, false},
		{"", map[string]string{"LANG": "de_DE.UTF-8", "LC_ALL": "C"}, English, false},
		{"", map[string]string{"LANG": "en_GB.UTF-8", "LC_MESSAGES": "de_AT"}, German, false},
		{"", map[string]string{"LANG": "fr_FR.UTF-8"}, English, false},
		{"de", map[string]string{"LC_ALL": "en_US.UTF-8"}, German, false},
		{"en", map[string]string{"LANG": "de_DE"}, English, false},
		{"fr", nil, English, true},
	} {
		got, err := Pick(tt.flag, func(k string) string { return tt.env[k] })
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("Pick(%q, %v) = %s, %v; want %s, error %v", tt.flag, tt.env, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestSprintf(t *testing.T) {
	if got, want := New(German).Sprintf(RetentionDeleted, 2, 3), "Aufbewahrung: Sätze gelöscht 2, behalten 3"; got != want {
		t.Errorf("German = %q; want %q", got, want)
	}
	if got, want := New("fr").Sprintf(RetentionNothing, 1), "retention: nothing to delete, sets kept 1"; got != want {
		t.Errorf("unknown language = %q; want English %q", got, want)
	}
	// A Msg argument is printed in the printer's language.
	if got, want := New(German).Sprintf(NoteNotRestored, 1, M(PlanBootPartition)), "Partition 1 (Boot-Partition) wird nicht wiederhergestellt"; got != want {
		t.Errorf("nested German = %q; want %q", got, want)
	}
	if got := New(English).Sprintf("no.such.id", 1); got != "no.such.id 1" {
		t.Errorf("missing ID = %q", got)
	}
}

// TestRecoveryTranslated: every sentence of the recovery's screens has
// its own German text; a copy of the English one is an untranslated
// entry. Only messages without words may be the same.
func TestRecoveryTranslated(t *testing.T) {
	same := map[ID]bool{UIBytesIn: true, UIFilesTitle: true}
	for _, id := range RecoveryIDs() {
		en, _ := Format(id, English)
		de, _ := Format(id, German)
		if en == de && !same[id] {
			t.Errorf("%s: German is the English text %q", id, en)
		}
	}
}

// TestPlanTranslated: no sentence of the restore and clone plans is an
// English copy. Before the plan table existed, the plan was English only.
func TestPlanTranslated(t *testing.T) { notCopied(t, "plan", PlanIDs()) }

// TestCLITranslated: every summary, flag help and error reason of
// backupctl has its own German text. The error reasons are "%s" in
// English (the error says it) and must name the reason in German.
func TestCLITranslated(t *testing.T) { notCopied(t, "cli", CLIIDs()) }

// notCopied fails for each of ids whose German text is the English one.
func notCopied(t *testing.T, what string, ids []ID) {
	t.Helper()
	if len(ids) == 0 {
		t.Fatalf("no %s IDs", what)
	}
	for _, id := range ids {
		en, _ := Format(id, English)
		de, _ := Format(id, German)
		if en == de {
			t.Errorf("%s: German is the English text %q", id, en)
		}
	}
}

func TestTranslate(t *testing.T) {
	inner := Err(UIErrConfirm)
	err := fmt.Errorf("plan: %w", errors.Join(errors.New("disk gone"), fmt.Errorf("type sdb: %w", inner)))
	if got, want := New(German).Translate(err), "plan: disk gone\ntype sdb: der eingetippte Name passt nicht zur Disk"; got != want {
		t.Errorf("Translate = %q; want %q", got, want)
	}
	if got := New(English).Translate(err); got != err.Error() {
		t.Errorf("English Translate = %q", got)
	}
	if !errors.Is(err, inner) {
		t.Errorf("errors.Is lost the sentinel")
	}
}
