// Package i18n holds backupctl's user-facing result lines in English and
// German and picks the language from --lang, LC_ALL, LC_MESSAGES or LANG.
//
// Four kinds of text are here: the lines a user reads to learn the outcome
// of a run (the result of a backup, why it did not start, what retention
// deleted, the status report, notification subjects); every word of
// the recovery's screens (recovery.go), whose user may read no English
// at all while his Pi is broken; the restore and clone plans (plan.go)
// he confirms before a disk is overwritten; and backupctl's own words
// (cli.go): the summaries of its commands, the help of its flags and the
// reason a command failed. Details inside error messages
// from the engines stay English: they name files, tools and system errors
// that are searched for on the web, and a half-translated chain of
// wrapped errors reads worse than an English one. Log records are English
// for the same reason.
//
// The catalogue is in tables, in catalogue.go, recovery.go, plan.go and
// cli.go; a test fails when an ID lacks a language or when the translations
// disagree on their format verbs.
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
	m, ok := lookup(id)
	if !ok {
		return fmt.Sprint(append([]any{string(id) + " "}, args...)...)
	}
	f, ok := m[p.lang]
	if !ok {
		f = m[English]
	}
	return fmt.Sprintf(f, p.nested(args)...)
}

// nested prints the Msg arguments of a message in p's language, so a
// message can name another ("partition 2 (the boot partition)").
func (p *Printer) nested(args []any) []any {
	var out []any
	for i, a := range args {
		if m, ok := a.(Msg); ok {
			if out == nil {
				out = slices.Clone(args)
			}
			out[i] = p.Msg(m)
		}
	}
	if out == nil {
		return args
	}
	return out
}

// Msg is a message not yet printed: a model that does not know the
// user's language hands it to the view, which prints it.
type Msg struct {
	ID   ID
	Args []any
}

// M builds a Msg.
func M(id ID, args ...any) Msg { return Msg{ID: id, Args: args} }

// IsZero reports whether m is the empty message.
func (m Msg) IsZero() bool { return m.ID == "" }

// Msg prints m; the empty message prints as "".
func (p *Printer) Msg(m Msg) string {
	if m.IsZero() {
		return ""
	}
	return p.Sprintf(m.ID, m.Args...)
}

// tables are the catalogue's parts: the result lines of backupctl, the
// recovery's screens, the restore and clone plans, and backupctl's help
// and error lines. An ID lives in exactly one (the test checks).
var tables = []map[ID]map[Lang]string{catalogue, recoveryCatalogue, filesCatalogue, planCatalogue, cliCatalogue}

func lookup(id ID) (map[Lang]string, bool) {
	for _, t := range tables {
		if m, ok := t[id]; ok {
			return m, true
		}
	}
	return nil, false
}

// IDs lists the catalogue's message IDs, sorted.
func IDs() []ID { return idsOf(tables...) }

// RecoveryIDs lists the IDs of the recovery's screens, sorted.
func RecoveryIDs() []ID { return idsOf(recoveryCatalogue, filesCatalogue) }

func idsOf(ts ...map[ID]map[Lang]string) []ID {
	var ids []ID
	for _, t := range ts {
		for id := range t {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// PlanIDs lists the IDs of the restore and clone plans, sorted.
func PlanIDs() []ID { return idsOf(planCatalogue) }

// Format returns the raw format of id in lang and whether it exists.
func Format(id ID, lang Lang) (string, bool) {
	m, _ := lookup(id)
	f, ok := m[lang]
	return f, ok
}

// Error is an error whose text is a catalogue message without arguments.
// Error() is English (logs stay English); Translate prints it, and any
// error wrapping it, in the user's language.
type Error struct{ ID ID }

// Err returns the Error for id.
func Err(id ID) *Error { return &Error{ID: id} }

func (e *Error) Error() string { return New(English).Sprintf(e.ID) }

// Translate prints err in p's language: the English text of every Error
// in its chain is replaced by its translation; the rest (paths, system
// errors, engine details) stays as it is.
func (p *Printer) Translate(err error) string {
	s := err.Error()
	if p.lang == English {
		return s
	}
	var walk func(error)
	walk = func(e error) {
		if ce, ok := e.(*Error); ok {
			s = strings.ReplaceAll(s, ce.Error(), p.Sprintf(ce.ID))
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			if n := u.Unwrap(); n != nil {
				walk(n)
			}
		case interface{ Unwrap() []error }:
			for _, n := range u.Unwrap() {
				walk(n)
			}
		}
	}
	walk(err)
	return s
}
