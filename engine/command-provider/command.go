package main

import (
	"context"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// The resource and function this provider implements.
const (
	tokenCommand = "command:local:Command"
	tokenRun     = "command:local:run"
)

// logSink receives the output lines a command logs, addressed to a resource URN
// (empty for invokes, as upstream).
type logSink func(ctx context.Context, urn string, line string)

// commandOps implements the behaviour of command:local:Command and command:local:run on
// unmarshalled property maps (secrets and unknowns kept). It follows upstream's
// provider/pkg/provider/local/commandController.go and runController.go, as run by
// pulumi-go-provider's infer layer.
type commandOps struct {
	log logSink
}

func unknownString() resource.PropertyValue {
	return resource.MakeComputed(resource.NewStringProperty(""))
}

// markSecret wraps v as a secret unless it already is one.
func markSecret(v resource.PropertyValue, secret bool) resource.PropertyValue {
	if asUpstream || !secret || v.IsSecret() {
		return v
	}
	return resource.MakeSecret(v)
}

func (o *commandOps) spec(ctx context.Context, urn, command string, args baseArgs, secrets []string,
	prevStdout, prevStderr string,
) runSpec {
	s := runSpec{
		Command:    command,
		Args:       args,
		PrevStdout: prevStdout,
		PrevStderr: prevStderr,
		Redact:     newRedactor(secrets),
	}
	if o.log != nil {
		s.Log = func(line string) { o.log(ctx, urn, line) }
	}
	return s
}

// setCollectedOutputs mirrors upstream for empty assetPaths/archivePaths (non-empty
// ones are rejected): an empty asset map and an empty archive.
func setCollectedOutputs(out resource.PropertyMap, args baseArgs) error {
	if args.HasAssetPaths {
		out[keyAssets] = resource.NewObjectProperty(resource.PropertyMap{})
	}
	if args.HasArchivePaths {
		a, err := resource.NewAssetArchive(map[string]any{})
		if err != nil {
			return err
		}
		out[keyArchive] = resource.NewArchiveProperty(a)
	}
	return nil
}

// create runs `create` (unless previewing) and returns the resource's ID and outputs:
// its inputs as given plus stdout and stderr.
func (o *commandOps) create(ctx context.Context, urn resource.URN, props resource.PropertyMap, preview bool,
) (string, resource.PropertyMap, error) {
	id, err := resource.NewUniqueHex(urn.Name(), 8, 0)
	if err != nil {
		return "", nil, err
	}
	out := filterInputs(props, commandInputKinds)
	secretOut := outputsShouldBeSecret(props, keyCreate)

	if preview {
		// Nothing runs during preview; what a command prints is not known yet.
		out[keyStdout] = markSecret(unknownString(), secretOut)
		out[keyStderr] = markSecret(unknownString(), secretOut)
		return id, out, nil
	}

	args, err := decodeBase(props)
	if err != nil {
		return "", nil, err
	}
	command, err := stringInput(props, keyCreate)
	if err != nil {
		return "", nil, err
	}
	var res runResult
	if command != nil {
		res, err = runCommand(ctx, o.spec(ctx, string(urn), *command, args, secretStrings(props), "", ""))
		if err != nil {
			return "", nil, err
		}
	}
	out[keyStdout] = markSecret(resource.NewStringProperty(res.Stdout), secretOut)
	out[keyStderr] = markSecret(resource.NewStringProperty(res.Stderr), secretOut)
	if err := setCollectedOutputs(out, args); err != nil {
		return "", nil, err
	}
	return id, out, nil
}

// previousOutputs returns the plain stdout/stderr recorded in state and whether either
// is secret.
func previousOutputs(state resource.PropertyMap) (string, string, bool) {
	get := func(k resource.PropertyKey) (string, bool) {
		v, ok := state[k]
		if !ok || isUnknown(v) {
			return "", false
		}
		secret := isSecretValue(v)
		if v = unwrap(v); v.IsString() {
			return v.StringValue(), secret
		}
		return "", secret
	}
	so, s1 := get(keyStdout)
	se, s2 := get(keyStderr)
	return so, se, s1 || s2
}

// update runs `update` (or `create` when `update` is not set) with the new inputs and
// the previous stdout/stderr in the environment.
func (o *commandOps) update(ctx context.Context, urn resource.URN, state, news resource.PropertyMap, preview bool,
) (resource.PropertyMap, error) {
	out := filterInputs(news, commandInputKinds)
	// Upstream starts from the new inputs plus the old outputs.
	for _, k := range []resource.PropertyKey{keyStdout, keyStderr, keyAssets, keyArchive} {
		if v, ok := state[k]; ok {
			out[k] = v
		}
	}

	commandKey := keyCreate
	if v, ok := news[keyUpdate]; ok && !v.IsNull() {
		commandKey = keyUpdate
	}
	prevStdout, prevStderr, prevSecret := previousOutputs(state)
	secretOut := outputsShouldBeSecret(news, commandKey)

	if preview {
		// Outputs stay as they were unless an input they depend on (all of them) is
		// unknown or changed, as in upstream's default dependency wiring.
		changed := false
		for k := range commandInputKinds {
			key := resource.PropertyKey(k)
			nv, hasNew := news[key]
			if hasNew && isUnknown(nv) {
				changed = true
				break
			}
			if ov, hasOld := state[key]; hasOld && !nv.DeepEquals(ov) {
				changed = true
				break
			}
		}
		for _, k := range []resource.PropertyKey{keyStdout, keyStderr, keyAssets, keyArchive} {
			v, ok := out[k]
			if !ok {
				continue
			}
			if changed {
				v = resource.MakeComputed(resource.NewStringProperty(""))
				if k == keyAssets {
					v = resource.MakeComputed(resource.NewObjectProperty(resource.PropertyMap{}))
				}
			}
			if k == keyStdout || k == keyStderr {
				v = markSecret(v, secretOut || (prevSecret && changed))
			}
			out[k] = v
		}
		return out, nil
	}

	args, err := decodeBase(news)
	if err != nil {
		return nil, err
	}
	command, err := stringInput(news, commandKey)
	if err != nil {
		return nil, err
	}
	if command == nil {
		// Neither update nor create: nothing runs and the old outputs stay.
		return out, nil
	}
	if args.addPreviousOutput() && prevSecret {
		secretOut = true
	}
	secrets := secretStrings(news)
	if prevSecret {
		secrets = append(secrets, prevStdout, prevStderr)
	}
	res, err := runCommand(ctx, o.spec(ctx, string(urn), *command, args, secrets, prevStdout, prevStderr))
	if err != nil {
		return nil, err
	}
	out[keyStdout] = markSecret(resource.NewStringProperty(res.Stdout), secretOut)
	out[keyStderr] = markSecret(resource.NewStringProperty(res.Stderr), secretOut)
	if err := setCollectedOutputs(out, args); err != nil {
		return nil, err
	}
	return out, nil
}

// delete runs `delete`, if set, with the settings and outputs recorded in state.
func (o *commandOps) delete(ctx context.Context, urn resource.URN, state resource.PropertyMap) error {
	command, err := stringInput(state, keyDelete)
	if err != nil {
		return err
	}
	if command == nil {
		return nil
	}
	args, err := decodeBase(state)
	if err != nil {
		return err
	}
	prevStdout, prevStderr, _ := previousOutputs(state)
	secrets := secretStrings(state)
	_, err = runCommand(ctx, o.spec(ctx, string(urn), *command, args, secrets, prevStdout, prevStderr))
	return err
}

// run implements the command:local:run invoke: the command always runs, including
// during preview, and its inputs come back with stdout and stderr.
func (o *commandOps) run(ctx context.Context, argsMap resource.PropertyMap,
) (resource.PropertyMap, []checkFailure, error) {
	if failures := validateInputs(argsMap, runInputKinds, []string{keyCommand}); len(failures) > 0 {
		return nil, failures, nil
	}
	if argsMap.ContainsUnknowns() {
		return nil, nil, fmt.Errorf("%s cannot run with unknown inputs", tokenRun)
	}
	args, err := decodeBase(argsMap)
	if err != nil {
		return nil, nil, err
	}
	command, err := stringInput(argsMap, keyCommand)
	if err != nil {
		return nil, nil, err
	}
	res, err := runCommand(ctx, o.spec(ctx, "", *command, args, secretStrings(argsMap), "", ""))
	if err != nil {
		return nil, nil, err
	}
	secretOut := outputsShouldBeSecret(argsMap, keyCommand)
	out := filterInputs(argsMap, runInputKinds)
	out[keyStdout] = markSecret(resource.NewStringProperty(res.Stdout), secretOut)
	out[keyStderr] = markSecret(resource.NewStringProperty(res.Stderr), secretOut)
	if err := setCollectedOutputs(out, args); err != nil {
		return nil, nil, err
	}
	return out, nil, nil
}
