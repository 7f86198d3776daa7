import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { endProcesses } from "../../lib/runbook/interruptedRun/endProcesses";
import { isListening, parseProcNetTcp, TcpSocket } from "../../lib/runbook/interruptedRun/listeningSockets";
import { describeProcess, engineAddressOf, engineRoleOf, selectOrphanedEngineProcesses } from "../../lib/runbook/interruptedRun/orphanedProcesses";
import { pendingOperations, withoutPendingOperations } from "../../lib/runbook/interruptedRun/pendingOperations";
import { parseProcStat, ProcessEntry, readProcess, readProcessTable } from "../../lib/runbook/interruptedRun/processTable";
import { backendDirectory, clearStaleLock, findStackLock, parseLockFile, parseMetaVersion, stackLockDirectory } from "../../lib/runbook/interruptedRun/stackLock";

/** What CLI v3.248.0 wrote for a `pulumi up` here (backend/.pulumi/locks/organization/<project>/<stack>/<uuid>.json). */
const LOCK_JSON = '{"pid":30540,"username":"root","hostname":"vm","timestamp":"2026-11-26T14:18:27.577725685Z"}';
const LOCK_ATTRS = '{"user.cache_control":"","user.content_disposition":"","user.content_encoding":"","user.content_language":"","user.content_type":"text/plain; charset=utf-8","user.metadata":null,"md5":"eerxrU08wwjnbYO+8O5rxw=="}';

describe("lock files of a file:// backend", () => {
    it("parses what the CLI writes", () => {
        expect(parseLockFile(LOCK_JSON)).toEqual({ pid: 30540, username: "root", hostname: "vm", timestamp: "2026-11-26T14:18:27.577725685Z" });
    });

    it.each([
        ["not json", /not JSON/],
        ["[1]", /not a JSON object/],
        ['{"pid":"12","hostname":"vm","timestamp":"2026-11-26T14:18:27Z"}', /pid/],
        ['{"pid":0,"hostname":"vm","timestamp":"2026-11-26T14:18:27Z"}', /pid/],
        ['{"pid":12,"timestamp":"2026-11-26T14:18:27Z"}', /hostname/],
        ['{"pid":12,"hostname":"vm","timestamp":"yesterday"}', /timestamp/],
    ])("rejects %s", (text, message) => {
        expect(() => parseLockFile(text)).toThrow(message);
    });

    it("maps file:// URLs to directories the way the CLI does", () => {
        expect(backendDirectory("file:///work/main/.state/backend", "/root", "/cwd")).toBe("/work/main/.state/backend");
        expect(backendDirectory("file:///tmp/b?no_tmp_dir=true", "/root", "/cwd")).toBe("/tmp/b");
        expect(backendDirectory("file://~", "/home/op", "/cwd")).toBe("/home/op");
        expect(backendDirectory("file://~/.pulumi-state", "/home/op", "/cwd")).toBe("/home/op/.pulumi-state");
        expect(backendDirectory("file://state", "/home/op", "/cwd")).toBe("/cwd/state");
        expect(backendDirectory("file:///tmp/with%20space", "/root", "/cwd")).toBe("/tmp/with space");
        expect(backendDirectory("s3://bucket/prefix", "/root", "/cwd")).toBeNull();
        expect(backendDirectory("https://api.pulumi.com", "/root", "/cwd")).toBeNull();
    });

    it("reads the layout version from meta.yaml", () => {
        expect(parseMetaVersion("version: 1\n")).toBe(1);
        expect(parseMetaVersion("other: x\nversion: 0\n")).toBe(0);
        expect(parseMetaVersion("")).toBe(0);
    });

    it("places a stack's locks by layout and by how the stack is named", () => {
        const locks = "/b/.pulumi/locks";
        expect(stackLockDirectory("/b", "project", "rollout", "prod")).toBe(`${locks}/organization/rollout/prod`);
        expect(stackLockDirectory("/b", "project", "rollout", "other/prod")).toBe(`${locks}/organization/other/prod`);
        expect(stackLockDirectory("/b", "project", "rollout", "organization/rollout/prod")).toBe(`${locks}/organization/rollout/prod`);
        expect(stackLockDirectory("/b", "legacy", "rollout", "prod")).toBe(`${locks}/prod`);
        expect(() => stackLockDirectory("/b", "project", "rollout", "../prod")).toThrow(/not a stack name/);
        expect(() => stackLockDirectory("/b", "project", "rollout", "a/b/c/d")).toThrow(/not a stack name/);
    });
});

