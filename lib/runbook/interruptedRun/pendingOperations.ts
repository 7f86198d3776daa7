/** The pending operations a killed run leaves in the state: read from `pulumi stack export`, and an export without them. */

/** `pulumi stack export` output: `{ version: 3, deployment: { …, pending_operations? } }`. */
export interface ExportedDeployment {
    version: number;
    deployment: { pending_operations?: unknown[] | null; [key: string]: unknown };
    [key: string]: unknown;
}

export interface PendingOperation {
    /** creating, updating, deleting, reading (the engine's operation types). */
    type: string;
    urn: string;
    resourceType: string;
}

/** Versions whose deployment has the v3 shape (4 adds `features`). */
const DEPLOYMENT_VERSIONS = [3, 4];

function checkedDeployment(exported: unknown): ExportedDeployment {
    const e = exported as ExportedDeployment | null;
    if (e === null || typeof e !== "object" || typeof e.deployment !== "object" || e.deployment === null) {
        throw new Error("not a `pulumi stack export` object: it has no `deployment`");
    }
    if (!DEPLOYMENT_VERSIONS.includes(e.version)) {
        throw new Error(`deployment version ${String(e.version)} is not supported (expected 3 or 4); export it with a current pulumi CLI`);
    }
    return e;
}

/** The operations the interrupted run left in flight, one per resource. */
export function pendingOperations(exported: unknown): PendingOperation[] {
    const ops = checkedDeployment(exported).deployment.pending_operations ?? [];
    return ops.map((op, i) => {
        const o = op as { type?: unknown; resource?: { urn?: unknown; type?: unknown } };
        if (typeof o?.type !== "string" || typeof o.resource?.urn !== "string") {
            throw new Error(`pending_operations[${i}] has no type or resource URN; the export is damaged`);
        }
        return { type: o.type, urn: o.resource.urn, resourceType: typeof o.resource.type === "string" ? o.resource.type : "" };
    });
}

/**
 * A copy of the export without pending operations (all, or only those of
 * the given types), ready for `pulumi stack import`. The input is not changed.
 */
export function withoutPendingOperations<T>(exported: T, types?: string[]): T {
    const e = checkedDeployment(exported);
    const { pending_operations: ops, ...rest } = e.deployment;
    const kept = types ? (ops ?? []).filter((op) => !types.includes((op as { type?: string }).type ?? "")) : [];
    // The CLI omits an empty list (`omitempty`), so leave the key out.
    const deployment = kept.length > 0 ? { ...rest, pending_operations: kept } : rest;
    return { ...e, deployment } as T;
}
