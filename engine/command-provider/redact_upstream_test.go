package main

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

func TestAsUpstreamTurnsOffRedactionAndSecretMarking(t *testing.T) {
	asUpstream = true
	defer func() { asUpstream = false }()
	if got := newRedactor([]string{"hunter22"}).apply("pw=hunter22"); got != "pw=hunter22" {
		t.Fatalf("redacted under upstream behaviour: %q", got)
	}
	if markSecret(resource.NewStringProperty("x"), true).IsSecret() {
		t.Fatal("stdout marked secret under upstream behaviour")
	}
}
