// The client library every component uses: contracts (types.ts), errors, logging, and — as they
// land — the REST client, informers, work queue, controller harness, leader election and events.

export { newLogger, type Logger } from "./log.ts";
export * from "./types.ts";
export * from "./errors.ts";
