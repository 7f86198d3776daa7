package main

import (
	"context"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func check(t *testing.T, news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	t.Helper()
	p := newTestProvider(nil)
	resp, err := p.Check(context.Background(), &pulumirpc.CheckRequest{Urn: testURN, News: mustMarshal(t, news)})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return mustUnmarshal(t, resp.GetInputs()), resp.GetFailures()
}

func TestCheckKeepsInputsAndAddsNoDefaults(t *testing.T) {
	// Upstream (since pulumi-command #924) writes no defaults into state: interpreter,
	// logging and addPreviousOutputInEnv defaults apply when a command runs.
	in := resource.PropertyMap{
		"create":      str("echo hi"),
		"environment": obj("PGPASSWORD", secret(str("pw"))),
		"triggers":    resource.NewArrayProperty([]resource.PropertyValue{resource.NewNumberProperty(1), str("x")}),
	}
	out, failures := check(t, in)
	if len(failures) != 0 {
		t.Fatalf("unexpected failures: %v", failures)
	}
	if !out.DeepEquals(in) {
		t.Fatalf("Check changed the inputs:\n got %v\nwant %v", out, in)
	}
	for _, k := range []resource.PropertyKey{"interpreter", "logging", "addPreviousOutputInEnv"} {
		if _, ok := out[k]; ok {
			t.Errorf("Check added a default for %s", k)
		}
	}
	if !out["environment"].ObjectValue()["PGPASSWORD"].IsSecret() {
		t.Errorf("secret environment value lost its secretness")
	}
}

func TestCheckDropsUnknownProperties(t *testing.T) {
	out, failures := check(t, resource.PropertyMap{"create": str("true"), "bogus": str("x")})
	if len(failures) != 0 {
		t.Fatalf("unexpected failures: %v", failures)
	}
	if _, ok := out["bogus"]; ok {
		t.Fatalf("unknown property kept: %v", out)
	}
}

func TestCheckAcceptsUnknowns(t *testing.T) {
	_, failures := check(t, resource.PropertyMap{
		"create":      unknown(),
		"environment": obj("A", unknown()),
		"interpreter": resource.NewArrayProperty([]resource.PropertyValue{str("/bin/bash"), unknown()}),
		"logging":     unknown(),
	})
	if len(failures) != 0 {
		t.Fatalf("unexpected failures: %v", failures)
	}
}

func TestCheckRejectsBadValues(t *testing.T) {
	cases := []struct {
		name     string
		in       resource.PropertyMap
		property string
		reason   string
	}{
		{"create not string", resource.PropertyMap{"create": resource.NewNumberProperty(3)}, "create", "must be a string"},
		{"logging enum", resource.PropertyMap{"logging": str("all")}, "logging", "must be one of"},
		{"env value", resource.PropertyMap{"environment": obj("PORT", resource.NewNumberProperty(5432))},
			"environment.PORT", "must be a string"},
		{"interpreter element", resource.PropertyMap{"interpreter": resource.NewArrayProperty(
			[]resource.PropertyValue{str("/bin/sh"), resource.NewBoolProperty(true)})}, "interpreter[1]", "must be a string"},
		{"addPreviousOutputInEnv", resource.PropertyMap{"addPreviousOutputInEnv": str("yes")},
			"addPreviousOutputInEnv", "must be a boolean"},
		{"triggers", resource.PropertyMap{"triggers": str("x")}, "triggers", "must be a list"},
		{"assetPaths", resource.PropertyMap{"assetPaths": strList("*.txt")}, "assetPaths", "not supported"},
		{"archivePaths", resource.PropertyMap{"archivePaths": strList("**")}, "archivePaths", "not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, failures := check(t, c.in)
			if len(failures) != 1 {
				t.Fatalf("want one failure, got %v", failures)
			}
			if failures[0].GetProperty() != c.property || !strings.Contains(failures[0].GetReason(), c.reason) {
				t.Fatalf("got failure %q: %q; want %q: ...%q...", failures[0].GetProperty(),
					failures[0].GetReason(), c.property, c.reason)
			}
		})
	}
}

func TestCheckAcceptsEmptyAssetLists(t *testing.T) {
	_, failures := check(t, resource.PropertyMap{"assetPaths": strList(), "archivePaths": strList()})
	if len(failures) != 0 {
		t.Fatalf("unexpected failures: %v", failures)
	}
}

func TestCheckRejectsOtherTypes(t *testing.T) {
	p := newTestProvider(nil)
	_, err := p.Check(context.Background(), &pulumirpc.CheckRequest{
		Urn: "urn:pulumi:dev::proj::command:remote:Command::x",
	})
	if err == nil || !strings.Contains(err.Error(), "command:remote:Command") {
		t.Fatalf("want an error naming the type, got %v", err)
	}
}