describe("findStackLock and clearStaleLock on a backend directory", () => {
    let backend: string;
    let lockDir: string;
    const children: ReturnType<typeof spawn>[] = [];

    beforeEach(() => {
        backend = fs.mkdtempSync(path.join(os.tmpdir(), "interrupted-run-"));
        fs.mkdirSync(path.join(backend, ".pulumi"), { recursive: true });
        fs.writeFileSync(path.join(backend, ".pulumi", "meta.yaml"), "version: 1\n");
        lockDir = path.join(backend, ".pulumi", "locks", "organization", "rollout", "prod");
        fs.mkdirSync(lockDir, { recursive: true });
    });

    afterEach(() => {
        for (const child of children.splice(0)) child.kill("SIGKILL");
        fs.rmSync(backend, { recursive: true, force: true });
    });

    function writeLock(name: string, lock: object): string {
        const file = path.join(lockDir, `${name}.json`);
        fs.writeFileSync(file, JSON.stringify(lock));
        fs.writeFileSync(`${file}.attrs`, LOCK_ATTRS);
        return file;
    }

    /** A pid that does not run: past the kernel's pid_max. */
    const deadPid = Number(fs.readFileSync("/proc/sys/kernel/pid_max", "utf8")) + 1;

    it("finds nothing when the stack is not locked", () => {
        fs.rmSync(lockDir, { recursive: true });
        const report = findStackLock(`file://${backend}`, "rollout", "prod");
        expect(report).toMatchObject({ inspectable: true, layout: "project", lockDir, locks: [] });
    });

    it("reports a lock whose pulumi is gone, and clears it with its .attrs", () => {
        const file = writeLock("a5f7eb0e", { pid: deadPid, username: "root", hostname: os.hostname(), timestamp: new Date().toISOString() });
        const report = findStackLock(`file://${backend}?no_tmp_dir=true`, "rollout", "prod");
        if (!report.inspectable) throw new Error(report.reason);
        expect(report.locks).toHaveLength(1);
        const [lock] = report.locks;
        expect(lock).toMatchObject({ path: file, attrsPath: `${file}.attrs`, info: { pid: deadPid }, holder: { state: "gone" } });
        expect(clearStaleLock(lock)).toEqual([file, `${file}.attrs`]);
        expect(fs.readdirSync(lockDir)).toEqual([]);
    });

    it("treats a pid now used by another program as gone", () => {
        writeLock("reused", { pid: process.pid, username: "root", hostname: os.hostname(), timestamp: new Date().toISOString() });
        const report = findStackLock(`file://${backend}`, "rollout", "prod");
        if (!report.inspectable) throw new Error(report.reason);
        expect(report.locks[0].holder.state).toBe("gone");
        expect(report.locks[0].holder.detail).toMatch(/not a pulumi CLI/);
    });

    it("refuses to clear a lock whose pulumi still runs, naming the pid", async () => {
        // A process whose executable is called `pulumi`, started before the lock.
        const bin = path.join(backend, "pulumi");
        fs.copyFileSync("/bin/sleep", bin);
        fs.chmodSync(bin, 0o755);
        const holder = spawn(bin, ["30"], { stdio: "ignore" });
        children.push(holder);
        await new Promise((resolve) => setTimeout(resolve, 100));
        const file = writeLock("live", { pid: holder.pid, username: "root", hostname: os.hostname(), timestamp: new Date().toISOString() });
        const report = findStackLock(`file://${backend}`, "rollout", "prod");
        if (!report.inspectable) throw new Error(report.reason);
        expect(report.locks[0].holder.state).toBe("alive");
        expect(() => clearStaleLock(report.locks[0])).toThrow(new RegExp(`pid ${holder.pid} \\(pulumi\\) still runs`));
        expect(fs.existsSync(file)).toBe(true);
    });

    it("treats a pulumi started after the lock was written as a different run", async () => {
        const bin = path.join(backend, "pulumi");
        fs.copyFileSync("/bin/sleep", bin);
        fs.chmodSync(bin, 0o755);
        const later = spawn(bin, ["30"], { stdio: "ignore" });
        children.push(later);
        await new Promise((resolve) => setTimeout(resolve, 100));
        writeLock("old", { pid: later.pid, username: "root", hostname: os.hostname(), timestamp: "2020-01-01T00:00:00Z" });
        const report = findStackLock(`file://${backend}`, "rollout", "prod");
        if (!report.inspectable) throw new Error(report.reason);
        expect(report.locks[0].holder).toMatchObject({ state: "gone", detail: expect.stringMatching(/started after the lock/) });
    });

    it("refuses to clear a lock from another host", () => {
        const file = writeLock("remote", { pid: deadPid, username: "op", hostname: `not-${os.hostname()}`, timestamp: new Date().toISOString() });
        const report = findStackLock(`file://${backend}`, "rollout", "prod");
        if (!report.inspectable) throw new Error(report.reason);
        expect(report.locks[0].holder.state).toBe("other-host");
        expect(() => clearStaleLock(report.locks[0])).toThrow(/not this host.*pulumi cancel/);
        expect(fs.existsSync(file)).toBe(true);
    });

    it("reports an unreadable lock file and refuses to remove it", () => {
        const file = path.join(lockDir, "junk.json");
        fs.writeFileSync(file, "{oops");
        const report = findStackLock(`file://${backend}`, "rollout", "prod");
        if (!report.inspectable) throw new Error(report.reason);
        expect(report.locks[0]).toMatchObject({ info: null, attrsPath: null, holder: { state: "unreadable" } });
        expect(() => clearStaleLock(report.locks[0])).toThrow(/not a Pulumi lock file/);
    });

    it("says a non-file backend cannot be inspected, without its credentials", () => {
        const report = findStackLock("postgres://pulumi:s3cret@db.example/state", "rollout", "prod");
        expect(report).toMatchObject({ inspectable: false, scheme: "postgres" });
        expect(JSON.stringify(report)).not.toContain("s3cret");
        if (!report.inspectable) expect(report.reason).toMatch(/pulumi cancel --stack prod/);
        expect(findStackLock("", "rollout", "prod")).toMatchObject({ inspectable: false, scheme: "none" });
    });
});

