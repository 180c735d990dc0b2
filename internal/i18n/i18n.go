// Package i18n holds backupctl's user-facing result lines in English and
// German and picks the language from --lang, LC_ALL, LC_MESSAGES or LANG.
//
// Only the lines a user reads to learn the outcome of a run are here (the
// result of a backup, why it did not start, what retention deleted, the
// status report, notification subjects). Details inside error messages
// from the engines stay English: they name files, tools and system errors
// that are searched for on the web, and a half-translated chain of
// wrapped errors reads worse than an English one. Log records are English
// for the same reason.
//
// The catalogue is a table in catalogue.go; a test fails when an ID lacks
// a language or when the translations disagree on their format verbs.
package i18n

import (
	"fmt"
	"slices"
	"strings"
)

// Lang is a language of the catalogue.
type Lang string

// The languages of the catalogue; English is the fallback.
const (
	English Lang = "en"
	German  Lang = "de"
)

// Langs lists the languages of the catalogue.
func Langs() []Lang { return []Lang{English, German} }

// ID names one message.
type ID string

// Parse turns a --lang value or a locale ("de", "de_DE.UTF-8", "de-AT",
// "C", "POSIX") into a Lang. ok is false for a language we do not have.
func Parse(s string) (Lang, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexAny(s, "_-.@"); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "de":
		return German, true
	case "en", "c", "posix":
		return English, true
	}
	return English, false
}

// Pick chooses the language: flag (--lang, or the lang setting) if given, else the first set
// of LC_ALL, LC_MESSAGES and LANG, as gettext does. A language we lack
// falls back to English; an unknown --lang is an error so a typo shows.
func Pick(flag string, getenv func(string) string) (Lang, error) {
	if flag != "" {
		l, ok := Parse(flag)
		if !ok {
			return English, fmt.Errorf("lang %q (--lang or the lang setting): want one of %s", flag, langList())
		}
		return l, nil
	}
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := getenv(k); v != "" {
			l, _ := Parse(v)
			return l, nil
		}
	}
	return English, nil
}

func langList() string {
	var s []string
	for _, l := range Langs() {
		s = append(s, string(l))
	}
	return strings.Join(s, ", ")
}

// Printer formats messages in one language.
type Printer struct{ lang Lang }

// New returns a Printer for lang; an unknown lang prints English.
func New(lang Lang) *Printer {
	if !slices.Contains(Langs(), lang) {
		lang = English
	}
	return &Printer{lang: lang}
}

// Lang is the printer's language.
func (p *Printer) Lang() Lang { return p.lang }

// Sprintf formats message id. A missing translation falls back to
// English and a missing ID prints the ID itself, so a catalogue bug never
// hides the outcome of a run (the test catches both).
func (p *Printer) Sprintf(id ID, args ...any) string {
	m, ok := catalogue[id]
	if !ok {
		return fmt.Sprint(append([]any{string(id) + " "}, args...)...)
	}
	f, ok := m[p.lang]
	if !ok {
		f = m[English]
	}
	return fmt.Sprintf(f, args...)
}

// IDs lists the catalogue's message IDs, sorted.
func IDs() []ID {
	ids := make([]ID, 0, len(catalogue))
	for id := range catalogue {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Format returns the raw format of id in lang and whether it exists.
func Format(id ID, lang Lang) (string, bool) {
	f, ok := catalogue[id][lang]
	return f, ok
}
