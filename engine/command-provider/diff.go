package main

import (
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// diffInput is what a Diff call gets, already unmarshalled.
type diffInput struct {
	State     resource.PropertyMap // old outputs
	OldInputs resource.PropertyMap // nil when the engine does not send them
	News      resource.PropertyMap // new (checked) inputs
	// IgnoreChanges are property paths whose old values are kept.
	IgnoreChanges []string
}

// replaceOnChange reports whether a change at the given detailed-diff path forces a
// replacement. Upstream marks `triggers` replaceOnChanges in its schema and the SDK
// adds the resource option replaceOnChanges: ["triggers[*]"], so any change under
// triggers replaces; every other change is an in-place update.
func replaceOnChange(path string) bool {
	return rootKey(path) == keyTriggers
}

// rootKey returns the top-level property of a detailed-diff path.
func rootKey(path string) string {
	if pp, err := resource.ParsePropertyPath(path); err == nil && len(pp) > 0 {
		if s, ok := pp[0].(string); ok {
			return s
		}
	}
	if i := strings.IndexAny(path, ".["); i > 0 {
		return path[:i]
	}
	return path
}

// diffCommand implements Diff for command:local:Command the way upstream's inferred
// provider does (pulumi-go-provider v1.3.0 infer/resource.go `diff`): old inputs are
// compared with new inputs; changes under `triggers` replace, all other changes update
// (which runs `update`, or `create` when there is no `update`).
func diffCommand(in diffInput) *pulumirpc.DiffResponse {
	news := in.News.Copy()
	for _, p := range in.IgnoreChanges {
		path, err := resource.ParsePropertyPath(p)
		if err != nil || len(path) == 0 {
			continue
		}
		if v, ok := path.Get(resource.NewObjectProperty(in.State)); ok {
			path.Set(resource.NewObjectProperty(news), v)
		}
	}

	oldInputs := in.OldInputs
	if oldInputs == nil {
		// Without old inputs from the engine, rebuild them from state: outputs are a
		// superset of inputs under the same names.
		oldInputs = resource.PropertyMap{}
		for k := range commandInputKinds {
			if v, ok := in.State[resource.PropertyKey(k)]; ok {
				oldInputs[resource.PropertyKey(k)] = v
			}
		}
	}
	dropInternal := func(m resource.PropertyMap) resource.PropertyMap {
		out := resource.PropertyMap{}
		for k, v := range m {
			if k == "version" || strings.HasPrefix(string(k), "__") {
				continue
			}
			out[k] = v
		}
		return out
	}
	oldInputs = dropInternal(oldInputs)
	news = dropInternal(news)

	objDiff := oldInputs.Diff(news)
	detailed := plugin.NewDetailedDiffFromObjectDiff(objDiff, false)

	resp := &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_NONE,
		HasDetailedDiff: true,
		DetailedDiff:    map[string]*pulumirpc.PropertyDiff{},
	}
	if objDiff.AnyChanges() {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	diffs := map[string]bool{}
	replaces := map[string]bool{}
	for path, d := range detailed {
		kind := d.Kind
		if replaceOnChange(path) {
			kind = kind.AsReplace()
		}
		resp.DetailedDiff[path] = &pulumirpc.PropertyDiff{
			Kind:      rpcDiffKind(kind),
			InputDiff: d.InputDiff,
		}
		root := rootKey(path)
		diffs[root] = true
		if kind.IsReplace() {
			replaces[root] = true
		}
	}
	resp.Diffs = sortedKeys(diffs)
	resp.Replaces = sortedKeys(replaces)
	return resp
}

func rpcDiffKind(k plugin.DiffKind) pulumirpc.PropertyDiff_Kind {
	switch k {
	case plugin.DiffAdd:
		return pulumirpc.PropertyDiff_ADD
	case plugin.DiffAddReplace:
		return pulumirpc.PropertyDiff_ADD_REPLACE
	case plugin.DiffDelete:
		return pulumirpc.PropertyDiff_DELETE
	case plugin.DiffDeleteReplace:
		return pulumirpc.PropertyDiff_DELETE_REPLACE
	case plugin.DiffUpdateReplace:
		return pulumirpc.PropertyDiff_UPDATE_REPLACE
	default:
		return pulumirpc.PropertyDiff_UPDATE
	}
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
