package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/keyprovider/keyprovider/internal/redact"
)

// stepEvent is one line of "keyprov rotate": one step and how it went. It
// holds fingerprints, never a key.
type stepEvent struct {
	// Step is the step: resolve, validate, stage, verify, promote, abandon,
	// wait, report.
	Step string `json:"step"`
	// Status is "ok", "failed", "skipped", "planned" (--dry-run) or
	// "info".
	Status string `json:"status"`
	// Message says what was done, in words.
	Message string `json:"message,omitempty"`
	// Fingerprint and Version are of the key the step is about.
	Fingerprint string `json:"fingerprint,omitempty"`
	Version     string `json:"version,omitempty"`
	// OldFingerprint and OldVersion are of the key that was current (the
	// report).
	OldFingerprint string `json:"old_fingerprint,omitempty"`
	OldVersion     string `json:"old_version,omitempty"`
	// Kind classifies a failure, as check does.
	Kind string `json:"kind,omitempty"`
	// Error is the failure, scrubbed.
	Error string `json:"error,omitempty"`
}

// stepLog writes the steps of a rotation as text lines or JSON Lines,
// every field scrubbed of the keys it was given and of anything shaped like
// a key.
type stepLog struct {
	w       io.Writer
	json    bool
	secrets []string
}

func (l *stepLog) log(e stepEvent) {
	for _, s := range []*string{&e.Message, &e.Error} {
		*s = redact.String(*s, l.secrets...)
	}
	if l.json {
		enc := json.NewEncoder(l.w)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(e)
		return
	}
	line := fmt.Sprintf("%-8s %-7s", e.Step, e.Status)
	line += keyText("old", e.OldFingerprint, e.OldVersion) + keyText("key", e.Fingerprint, e.Version)
	if e.Message != "" {
		line += " " + e.Message
	}
	if e.Error != "" {
		line += ": " + oneLine(e.Error)
	}
	fmt.Fprintln(l.w, line)
}

// keyText is " LABEL FINGERPRINT (version V)", or "" without a fingerprint.
func keyText(label, fingerprint, version string) string {
	if fingerprint == "" {
		return ""
	}
	s := " " + label + " " + fingerprint
	if version != "" {
		s += " (version " + version + ")"
	}
	return s
}
