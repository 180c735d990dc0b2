package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-board", "pi3"},
		{"-board", "pi3", "-o", "x.img", "extra"},
		{"-board", "pi3", "-o", "x.img", "-data-size", "lots"},
		{"-nosuchflag"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		if !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want errUsage", args, err)
		}
		if errOut.Len() == 0 {
			t.Errorf("run(%q) printed nothing to stderr", args)
		}
	}
}

func TestRunBadOutput(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-board", "pi3", "-o", "/dev/sda.img", "-module-dir", "../", "-initramfs", "x"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "image files") {
		t.Errorf("run(-o /dev/...) = %v, want a refusal", err)
	}
	err = run(context.Background(), []string{"-board", "pi3", "-o", "out/x.iso", "-module-dir", "../"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), ".img") {
		t.Errorf("run(-o x.iso) = %v, want a refusal", err)
	}
}