/** /proc/net/tcp as captured here during a `pulumi up` (little-endian host). */
const PROC_NET_TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 560 1 00000000bd394cf8 100 0 0 10 0
   1: 0100007F:84B7 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19131 2 0000000069bdbfbf 100 0 0 10 0
   2: 0100007F:AFB9 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19125 2 00000000a20fd021 100 0 0 10 0
  13: 0100007F:851C 0100007F:A95F 06 00000000:00000000 03:00001172 00000000     0        0 0 3 000000007f3e1227
  14: 0100007F:DF8C 0100007F:AEA1 01 00000000:00000000 02:000001D8 00000000     0        0 20110 2 0000000069f6d840 20 4 31 17 -1
`;

const PROC_NET_TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 101 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:2328 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 102 1 0000000000000000 100 0 0 10 0
   2: 00000000000000000000000000000000:2710 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 103 1 0000000000000000 100 0 0 10 0
   3: B80D0120000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 104 1 0000000000000000 100 0 0 10 0
`;

describe("/proc/net/tcp", () => {
    it("decodes IPv4 addresses, ports and states", () => {
        const sockets = parseProcNetTcp(PROC_NET_TCP, "LE");
        expect(sockets).toEqual([
            { address: "0.0.0.0", port: 2024, state: "0A" },
            { address: "127.0.0.1", port: 33975, state: "0A" },
            { address: "127.0.0.1", port: 44985, state: "0A" },
            { address: "127.0.0.1", port: 34076, state: "06" },
            { address: "127.0.0.1", port: 57228, state: "01" },
        ]);
    });

    it("reads words in big-endian order on a big-endian host", () => {
        expect(parseProcNetTcp(PROC_NET_TCP, "BE")[1].address).toBe("1.0.0.127");
    });

    it("decodes IPv6: loopback, v4-mapped, wildcard, compressed", () => {
        expect(parseProcNetTcp(PROC_NET_TCP6, "LE").map((s) => `${s.address} ${s.port}`)).toEqual([
            "::1 8080",
            "::ffff:127.0.0.1 9000",
            ":: 10000",
            "2001:db8::1 80",
        ]);
    });

    it("knows whether an engine address still listens", () => {
        const listening: TcpSocket[] = [...parseProcNetTcp(PROC_NET_TCP, "LE"), ...parseProcNetTcp(PROC_NET_TCP6, "LE")].filter((s) => s.state === "0A");
        expect(isListening("127.0.0.1:44985", listening)).toBe(true);
        expect(isListening("127.0.0.1:40265", listening)).toBe(false);
        // Only LISTEN counts: 34076 is a TIME_WAIT socket.
        expect(isListening("127.0.0.1:34076", parseProcNetTcp(PROC_NET_TCP, "LE"))).toBe(false);
        expect(isListening("127.0.0.1:2024", listening)).toBe(true); // 0.0.0.0
        expect(isListening("127.0.0.1:9000", listening)).toBe(true); // ::ffff:127.0.0.1
        expect(isListening("127.0.0.1:10000", listening)).toBe(true); // ::
        expect(isListening("[::1]:8080", listening)).toBe(true);
        expect(isListening("localhost:8080", listening)).toBe(true);
        expect(isListening("not an address", listening)).toBe(false);
    });

    it("parses this machine's own tables", () => {
        for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
            if (!fs.existsSync(file)) continue;
            for (const s of parseProcNetTcp(fs.readFileSync(file, "utf8"))) {
                expect(s.port).toBeGreaterThanOrEqual(0);
                expect(s.port).toBeLessThan(65536);
                expect(s.state).toMatch(/^[0-9A-F]{2}$/);
            }
        }
    });
});

