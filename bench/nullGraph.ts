/**
 * The engine's floor for the product's resource graph: a JavaScript program
 * that declares the same resources (types, names, parents, dependsOn) as the
 * product, where every command is `true`. What an `up`, a destroy or a
 * preview of it costs is what Pulumi itself charges for this graph on this
 * machine (CLI, language host, provider, one step per resource); whatever the
 * product takes beyond that plus the runbook's own work is the product's.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_ROOT } from "../test/integration/helpers/fixture";

/** A resource as `pulumi preview --json` (newState) or a state export describes it. */
export interface GraphResource {
    urn: string;
    type: string;
    parent?: string;
    dependencies?: string[];
}

/** The product's graph from `pulumi preview --json` output: every step's new state but the stack and providers. */
export function graphFromPreview(previewJson: string): GraphResource[] {
    const steps: { newState?: GraphResource }[] = JSON.parse(previewJson).steps ?? [];
    const resources = steps.map((s) => s.newState).filter((r): r is GraphResource => !!r && r.type !== "pulumi:pulumi:Stack" && !r.type.startsWith("pulumi:providers:"));
    if (!resources.some((r) => r.type === "command:local:Command")) throw new Error("the preview's JSON holds no command resources: is it the product's stack?");
    return resources;
}

/**
 * Writes the null program for `graph` into `dir` (Pulumi.yaml, package.json,
 * index.js, node_modules link). Each command's stdin is NULL_GRAPH_RUN, so a
 * new value runs every command again, as the product's rerun token does.
 */
export function writeNullGraphProgram(dir: string, projectName: string, graph: GraphResource[]): void {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${projectName}\nruntime:\n  name: nodejs\n  options:\n    typescript: false\n`);
    fs.writeFileSync(path.join(dir, "package.json"), `{ "name": "${projectName}", "private": true, "main": "index.js" }\n`);
    // Names are the URN's last part; parents and dependencies map by the product's URNs, which come in dependency order.
    const resources = graph.map((r) => ({ urn: r.urn, type: r.type, name: r.urn.split("::").pop(), parent: r.parent, dependencies: r.dependencies ?? [] }));
    fs.writeFileSync(
        path.join(dir, "index.js"),
        `const pulumi = require("@pulumi/pulumi");
const command = require("@pulumi/command");
const graph = ${JSON.stringify(resources)};
const byUrn = new Map();
for (const r of graph) {
    const opts = { parent: byUrn.get(r.parent), dependsOn: r.dependencies.map((u) => byUrn.get(u)).filter(Boolean) };
    if (r.type === "command:local:Command") {
        byUrn.set(r.urn, new command.local.Command(r.name, { create: "true", delete: "true", stdin: process.env.NULL_GRAPH_RUN || "" }, opts));
    } else {
        const component = new pulumi.ComponentResource(r.type, r.name, {}, opts);
        component.registerOutputs({});
        byUrn.set(r.urn, component);
    }
}
`,
    );
    const modules = path.join(dir, "node_modules");
    if (!fs.existsSync(modules)) fs.symlinkSync(path.join(PROJECT_ROOT, "node_modules"), modules);
}

/** The null program's URN of the product resource `urn` (same types and name, its own stack and project). */
export function nullGraphUrn(urn: string, stack: string, projectName: string): string {
    return urn.replace(/^urn:pulumi:[^:]+::[^:]+::/, `urn:pulumi:${stack}::${projectName}::`);
}
