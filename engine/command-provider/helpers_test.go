package main

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

const testURN = "urn:pulumi:dev::proj::protea:rollout:Migration$command:local:Command::migrate"

func str(s string) resource.PropertyValue { return resource.NewStringProperty(s) }

func secret(v resource.PropertyValue) resource.PropertyValue { return resource.MakeSecret(v) }

func unknown() resource.PropertyValue { return resource.MakeComputed(str("")) }

func strList(ss ...string) resource.PropertyValue {
	var vs []resource.PropertyValue
	for _, s := range ss {
		vs = append(vs, str(s))
	}
	return resource.NewArrayProperty(vs)
}

func obj(kv ...any) resource.PropertyValue {
	m := resource.PropertyMap{}
	for i := 0; i < len(kv); i += 2 {
		v := kv[i+1]
		switch v := v.(type) {
		case string:
			m[resource.PropertyKey(kv[i].(string))] = str(v)
		case resource.PropertyValue:
			m[resource.PropertyKey(kv[i].(string))] = v
		}
	}
	return resource.NewObjectProperty(m)
}

func mustMarshal(t *testing.T, m resource.PropertyMap) *structpb.Struct {
	t.Helper()
	s, err := marshal(m)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return s
}

func mustUnmarshal(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := unmarshal(s)
	if err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return m
}

// plainString returns the string inside v (through a secret) and whether v was secret.
func plainString(t *testing.T, v resource.PropertyValue) (string, bool) {
	t.Helper()
	isSecret := v.IsSecret()
	v = unwrap(v)
	if !v.IsString() {
		t.Fatalf("expected a string, got %v", v)
	}
	return v.StringValue(), isSecret
}

// logRecorder collects logged lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
	urns  []string
}

func (r *logRecorder) sink(_ context.Context, urn, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, line)
	r.urns = append(r.urns, urn)
}

func (r *logRecorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string{}, r.lines...)
}

// newTestProvider returns a provider whose command output goes to rec.
func newTestProvider(rec *logRecorder) *provider {
	p := newProvider(nil)
	if rec != nil {
		p.cmd.log = rec.sink
	}
	return p
}