describe("/proc/<pid>/stat and command lines", () => {
    it("parses a stat line whose comm has spaces and parentheses", () => {
        const line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2 3\n";
        expect(parseProcStat(line)).toEqual({ pid: 4242, comm: "a (b) c", state: "S", ppid: 1, pgid: 4242, startTicks: 987654 });
    });

    it("reads this process from /proc", () => {
        const me = readProcess(process.pid);
        expect(me).toMatchObject({ pid: process.pid, ppid: process.ppid });
        expect(readProcessTable().some((p) => p.pid === process.pid)).toBe(true);
    });

    it.each([
        [["/work/main/.state/engine/bin/pulumi-language-nodejs", "127.0.0.1:44985"], "language-host", "127.0.0.1:44985"],
        [["pulumi-language-python", "-root=/srv/app", "--tracing", "127.0.0.1:9999", "127.0.0.1:41001"], "language-host", "127.0.0.1:41001"],
        [["/home/op/.pulumi/plugins/resource-aws-v6/pulumi-resource-aws", "--logtostderr", "-v=9", "127.0.0.1:40265"], "provider", "127.0.0.1:40265"],
        [["node", "/home/op/.pulumi/plugins/resource-x/pulumi-resource-x", "127.0.0.1:5000"], "provider", "127.0.0.1:5000"],
        [["pulumi-analyzer-policy", "127.0.0.1:5001", "."], "plugin", "127.0.0.1:5001"],
        [
            ["/usr/bin/node", "/work/main/node_modules/@pulumi/pulumi/cmd/run/index.js", "--monitor", "127.0.0.1:42471", "--engine", "127.0.0.1:40265", "--stack", "a", "--pwd", "/tmp/p", "."],
            "program",
            "127.0.0.1:40265",
        ],
        [["python3", "-u", "/x/pulumi-language-python-exec", "--monitor", "127.0.0.1:1", "--engine", "127.0.0.1:2", "."], "program", "127.0.0.1:2"],
        [["pulumi-resource-x", "--tracing", "127.0.0.1:9999"], "provider", null],
        [["pulumi", "up", "--stack", "a"], null, null],
        [["/bin/sh", "-c", "pg_dump -h 127.0.0.1:5432"], null, null],
    ])("%j is a %s with engine %s", (argv, role, engine) => {
        expect(engineRoleOf(argv)).toBe(role);
        if (role) expect(engineAddressOf(argv)).toBe(engine);
    });

    it("prints a process without its arguments", () => {
        const line = describeProcess({ pid: 7, role: "descendant", program: "dash", argCount: 2, cwd: "/work/main" });
        expect(line).toBe("pid 7 descendant dash (2 args), cwd /work/main");
    });
});

