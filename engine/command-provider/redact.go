package main

import (
	"os"
	"sort"
	"strings"
)

// asUpstreamEnv turns off, for the provider's whole life, the two things only this
// stand-in does with secrets (redacting known values from what it emits, and
// marking stdout/stderr secret when a secret went in), so that tests can prove
// what the product does under upstream's pulumi-resource-command.
const asUpstreamEnv = "PROTEA_COMMAND_PROVIDER_AS_UPSTREAM"

var asUpstream = os.Getenv(asUpstreamEnv) == "1"

// minRedactLen is the shortest secret value that is masked in text the provider
// writes (log lines, error messages). Shorter values would mask ordinary characters
// everywhere and protect nothing.
const minRedactLen = 3

const redacted = "[secret]"

// redactor masks known secret values in text the provider itself emits. Upstream
// does not do this; it is a safety net so that a command echoing a password it got
// through a secret environment variable or stdin does not print it to the engine log
// or into an error message.
type redactor struct {
	r *strings.Replacer
}

func newRedactor(secrets []string) *redactor {
	if asUpstream {
		return &redactor{}
	}
	seen := map[string]bool{}
	var vals []string
	add := func(s string) {
		if len(s) >= minRedactLen && !seen[s] {
			seen[s] = true
			vals = append(vals, s)
		}
	}
	for _, s := range secrets {
		add(s)
		// A multi-line secret can only be matched line by line in streamed output.
		if strings.ContainsAny(s, "\r\n") {
			for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
				add(line)
			}
		}
	}
	if len(vals) == 0 {
		return &redactor{}
	}
	// Longest first, so a secret that contains another is masked whole.
	sort.Slice(vals, func(i, j int) bool {
		if len(vals[i]) != len(vals[j]) {
			return len(vals[i]) > len(vals[j])
		}
		return vals[i] < vals[j]
	})
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, redacted)
	}
	return &redactor{r: strings.NewReplacer(pairs...)}
}

func (r *redactor) apply(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}
