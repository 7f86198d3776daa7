/**
 * Pulumi mocks, set up once for the unit project (vitest setupFiles). Every
 * registration is recorded with the options the engine would see: parent,
 * dependencies, deleteBeforeReplace, retainOnDelete, protect.
 */
import * as pulumi from "@pulumi/pulumi";

export interface Registration {
    type: string;
    name: string;
    urn: string;
    parent: string;
    dependencies: string[];
    deleteBeforeReplace: boolean;
    retainOnDelete: boolean;
    protect: boolean;
    ignoreChanges: string[];
    additionalSecretOutputs: string[];
    inputs: Record<string, any>;
}

export const registrations: Registration[] = [];

/** What a command's stdout would be, so outputs that parse it resolve. */
/** What the mocked steps print, by name suffix: the program must parse its outputs from this, not invent them. */
export const STDOUT_BY_SUFFIX: Record<string, string> = {
    "-dump": JSON.stringify({ path: "/backups/pre-t16-20261125-120000.dump", sizeBytes: 2048, sha256: "ab".repeat(32), tocEntries: 9, seconds: 1 }),
    "-gate": JSON.stringify({ nulls: [], parity: [] }),
    "-apply": JSON.stringify({ mode: "apply", reported: "not reported", database: { dataset: { rows: 2, nullsBefore: 2, nullsAfter: 0, written: 2 } }, logFile: null, millis: 7 }),
    "-dry-run": JSON.stringify({ mode: "dry-run", reported: "not reported", database: {}, logFile: null, millis: 5 }),
};

pulumi.runtime.setMocks(
    {
        newResource(args) {
            const suffix = Object.keys(STDOUT_BY_SUFFIX).find((s) => args.name.endsWith(s));
            return { id: `${args.name}-id`, state: { ...args.inputs, stdout: suffix ? STDOUT_BY_SUFFIX[suffix] : "" } };
        },
        call(args) {
            return args.inputs;
        },
    },
    "rollout",
    "prod",
    false,
);

const monitor = pulumi.runtime.getMonitor() as any;
const register = monitor.registerResource.bind(monitor);
monitor.registerResource = (req: any, callback: any) =>
    register(req, (err: any, response: any) => {
        if (!err) {
            registrations.push({
                type: req.getType(),
                name: req.getName(),
                urn: response.getUrn(),
                parent: req.getParent(),
                dependencies: req.getDependenciesList(),
                deleteBeforeReplace: req.getDeletebeforereplace(),
                retainOnDelete: req.getRetainondelete() ?? false,
                protect: req.getProtect() ?? false,
                ignoreChanges: req.getIgnorechangesList(),
                additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                inputs: pulumi.runtime.deserializeProperties(req.getObject()),
            });
        }
        callback(err, response);
    });

/** The recorded registration of `name`; fails the test when there is none. */
export function registered(name: string): Registration {
    const found = registrations.find((r) => r.name === name);
    if (!found) throw new Error(`no resource named ${name} was registered; have: ${registrations.map((r) => r.name).join(", ")}`);
    return found;
}

/** Resolves an output's value (unwrapping secrets), for assertions outside apply. */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => pulumi.unsecret(output).apply((v) => resolve(v)));
}

/** Waits until every registration the program started has been recorded. */
export async function settle(): Promise<void> {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}
