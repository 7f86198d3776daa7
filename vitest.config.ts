import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        // Integration tests drive real processes (PostgreSQL, the Pulumi engine)
        // on two cores: one file at a time keeps them reliable.
        fileParallelism: false,
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
