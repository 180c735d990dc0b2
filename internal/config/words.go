package config

import (
	"errors"
	"fmt"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// ErrWords is wrapped when a command line is more than words and quotes.
var ErrWords = errors.New("not a plain command")

// SplitCommand turns a command line from the config into an argv with the
// shell's quoting rules — 'single', "double" and backslashes — parsed by
// mvdan.cc/sh rather than by hand. Nothing is expanded or run: a line with
// $VAR, $(…), a pipe, a redirection, ; or && is refused, because writing
// it in the config suggests a shell that will not be there. Use a script
// for that.
func SplitCommand(line string) ([]string, error) {
	cmds, err := splitScript(line)
	if err != nil {
		return nil, err
	}
	if len(cmds) != 1 {
		return nil, fmt.Errorf("%w: %q holds %d commands; give one per entry", ErrWords, line, len(cmds))
	}
	return cmds[0], nil
}

// splitScript parses text as a sequence of simple commands joined by
// newlines, ";" or "&&" (what raspiBackup's -o/-a strings contain) and
// returns each as an argv. Anything else is refused with ErrWords.
func splitScript(text string) ([][]string, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(text), "")
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrWords, text, err)
	}
	var out [][]string
	var walk func(s *syntax.Stmt) error
	walk = func(s *syntax.Stmt) error {
		if s.Negated || s.Background || s.Coprocess || len(s.Redirs) > 0 {
			return fmt.Errorf("%w: %q uses !, &, or a redirection", ErrWords, text)
		}
		switch c := s.Cmd.(type) {
		case *syntax.CallExpr:
			if len(c.Assigns) > 0 {
				return fmt.Errorf("%w: %q sets a variable", ErrWords, text)
			}
			argv, err := literalWords(c.Args)
			if err != nil {
				return fmt.Errorf("%w: %q: %w", ErrWords, text, err)
			}
			if len(argv) > 0 {
				out = append(out, argv)
			}
		case *syntax.BinaryCmd:
			if c.Op != syntax.AndStmt {
				return fmt.Errorf("%w: %q uses %s", ErrWords, text, c.Op)
			}
			if err := walk(c.X); err != nil {
				return err
			}
			return walk(c.Y)
		default:
			return fmt.Errorf("%w: %q is not a plain command", ErrWords, text)
		}
		return nil
	}
	for _, s := range f.Stmts {
		if err := walk(s); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// literalWords evaluates words that hold only literals and quotes, with
// the shell's quote removal and nothing else: no tilde, no globbing.
func literalWords(words []*syntax.Word) ([]string, error) {
	var argv []string
	for _, w := range words {
		var b strings.Builder
		for _, p := range w.Parts {
			switch x := p.(type) {
			case *syntax.Lit:
				b.WriteString(unescape(x.Value, ""))
			case *syntax.SglQuoted:
				if x.Dollar {
					return nil, fmt.Errorf("word %q needs a shell to expand", wordSource(w))
				}
				b.WriteString(x.Value)
			case *syntax.DblQuoted:
				if x.Dollar {
					return nil, fmt.Errorf("word %q needs a shell to expand", wordSource(w))
				}
				for _, q := range x.Parts {
					lit, ok := q.(*syntax.Lit)
					if !ok {
						return nil, fmt.Errorf("word %q needs a shell to expand", wordSource(w))
					}
					// In double quotes a backslash escapes only these.
					b.WriteString(unescape(lit.Value, "$`\"\\\n"))
				}
			default:
				return nil, fmt.Errorf("word %q needs a shell to expand", wordSource(w))
			}
		}
		argv = append(argv, b.String())
	}
	return argv, nil
}

// unescape removes the backslashes the shell would: before any character
// when only is "", otherwise only before the characters in only. A
// backslash-newline disappears entirely.
func unescape(s, only string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (only == "" || strings.IndexByte(only, s[i+1]) >= 0) {
			i++
			if s[i] != '\n' {
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func wordSource(w *syntax.Word) string {
	var b strings.Builder
	_ = syntax.NewPrinter().Print(&b, w)
	return b.String()
}

// JoinCommand quotes argv back into a line that SplitCommand reads as the
// same argv. Words with anything but safe characters go in single quotes,
// which the shell (and SplitCommand) take byte for byte; a single quote
// inside becomes '\”.
func JoinCommand(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, safeChars) == "" {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// safeChars need no quoting anywhere in a word.
const safeChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+,"
