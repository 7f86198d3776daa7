import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

// The integration files that take longest (2–3 minutes each, two at a time on
// 2 cores), started first so that no long file starts last and runs alone.
// A file missing here is only ordered as vitest would (its last duration,
// else its size).
const LONGEST_FIRST = [
    "redrill.test.ts",
    "safety-recover.test.ts",
    "safety-reapply.test.ts",
    "rollout.test.ts",
    "second-application.test.ts",
    "drill.test.ts",
];

/** The longest integration files first, then the rest in vitest's order, the unit files (seconds in all) last to fill the gaps. */
class LongestFirst extends BaseSequencer {
    async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
        const rank = (spec: TestSpecification) => {
            const listed = LONGEST_FIRST.findIndex((name) => spec.moduleId.endsWith(`/test/integration/${name}`));
            if (listed >= 0) return listed;
            return spec.project.name === "unit" ? LONGEST_FIRST.length + 1 : LONGEST_FIRST.length;
        };
        // Array.prototype.sort is stable: within a rank, vitest's own order stays.
        return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
    }
}

export default defineConfig({
    test: {
        // Two files at a time: one integration file keeps about one core busy
        // (its processes run one after another), and each has its own
        // cluster, backends, stacks and folders, so two share nothing.
        fileParallelism: true,
        maxWorkers: 2,
        minWorkers: 1,
        sequence: { sequencer: LongestFirst },
        projects: [
            {
                test: {
                    name: "unit",
                    include: ["test/unit/**/*.test.ts"],
                    setupFiles: ["test/unit/helpers/mocks.ts"],
                },
            },
            {
                test: {
                    name: "integration",
                    // One process runs several files in turn: a new one per file pays 5-10 s of start and module loading on a busy machine.
                    isolate: false,
                    include: ["test/integration/**/*.test.ts"],
                    testTimeout: 600_000,
                    hookTimeout: 300_000,
                },
            },
        ],
    },
});
