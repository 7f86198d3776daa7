export * from "./preflight";
export * from "./backup";
export * from "./quiesce";
export * from "./migration";
export * from "./backfill";
export * from "./verification";
export * from "./resume";
export * from "./rolloutGraph";
