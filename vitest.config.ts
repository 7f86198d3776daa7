import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        // Two files at a time: one integration file keeps about one core busy
        // (its processes run one after another), and each has its own
        // cluster, backends, stacks and folders, so two share nothing.
        fileParallelism: true,
        maxWorkers: 2,
        minWorkers: 1,
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
                    include: ["test/integration/**/*.test.ts"],
                    testTimeout: 600_000,
                    hookTimeout: 300_000,
                },
            },
        ],
    },
});
