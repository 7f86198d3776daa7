package main

import (
	"context"
	"reflect"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func withOutputs(in resource.PropertyMap) resource.PropertyMap {
	out := in.Copy()
	out["stdout"] = str("done")
	out["stderr"] = str("")
	return out
}

func TestDiff(t *testing.T) {
	base := resource.PropertyMap{
		"create":      str("alembic upgrade head"),
		"delete":      str("alembic downgrade -1"),
		"environment": obj("PROTEA_DB_URL", secret(str("postgresql://u:pw@h/db"))),
		"triggers":    strList("a"),
	}
	with := func(k string, v resource.PropertyValue) resource.PropertyMap {
		m := base.Copy()
		m[resource.PropertyKey(k)] = v
		return m
	}
	without := func(k string) resource.PropertyMap {
		m := base.Copy()
		delete(m, resource.PropertyKey(k))
		return m
	}
	type want struct {
		changes  pulumirpc.DiffResponse_DiffChanges
		replaces []string
		diffs    []string
		detailed map[string]pulumirpc.PropertyDiff_Kind
	}
	cases := []struct {
		name string
		news resource.PropertyMap
		want want
	}{
		{"no change", base, want{pulumirpc.DiffResponse_DIFF_NONE, nil, nil, map[string]pulumirpc.PropertyDiff_Kind{}}},
		{"create changed updates", with("create", str("alembic upgrade abc")), want{
			pulumirpc.DiffResponse_DIFF_SOME, nil, []string{"create"},
			map[string]pulumirpc.PropertyDiff_Kind{"create": pulumirpc.PropertyDiff_UPDATE}}},
		{"delete only updates (upstream reruns create/update)", with("delete", str("true")), want{
			pulumirpc.DiffResponse_DIFF_SOME, nil, []string{"delete"},
			map[string]pulumirpc.PropertyDiff_Kind{"delete": pulumirpc.PropertyDiff_UPDATE}}},
		{"logging added updates", with("logging", str("none")), want{
			pulumirpc.DiffResponse_DIFF_SOME, nil, []string{"logging"},
			map[string]pulumirpc.PropertyDiff_Kind{"logging": pulumirpc.PropertyDiff_ADD}}},
		{"secret env value changed", with("environment", obj("PROTEA_DB_URL", secret(str("postgresql://u:pw2@h/db")))), want{
			pulumirpc.DiffResponse_DIFF_SOME, nil, []string{"environment"},
			map[string]pulumirpc.PropertyDiff_Kind{"environment.PROTEA_DB_URL": pulumirpc.PropertyDiff_UPDATE}}},
		{"trigger element changed replaces", with("triggers", strList("b")), want{
			pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers"}, []string{"triggers"},
			map[string]pulumirpc.PropertyDiff_Kind{"triggers[0]": pulumirpc.PropertyDiff_UPDATE_REPLACE}}},
		{"trigger added replaces", with("triggers", strList("a", "b")), want{
			pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers"}, []string{"triggers"},
			map[string]pulumirpc.PropertyDiff_Kind{"triggers[1]": pulumirpc.PropertyDiff_ADD_REPLACE}}},
		{"triggers removed replaces", without("triggers"), want{
			pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers"}, []string{"triggers"},
			map[string]pulumirpc.PropertyDiff_Kind{"triggers": pulumirpc.PropertyDiff_DELETE_REPLACE}}},
		{"unknown create updates", with("create", unknown()), want{
			pulumirpc.DiffResponse_DIFF_SOME, nil, []string{"create"},
			map[string]pulumirpc.PropertyDiff_Kind{"create": pulumirpc.PropertyDiff_UPDATE}}},
		{"update added", with("update", str("x")), want{
			pulumirpc.DiffResponse_DIFF_SOME, nil, []string{"update"},
			map[string]pulumirpc.PropertyDiff_Kind{"update": pulumirpc.PropertyDiff_ADD}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newTestProvider(nil)
			if _, err := p.Configure(context.Background(), &pulumirpc.ConfigureRequest{
				SendsOldInputs: true, SendsOldInputsToDelete: true,
			}); err != nil {
				t.Fatal(err)
			}
			resp, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{
				Urn:       testURN,
				Olds:      mustMarshal(t, withOutputs(base)),
				OldInputs: mustMarshal(t, base),
				News:      mustMarshal(t, c.news),
			})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetChanges() != c.want.changes {
				t.Errorf("changes = %v, want %v", resp.GetChanges(), c.want.changes)
			}
			if !reflect.DeepEqual(resp.GetReplaces(), c.want.replaces) {
				t.Errorf("replaces = %v, want %v", resp.GetReplaces(), c.want.replaces)
			}
			if !reflect.DeepEqual(resp.GetDiffs(), c.want.diffs) {
				t.Errorf("diffs = %v, want %v", resp.GetDiffs(), c.want.diffs)
			}
			if !resp.GetHasDetailedDiff() {
				t.Errorf("hasDetailedDiff = false")
			}
			got := map[string]pulumirpc.PropertyDiff_Kind{}
			for k, v := range resp.GetDetailedDiff() {
				got[k] = v.GetKind()
			}
			if !reflect.DeepEqual(got, c.want.detailed) {
				t.Errorf("detailedDiff = %v, want %v", got, c.want.detailed)
			}
			if resp.GetDeleteBeforeReplace() {
				t.Errorf("the provider must leave deleteBeforeReplace to the resource option")
			}
		})
	}
}

func TestDiffWithoutOldInputsUsesState(t *testing.T) {
	in := resource.PropertyMap{"create": str("echo a")}
	resp := diffCommand(diffInput{State: withOutputs(in), News: in})
	if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("outputs in state must not count as changes: %v", resp)
	}
	resp = diffCommand(diffInput{State: withOutputs(in), News: resource.PropertyMap{"create": str("echo b")}})
	if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || len(resp.GetReplaces()) != 0 {
		t.Fatalf("want an update, got %v", resp)
	}
}

func TestDiffIgnoreChanges(t *testing.T) {
	old := resource.PropertyMap{"create": str("echo a"), "triggers": strList("1")}
	news := resource.PropertyMap{"create": str("echo a"), "triggers": strList("2")}
	resp := diffCommand(diffInput{State: withOutputs(old), OldInputs: old, News: news, IgnoreChanges: []string{"triggers"}})
	if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("ignored change still diffs: %v", resp)
	}
}