describe("selectOrphanedEngineProcesses", () => {
    const project = "/work/main";
    const DEAD = "127.0.0.1:40265"; // the killed CLI's engine
    const LIVE = "127.0.0.1:36271"; // a running `up` of another stack
    let nextTicks = 1000;
    const proc = (pid: number, ppid: number, argv: string[], extra: Partial<ProcessEntry> = {}): ProcessEntry => ({
        pid,
        ppid,
        pgid: pid,
        state: "S",
        startTicks: nextTicks++,
        argv,
        program: path.basename(argv[0]),
        cwd: project,
        ...extra,
    });
    const node = (engine: string, stack: string, pwd = project) => [
        "/usr/bin/node",
        "/work/main/node_modules/@pulumi/pulumi/cmd/run/index.js",
        "--monitor",
        "127.0.0.1:42471",
        "--engine",
        engine,
        "--stack",
        stack,
        "--pwd",
        pwd,
        ".",
    ];
    const lh = (engine: string) => ["/work/main/.state/engine/bin/pulumi-language-nodejs", engine];
    const provider = (engine: string) => ["/work/main/.state/pulumi-home/plugins/resource-command-v1.2.1/pulumi-resource-command", engine];
    const listening: TcpSocket[] = [{ address: "127.0.0.1", port: 36271, state: "0A" }];

    const table: ProcessEntry[] = [
        proc(1, 0, ["/sbin/init"]),
        // The interrupted run of stack a: CLI gone, children reparented to 1.
        proc(30700, 1, lh(DEAD)),
        proc(30739, 30700, node(DEAD, "a"), { pgid: 30700 }),
        proc(30842, 30739, ["/bin/sh", "-c", "PGPASSWORD=hunter2 pg_dump"], { pgid: 30700, program: "dash" }),
        proc(30843, 30842, ["pg_dump", "-F", "c"], { pgid: 30700 }),
        proc(30766, 1, provider(DEAD)),
        proc(30777, 30766, ["/bin/sh", "-c", "sleep 60"], { program: "dash", cwd: "/elsewhere" }),
        proc(30778, 30777, ["sleep", "60"], { pgid: 30777, cwd: "/elsewhere" }),
        proc(30779, 30777, ["defunct"], { state: "Z" }),
        // A nested `pulumi up` run by a command: another run, left alone.
        proc(30790, 30766, ["pulumi", "up", "--stack", "nested"]),
        proc(30791, 30790, lh("127.0.0.1:1111")),
        // The live run of stack b in the same project.
        proc(30439, 5000, ["pulumi", "up", "--yes", "--stack", "b"]),
        proc(30612, 30439, lh(LIVE)),
        proc(30632, 30612, node(LIVE, "b")),
        proc(30696, 30439, provider(LIVE)),
        proc(30713, 30696, ["/bin/sh", "-c", "sleep 60"], { program: "dash" }),
        // A live CLI that already closed its engine (end of a run): parent still pulumi.
        proc(31000, 5000, ["pulumi", "destroy", "--stack", "c"]),
        proc(31001, 31000, provider("127.0.0.1:50001")),
        // Engine address reused by something else that listens: not provably orphaned.
        proc(31100, 1, provider("127.0.0.1:36271")),
        // An interrupted run of another project.
        proc(32000, 1, lh("127.0.0.1:50002"), { cwd: "/srv/other" }),
        proc(32001, 32000, node("127.0.0.1:50002", "x", "/srv/other"), { cwd: "/srv/other" }),
        // Same project by --pwd although its cwd is unreadable.
        proc(33000, 1, node("127.0.0.1:50003", "d"), { cwd: null }),
    ];

    const found = selectOrphanedEngineProcesses(table, listening, project);
    const byPid = new Map(found.map((p) => [p.pid, p]));

    it("finds the interrupted run's language host, program, provider and what they started", () => {
        expect(found.map((p) => [p.pid, p.role])).toEqual([
            [30700, "language-host"],
            [30739, "program"],
            [30766, "provider"],
            [30777, "descendant"],
            [30778, "descendant"],
            [30842, "descendant"],
            [30843, "descendant"],
            [33000, "program"],
        ]);
    });

    it("never returns a live run's processes (another stack, the same project)", () => {
        for (const pid of [30439, 30612, 30632, 30696, 30713, 31000, 31001, 31100]) expect(byPid.has(pid)).toBe(false);
    });

    it("leaves a nested pulumi run, zombies and other projects alone", () => {
        for (const pid of [30790, 30791, 30779, 32000, 32001]) expect(byPid.has(pid)).toBe(false);
    });

    it("ties the run together by its engine address and names its stack", () => {
        expect(byPid.get(30766)).toMatchObject({ engineAddress: DEAD, stack: "a", ppid: 1, argCount: 1 });
        expect(byPid.get(30843)).toMatchObject({ engineAddress: DEAD, stack: "a", pgid: 30700 });
        expect(byPid.get(33000)).toMatchObject({ stack: "d" });
    });

    it("keeps arguments out of the printed form", () => {
        const printed = found.map(describeProcess).join("\n");
        expect(printed).not.toContain("hunter2");
        expect(printed).toContain("pid 30842 descendant dash (2 args)");
    });

    it("matches a project directory given with a trailing slash", () => {
        expect(selectOrphanedEngineProcesses(table, listening, `${project}/`).length).toBe(found.length);
    });
});

