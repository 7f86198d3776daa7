/**
 * What the dry run costs: wall time of `pulumi preview` of the prod-shaped
 * stack (url access, every probe) against a fresh PostgreSQL cluster seeded
 * with the PROTEA fixture, next to the preview of an empty program, both
 * through the project's engine on this machine. The empty program is plain
 * JavaScript, as the project's program runs (program.js: index.ts compiled);
 * an empty TypeScript program through ts-node is timed beside it. For
 * attribution it also times the probe command alone (bench/profile.ts breaks
 * the preview down further), and the floor: the preview of the product's
 * resource graph with nothing in it (bench/nullGraph.ts) plus the dry run's
 * own work by hand (`alembic heads` and `alembic upgrade --sql` side by side,
 * as the probe runs them). Prints every run and the medians; asserts
 * nothing (DESIGN.md: figures go into notes, never timed assertions).
 *
 *   bash scripts/with-engine.sh npx ts-node --transpile-only bench/preview.ts [--runs 5] [--type-check]
 *
 * The previews run with the engine's settings (scripts/engine-env.sh: the
 * language host transpiles the program without type checks); --type-check
 * sets PULUMI_NODEJS_TRANSPILE_ONLY=false to see what ts-node's check costs.
 * Machine load skews every figure: the load average is printed with them.
 * Target (issue 12, P3): the preview with all probes within 1.5x the empty program's.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { probeCommand } from "../components/previewReport";
import { parseRolloutConfig } from "../lib/config/parseRolloutConfig";
import { startPostgresCluster } from "../lib/postgres/cluster/cluster";
import { runShell } from "../lib/process/processes";
import { inDirectory, quote } from "../lib/process/shell";
import { alembic, EXPECTED_HEAD, expectSuccess, FIXTURE_DIR, FIXTURE_PYTHON, PROJECT_ROOT, seedSample } from "../test/integration/helpers/fixture";
import { graphFromPreview, writeNullGraphProgram } from "./nullGraph";

const runsFlag = process.argv.indexOf("--runs");
const runs = runsFlag >= 0 ? Number(process.argv[runsFlag + 1]) || 5 : 5;
const typeCheck = process.argv.includes("--type-check");

function timedRun(program: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
    return new Promise((resolve, reject) => {
        const started = performance.now();
        const child = spawn(program, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("error", reject);
        child.on("close", (code) => {
            const millis = performance.now() - started;
            if (code !== 0) reject(new Error(`${program} ${args.join(" ")} exited ${code}:\n${output}`));
            else resolve(millis);
        });
    });
}

const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
    const loadBefore = os.loadavg()[0];
    if (process.env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION !== "true") {
        throw new Error("run this through the project's engine: bash scripts/with-engine.sh npx ts-node --transpile-only bench/preview.ts");
    }
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "protea-bench-preview-"));
    const backend = path.join(scratch, "backend");
    fs.mkdirSync(backend);
    const engineEnv: Record<string, string> = { PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_CONFIG_PASSPHRASE: "bench-passphrase" };
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...engineEnv, PYTHONDONTWRITEBYTECODE: "1" };
    delete childEnv.PULUMI_CONFIG_PASSPHRASE_FILE;
    if (typeCheck) childEnv.PULUMI_NODEJS_TRANSPILE_ONLY = "false";
    const checking = childEnv.PULUMI_NODEJS_TRANSPILE_ONLY === "true" ? "transpile-only" : "ts-node type-checks the program";

    // Empty programs: the engine and the Node.js language host, nothing else; in JavaScript as the project's runs, and in TypeScript.
    const emptyProgram = (name: string, typescript: boolean): string => {
        const dir = path.join(scratch, name);
        const main = typescript ? "index.ts" : "index.js";
        fs.mkdirSync(dir);
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: ${typescript}\n`);
        fs.writeFileSync(path.join(dir, "package.json"), `{ "name": "empty", "private": true, "main": "${main}" }\n`);
        fs.writeFileSync(path.join(dir, main), typescript ? "export {};\n" : "module.exports = {};\n");
        fs.symlinkSync(path.join(PROJECT_ROOT, "node_modules"), path.join(dir, "node_modules"));
        return dir;
    };
    const emptyDir = emptyProgram("empty-program", false);
    const emptyTsDir = emptyProgram("empty-ts-program", true);

    const cluster = await startPostgresCluster();
    // "test-" stack names: a config file left behind by a killed run is git-ignored.
    const rolloutStack = `test-bench-${randomBytes(4).toString("hex")}`;
    const emptyStack = `test-bench-empty-${randomBytes(4).toString("hex")}`;
    try {
        expectSuccess(await alembic(cluster.sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
        expectSuccess(await seedSample(cluster.sqlalchemyUrl), "seed");

        const rolloutConfig = {
            "rollout:dbUrl": { value: cluster.sqlalchemyUrl, secret: true },
            "rollout:pgAccess": { value: "url" },
            "rollout:appDir": { value: FIXTURE_DIR },
            "rollout:alembic": { value: `${FIXTURE_PYTHON} -m alembic` },
            "rollout:backfill": { value: `${FIXTURE_PYTHON} scripts/backfill_schema_sha_v2.py` },
            "rollout:backupDir": { value: path.join(scratch, "backups") },
            "rollout:protect": { value: "false" },
            "rollout:pauseWriters": { value: "true" },
            "rollout:resumeWriters": { value: "true" },
        };
        const rollout = await LocalWorkspace.createStack({ stackName: rolloutStack, workDir: PROJECT_ROOT }, { envVars: engineEnv });
        await rollout.setAllConfig(rolloutConfig);
        await LocalWorkspace.createStack({ stackName: emptyStack, workDir: emptyDir }, { envVars: engineEnv });
        await LocalWorkspace.createStack({ stackName: emptyStack, workDir: emptyTsDir }, { envVars: engineEnv });

        const preview = (stack: string, dir: string) => timedRun("pulumi", ["preview", "--stack", stack, "--non-interactive", "--diff=false"], childEnv, dir);
        const config = parseRolloutConfig(Object.fromEntries(Object.entries(rolloutConfig).map(([k, v]) => [k.replace("rollout:", ""), v.value])), os.homedir(), PROJECT_ROOT);
        const probeAlone = () => timedRun("/bin/sh", ["-c", probeCommand(config)], { ...childEnv, PROTEA_DB_URL: cluster.sqlalchemyUrl }, PROJECT_ROOT);
        const dryRunByHand = () =>
            timedRun("/bin/sh", ["-c", inDirectory(config.appDir, `{ ${config.alembic} heads >/dev/null & heads=$!; ${config.alembic} upgrade ${quote(`${config.expectedHead}:${config.targetRevision}`)} --sql >/dev/null && wait $heads; }`)], { ...childEnv, PROTEA_DB_URL: cluster.sqlalchemyUrl }, PROJECT_ROOT);

        // The product's graph as its preview declares it, with nothing in it (bench/nullGraph.ts).
        const previewJson = await runShell(inDirectory(PROJECT_ROOT, `pulumi preview --json --non-interactive --stack ${rolloutStack}`), { env: childEnv });
        if (previewJson.code !== 0) throw new Error(`pulumi preview --json failed (exit ${previewJson.code}):\n${previewJson.stderr}`);
        const graph = graphFromPreview(previewJson.stdout);
        const nullDir = path.join(scratch, "null-graph");
        writeNullGraphProgram(nullDir, "null-graph", graph);
        await LocalWorkspace.createStack({ stackName: emptyStack, workDir: nullDir }, { envVars: engineEnv });

        process.stderr.write("warming up (one untimed run of each)\n");
        await preview(emptyStack, emptyDir);
        await preview(emptyStack, emptyTsDir);
        await preview(rolloutStack, PROJECT_ROOT);
        await probeAlone();
        await preview(emptyStack, nullDir);
        await dryRunByHand();

        const times = { empty: [] as number[], emptyTs: [] as number[], rollout: [] as number[], probe: [] as number[], nullGraph: [] as number[], byHand: [] as number[] };
        for (let i = 0; i < runs; i++) {
            // Interleaved, so a slow moment of the machine hits all alike.
            times.empty.push(await preview(emptyStack, emptyDir));
            times.rollout.push(await preview(rolloutStack, PROJECT_ROOT));
            times.emptyTs.push(await preview(emptyStack, emptyTsDir));
            times.probe.push(await probeAlone());
            times.nullGraph.push(await preview(emptyStack, nullDir));
            times.byHand.push(await dryRunByHand());
            process.stderr.write(
                `run ${i + 1}/${runs}: empty ${seconds(times.empty[i])}, prod-shaped ${seconds(times.rollout[i])}, empty TypeScript ${seconds(times.emptyTs[i])}, probe alone ${seconds(times.probe[i])}, null graph ${seconds(times.nullGraph[i])}, dry run by hand ${seconds(times.byHand[i])}\n`,
            );
        }
        const empty = median(times.empty);
        const full = median(times.rollout);
        const floor = median(times.nullGraph) + median(times.byHand);
        const lines = [
            `pulumi preview wall time, median of ${runs} (${os.cpus().length} cores, ${os.cpus()[0]?.model ?? "cpu"}, load average ${loadBefore.toFixed(2)} before, ${os.loadavg()[0].toFixed(2)} after, ${checking})`,
            `  empty program (JavaScript):             ${seconds(empty)}   runs: ${times.empty.map(seconds).join(", ")}`,
            `  prod-shaped stack with all probes:      ${seconds(full)}   runs: ${times.rollout.map(seconds).join(", ")}`,
            `  empty program (TypeScript, ts-node):    ${seconds(median(times.emptyTs))}   runs: ${times.emptyTs.map(seconds).join(", ")}`,
            `  the probe command alone:                ${seconds(median(times.probe))}   runs: ${times.probe.map(seconds).join(", ")}`,
            `  the same graph, every command true:     ${seconds(median(times.nullGraph))}   runs: ${times.nullGraph.map(seconds).join(", ")}`,
            `  the dry run's alembic calls by hand:    ${seconds(median(times.byHand))}   runs: ${times.byHand.map(seconds).join(", ")}`,
            `  ratio prod-shaped / empty JavaScript:   ${(full / empty).toFixed(2)}x (target: at most 1.5x)`,
            `  floor (null graph + dry run by hand):   ${seconds(floor)} = ${(floor / empty).toFixed(2)}x the empty program; the product above it: ${seconds(full - floor)}`,
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
    } finally {
        for (const [stack, dir] of [[rolloutStack, PROJECT_ROOT], [emptyStack, emptyDir], [emptyStack, emptyTsDir], [emptyStack, path.join(scratch, "null-graph")]]) {
            await LocalWorkspace.selectStack({ stackName: stack, workDir: dir }, { envVars: engineEnv })
                .then((s) => s.workspace.removeStack(stack, { force: true }))
                .catch(() => undefined);
            fs.rmSync(path.join(dir, `Pulumi.${stack}.yaml`), { force: true });
        }
        await cluster.stop();
        fs.rmSync(scratch, { recursive: true, force: true });
    }
}

main().catch((err: Error) => {
    process.stderr.write(`bench/preview: ${err.message}\n`);
    process.exit(1);
});
