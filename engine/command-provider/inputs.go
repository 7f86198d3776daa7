package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Property names shared by command:local:Command and command:local:run.
const (
	keyCreate                 = "create"
	keyUpdate                 = "update"
	keyDelete                 = "delete"
	keyTriggers               = "triggers"
	keyCommand                = "command"
	keyStdin                  = "stdin"
	keyLogging                = "logging"
	keyInterpreter            = "interpreter"
	keyDir                    = "dir"
	keyEnvironment            = "environment"
	keyAssetPaths             = "assetPaths"
	keyArchivePaths           = "archivePaths"
	keyAddPreviousOutputInEnv = "addPreviousOutputInEnv"

	keyStdout  = "stdout"
	keyStderr  = "stderr"
	keyAssets  = "assets"
	keyArchive = "archive"
)

// Values of the `logging` enum.
const (
	logStdout          = "stdout"
	logStderr          = "stderr"
	logStdoutAndStderr = "stdoutAndStderr"
	logNone            = "none"
)

type valueKind int

const (
	kindString valueKind = iota
	kindBool
	kindStringList
	kindStringMap
	kindAnyList
	kindLogging
)

// baseInputKinds are the inputs every local command accepts.
var baseInputKinds = map[string]valueKind{
	keyStdin:                  kindString,
	keyLogging:                kindLogging,
	keyInterpreter:            kindStringList,
	keyDir:                    kindString,
	keyEnvironment:            kindStringMap,
	keyAssetPaths:             kindStringList,
	keyArchivePaths:           kindStringList,
	keyAddPreviousOutputInEnv: kindBool,
}

// commandInputKinds are the inputs of command:local:Command.
var commandInputKinds = withBase(map[string]valueKind{
	keyTriggers: kindAnyList,
	keyCreate:   kindString,
	keyUpdate:   kindString,
	keyDelete:   kindString,
})

// runInputKinds are the inputs of the command:local:run invoke.
var runInputKinds = withBase(map[string]valueKind{
	keyCommand: kindString,
})