describe("endProcesses", () => {
    const waitFor = async (check: () => boolean) => {
        for (let i = 0; i < 50 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
    };
    const childrenOf = (pid: number) => readProcessTable().filter((p) => p.ppid === pid && p.state !== "Z");

    // A duration no other process uses, so a leftover is recognisable.
    const uniqueSleep = () => `31.${process.pid}${Math.floor(Math.random() * 1000)}`;

    it("ends a tree with SIGTERM, before its shell can start the next command", async () => {
        const next = uniqueSleep();
        const shell = spawn("/bin/sh", ["-c", `sleep 30; sleep ${next}`], { stdio: "ignore" });
        await waitFor(() => childrenOf(shell.pid!).length === 1);
        const [sleeper] = childrenOf(shell.pid!);
        const ended = await endProcesses([shell.pid!], 2000);
        expect(ended.map((e) => [e.pid, e.outcome, e.descendant])).toEqual([
            [shell.pid, "SIGTERM", false],
            [sleeper.pid, "SIGTERM", true],
        ]);
        expect(readProcessTable().some((p) => p.argv.join(" ") === `sleep ${next}`)).toBe(false);
    });

    it("kills what ignores SIGTERM once the grace period is over", async () => {
        const shell = spawn("/bin/sh", ["-c", "trap '' TERM; sleep 30 & wait"], { stdio: "ignore" });
        await waitFor(() => childrenOf(shell.pid!).length === 1);
        const ended = await endProcesses([{ pid: shell.pid!, startTicks: readProcess(shell.pid!)!.startTicks }], 300);
        expect(ended.map((e) => e.outcome)).toEqual(["SIGKILL", "SIGKILL"]);
    });

    it("also kills the next command a TERM-ignoring shell started during the grace period", async () => {
        // The shell ignores SIGTERM; its first child does not, so the shell goes on to its next sleep.
        const later = uniqueSleep();
        const shell = spawn("/bin/sh", ["-c", `trap '' TERM; (trap - TERM; sleep 30); sleep ${later}; true`], { stdio: "ignore" });
        await waitFor(() => childrenOf(shell.pid!).length === 1);
        const ended = await endProcesses([shell.pid!], 500);
        const next = ended.find((e) => e.program === "sleep" && e.outcome === "SIGKILL");
        expect(next).toMatchObject({ descendant: true });
        expect(ended.find((e) => e.pid === shell.pid)?.outcome).toBe("SIGKILL");
        const leftover = readProcessTable().find((p) => p.argv.join(" ") === `sleep ${later}`);
        if (leftover) process.kill(leftover.pid, "SIGKILL");
        expect(leftover).toBeUndefined();
    });

    it("leaves a pid alone whose start time changed (a reused pid)", async () => {
        const sleeper = spawn("sleep", ["30"], { stdio: "ignore" });
        await waitFor(() => readProcess(sleeper.pid!)?.program === "sleep");
        const startTicks = readProcess(sleeper.pid!)!.startTicks;
        try {
            const ended = await endProcesses([{ pid: sleeper.pid!, startTicks: startTicks + 1 }], 100);
            expect(ended).toEqual([{ pid: sleeper.pid, program: "sleep", outcome: "already-gone", descendant: false }]);
            expect(readProcess(sleeper.pid!)?.startTicks).toBe(startTicks);
        } finally {
            sleeper.kill("SIGKILL");
        }
    });
});

/** `pulumi stack export` of the scratch stack after its CLI was killed mid-create (trimmed). */
const EXPORTED = {
    version: 3,
    deployment: {
        manifest: { time: "2026-11-26T14:18:30Z", magic: "x", version: "v3.248.0" },
        secrets_providers: { type: "passphrase", state: { salt: "v1:abc" } },
        resources: [{ urn: "urn:pulumi:a::irscratch::pulumi:pulumi:Stack::irscratch-a", custom: false, type: "pulumi:pulumi:Stack" }],
        pending_operations: [
            {
                resource: { urn: "urn:pulumi:a::irscratch::command:local:Command::slow-2", custom: true, type: "command:local:Command", inputs: { create: "sleep 60 && echo done" } },
                type: "creating",
            },
            { resource: { urn: "urn:pulumi:a::irscratch::command:local:Command::old", custom: true, type: "command:local:Command", id: "old1234" }, type: "deleting" },
        ],
        metadata: {},
    },
};

describe("pending operations of an export", () => {
    it("lists them", () => {
        expect(pendingOperations(EXPORTED)).toEqual([
            { type: "creating", urn: "urn:pulumi:a::irscratch::command:local:Command::slow-2", resourceType: "command:local:Command" },
            { type: "deleting", urn: "urn:pulumi:a::irscratch::command:local:Command::old", resourceType: "command:local:Command" },
        ]);
    });

    it("drops them all without touching the input or anything else", () => {
        const before = JSON.stringify(EXPORTED);
        const clean = withoutPendingOperations(EXPORTED);
        expect(JSON.stringify(EXPORTED)).toBe(before);
        expect("pending_operations" in clean.deployment).toBe(false);
        expect(clean.deployment.resources).toEqual(EXPORTED.deployment.resources);
        expect(clean.deployment.secrets_providers).toEqual(EXPORTED.deployment.secrets_providers);
        expect(clean.version).toBe(3);
        expect(pendingOperations(clean)).toEqual([]);
    });

    it("drops only the given types when asked", () => {
        const kept = withoutPendingOperations(EXPORTED, ["creating"]);
        expect(pendingOperations(kept).map((o) => o.type)).toEqual(["deleting"]);
        expect("pending_operations" in withoutPendingOperations(EXPORTED, ["creating", "deleting"]).deployment).toBe(false);
    });

    it("accepts version 4 and an export without pending operations", () => {
        expect(pendingOperations({ version: 4, deployment: { resources: [] } })).toEqual([]);
        expect(pendingOperations({ version: 3, deployment: { pending_operations: null } })).toEqual([]);
    });

    it("rejects what is not a v3/v4 export, saying what to do", () => {
        expect(() => pendingOperations({ version: 1, deployment: {} })).toThrow(/version 1 is not supported.*export it with a current pulumi/);
        expect(() => pendingOperations({ version: 3 })).toThrow(/no `deployment`/);
        expect(() => pendingOperations(null)).toThrow(/no `deployment`/);
        expect(() => pendingOperations({ version: 3, deployment: { pending_operations: [{ type: "creating" }] } })).toThrow(/pending_operations\[0\]/);
    });
});