func withBase(extra map[string]valueKind) map[string]valueKind {
	out := map[string]valueKind{}
	for k, v := range baseInputKinds {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// checkFailure mirrors pulumirpc.CheckFailure.
type checkFailure struct {
	Property string
	Reason   string
}

// isUnknown reports whether v is an unknown (computed) value, looking through a
// secret wrapper.
func isUnknown(v resource.PropertyValue) bool {
	switch {
	case v.IsComputed():
		return true
	case v.IsOutput():
		return !v.OutputValue().Known
	case v.IsSecret():
		return isUnknown(v.SecretValue().Element)
	}
	return false
}

// unwrap removes one level of secret/known-output wrapping.
func unwrap(v resource.PropertyValue) resource.PropertyValue {
	for {
		switch {
		case v.IsSecret():
			v = v.SecretValue().Element
		case v.IsOutput() && v.OutputValue().Known:
			v = v.OutputValue().Element
		default:
			return v
		}
	}
}

// isSecretValue reports whether v is (or contains) a secret.
func isSecretValue(v resource.PropertyValue) bool {
	if v.IsOutput() && v.OutputValue().Secret {
		return true
	}
	return v.ContainsSecrets()
}

func typeName(v resource.PropertyValue) string {
	switch {
	case v.IsNull():
		return "null"
	case v.IsBool():
		return "bool"
	case v.IsNumber():
		return "number"
	case v.IsString():
		return "string"
	case v.IsArray():
		return "array"
	case v.IsObject():
		return "object"
	case v.IsAsset():
		return "asset"
	case v.IsArchive():
		return "archive"
	case v.IsResourceReference():
		return "resource reference"
	}
	return v.TypeString()
}

// validateInputs type-checks the inputs of a Command or a run invoke. Unknown values
// (during preview) are accepted wherever they appear. Properties that are not part of
// the schema are ignored (and dropped by filterInputs). The checks are those upstream
// gets from decoding into its typed input struct, plus the `logging` enum and the
// unsupported assetPaths/archivePaths.
func validateInputs(m resource.PropertyMap, kinds map[string]valueKind, required []string) []checkFailure {
	var failures []checkFailure
	fail := func(prop, format string, args ...any) {
		failures = append(failures, checkFailure{Property: prop, Reason: fmt.Sprintf(format, args...)})
	}
	for _, r := range required {
		if v, ok := m[resource.PropertyKey(r)]; !ok || v.IsNull() {
			fail(r, "missing required property '%s'", r)
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for _, k := range keys {
		kind, known := kinds[k]
		if !known {
			continue
		}
		v := m[resource.PropertyKey(k)]
		if isUnknown(v) || v.IsNull() {
			continue
		}
		v = unwrap(v)
		switch kind {
		case kindString:
			if !v.IsString() {
				fail(k, "%s must be a string, not %s", k, typeName(v))
			}
		case kindBool:
			if !v.IsBool() {
				fail(k, "%s must be a boolean, not %s", k, typeName(v))
			}
		case kindLogging:
			if !v.IsString() {
				fail(k, "%s must be a string, not %s", k, typeName(v))
				continue
			}
			switch v.StringValue() {
			case logStdout, logStderr, logStdoutAndStderr, logNone:
			default:
				fail(k, "%s must be one of %q, %q, %q or %q, not %q", k,
					logStdout, logStderr, logStdoutAndStderr, logNone, v.StringValue())
			}
		case kindAnyList:
			if !v.IsArray() {
				fail(k, "%s must be a list, not %s", k, typeName(v))
			}
		case kindStringList:
			if !v.IsArray() {
				fail(k, "%s must be a list of strings, not %s", k, typeName(v))
				continue
			}
			for i, e := range v.ArrayValue() {
				if isUnknown(e) {
					continue
				}
				if e = unwrap(e); !e.IsString() {
					fail(fmt.Sprintf("%s[%d]", k, i), "%s[%d] must be a string, not %s", k, i, typeName(e))
				}
			}
			if (k == keyAssetPaths || k == keyArchivePaths) && len(v.ArrayValue()) > 0 {
				fail(k, "%s is not supported by this build of the command provider "+
					"(protea-rollout engine/command-provider implements local commands without asset "+
					"or archive collection); remove it or pass an empty list", k)
			}
		case kindStringMap:
			if !v.IsObject() {
				fail(k, "%s must be a map of strings, not %s", k, typeName(v))
				continue
			}
			obj := v.ObjectValue()
			for _, ek := range obj.StableKeys() {
				e := obj[ek]
				if isUnknown(e) {
					continue
				}
				if e = unwrap(e); !e.IsString() {
					fail(fmt.Sprintf("%s.%s", k, ek), "%s.%s must be a string, not %s", k, ek, typeName(e))
				}
			}
		}
	}
	return failures
}

// filterInputs keeps only the properties the schema knows (upstream re-encodes its
// typed input struct, which drops anything else) and leaves values, secrets and
// unknowns as they are. No defaults are added: upstream applies them when a command
// runs, so that state written by this provider matches upstream's.
func filterInputs(m resource.PropertyMap, kinds map[string]valueKind) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		if _, ok := kinds[string(k)]; ok && !v.IsNull() {
			out[k] = v
		}
	}
	return out
}

// baseArgs are the decoded (plain, secret-free) values that control how a command runs.
type baseArgs struct {
	Stdin                  *string
	Logging                *string
	Interpreter            []string
	Dir                    *string
	Environment            map[string]string
	AssetPaths             []string
	HasAssetPaths          bool
	ArchivePaths           []string
	HasArchivePaths        bool
	AddPreviousOutputInEnv *bool
}

// stringInput returns the plain string at key, if it is set and known.
func stringInput(m resource.PropertyMap, key string) (*string, error) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok || v.IsNull() {
		return nil, nil
	}
	if isUnknown(v) {
		return nil, fmt.Errorf("%s is unknown", key)
	}
	v = unwrap(v)
	if !v.IsString() {
		return nil, fmt.Errorf("%s must be a string, not %s", key, typeName(v))
	}
	s := v.StringValue()
	return &s, nil
}

func stringListInput(m resource.PropertyMap, key string) ([]string, bool, error) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok || v.IsNull() {
		return nil, false, nil
	}
	if v.ContainsUnknowns() || isUnknown(v) {
		return nil, false, fmt.Errorf("%s is unknown", key)
	}
	v = unwrap(v)
	if !v.IsArray() {
		return nil, false, fmt.Errorf("%s must be a list of strings, not %s", key, typeName(v))
	}
	out := []string{}
	for i, e := range v.ArrayValue() {
		e = unwrap(e)
		if !e.IsString() {
			return nil, false, fmt.Errorf("%s[%d] must be a string, not %s", key, i, typeName(e))
		}
		out = append(out, e.StringValue())
	}
	return out, true, nil
}

// decodeBase extracts the run settings from (validated) inputs or state. It fails on
// unknown values: a command can only run with known inputs.
func decodeBase(m resource.PropertyMap) (baseArgs, error) {
	var a baseArgs
	var err error
	if a.Stdin, err = stringInput(m, keyStdin); err != nil {
		return a, err
	}
	if a.Logging, err = stringInput(m, keyLogging); err != nil {
		return a, err
	}
	if a.Dir, err = stringInput(m, keyDir); err != nil {
		return a, err
	}
	if a.Interpreter, _, err = stringListInput(m, keyInterpreter); err != nil {
		return a, err
	}
	if a.AssetPaths, a.HasAssetPaths, err = stringListInput(m, keyAssetPaths); err != nil {
		return a, err
	}
	if a.ArchivePaths, a.HasArchivePaths, err = stringListInput(m, keyArchivePaths); err != nil {
		return a, err
	}
	if v, ok := m[keyEnvironment]; ok && !v.IsNull() {
		if v.ContainsUnknowns() || isUnknown(v) {
			return a, fmt.Errorf("%s is unknown", keyEnvironment)
		}
		v = unwrap(v)
		if !v.IsObject() {
			return a, fmt.Errorf("%s must be a map of strings, not %s", keyEnvironment, typeName(v))
		}
		a.Environment = map[string]string{}
		for k, e := range v.ObjectValue() {
			e = unwrap(e)
			if !e.IsString() {
				return a, fmt.Errorf("%s.%s must be a string, not %s", keyEnvironment, k, typeName(e))
			}
			a.Environment[string(k)] = e.StringValue()
		}
	}
	if v, ok := m[keyAddPreviousOutputInEnv]; ok && !v.IsNull() {
		if isUnknown(v) {
			return a, fmt.Errorf("%s is unknown", keyAddPreviousOutputInEnv)
		}
		v = unwrap(v)
		if !v.IsBool() {
			return a, fmt.Errorf("%s must be a boolean, not %s", keyAddPreviousOutputInEnv, typeName(v))
		}
		b := v.BoolValue()
		a.AddPreviousOutputInEnv = &b
	}
	if len(a.AssetPaths) > 0 || len(a.ArchivePaths) > 0 {
		return a, fmt.Errorf("assetPaths and archivePaths are not supported by this build of the " +
			"command provider; remove them or pass empty lists")
	}
	return a, nil
}

// addPreviousOutput applies upstream's default: previous outputs go into the
// environment unless addPreviousOutputInEnv is explicitly false.
func (a baseArgs) addPreviousOutput() bool {
	return a.AddPreviousOutputInEnv == nil || *a.AddPreviousOutputInEnv
}

// logStdout / logStderr apply upstream's default (log both) when logging is unset.
func (a baseArgs) logStdout() bool {
	return a.Logging == nil || *a.Logging == logStdout || *a.Logging == logStdoutAndStderr
}

func (a baseArgs) logStderr() bool {
	return a.Logging == nil || *a.Logging == logStderr || *a.Logging == logStdoutAndStderr
}

// outputsShouldBeSecret reports whether an input whose content reaches the command's
// process (the command itself, interpreter, environment, stdin) holds a secret; if one
// does, what the command prints may reveal it, so stdout and stderr are made secret.
func outputsShouldBeSecret(m resource.PropertyMap, commandKey string) bool {
	for _, k := range []string{commandKey, keyInterpreter, keyEnvironment, keyStdin} {
		if v, ok := m[resource.PropertyKey(k)]; ok && isSecretValue(v) {
			return true
		}
	}
	return false
}

// secretStrings collects every secret string in m (at any depth), for redaction.
func secretStrings(m resource.PropertyMap) []string {
	var out []string
	var walk func(v resource.PropertyValue, secret bool)
	walk = func(v resource.PropertyValue, secret bool) {
		switch {
		case v.IsSecret():
			walk(v.SecretValue().Element, true)
		case v.IsOutput():
			o := v.OutputValue()
			walk(o.Element, secret || o.Secret)
		case v.IsString():
			if secret {
				out = append(out, v.StringValue())
			}
		case v.IsArray():
			for _, e := range v.ArrayValue() {
				walk(e, secret)
			}
		case v.IsObject():
			for _, e := range v.ObjectValue() {
				walk(e, secret)
			}
		case v.IsNumber() || v.IsBool():
			if secret {
				out = append(out, strings.TrimSpace(fmt.Sprint(v.V)))
			}
		}
	}
	for _, v := range m {
		walk(v, false)
	}
	return out
}
