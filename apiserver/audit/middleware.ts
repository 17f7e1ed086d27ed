// The apiserver's audit filters as koa middleware: WithAuditInit (an audit ID for every request,
// answered in the Audit-ID header) and WithAudit (the event of an authenticated request, from
// RequestReceived to ResponseComplete or Panic).

import type Koa from "koa";
import type { UserInfo } from "../auth.ts";
import { isApiError } from "../errors.ts";
import { auditIDFor, HEADER_AUDIT_ID, microClock, type AuditEvent, type Auditor, type Clock } from "./audit.ts";
import type { PolicyAttributes } from "./policy.ts";

/** What the audit middleware keeps on ctx.state (merge into the server's State). */
export interface AuditState {
  /** This request's audit ID (withAuditInit). */
  auditID?: string;
  /** When the request arrived, ms since the epoch with µs (withAuditInit). */
  received?: number;
  /** The request's event while it is audited (withAudit); absent at level None. */
  audit?: AuditEvent;
  /**
   * The object the response carries, before serialization (set by the router when it has it):
   * recorded as responseObject at RequestResponse. Without it the JSON body text is parsed.
   */
  auditResponse?: unknown;
  user?: UserInfo;
}

const sharedClock = microClock();

/** WithAuditInit: runs for every request, audited or not, as upstream's (the header is sent even at level None). */
export function withAuditInit<S extends AuditState>(clock: Clock = sharedClock): Koa.Middleware<S> {
  return (ctx, next) => {
    ctx.state.received = clock();
    ctx.state.auditID = auditIDFor(ctx.req);
    ctx.set(HEADER_AUDIT_ID, ctx.state.auditID);
    return next();
  };
}

export interface AuditHooks<S extends AuditState> {
  /** The authorizer's view of the request, for the policy (server.ts's requestAttributes). */
  attributes(ctx: Koa.ParameterizedContext<S>): PolicyAttributes;
  /** Watches, logs, exec: they get a ResponseStarted event. */
  longRunning(ctx: Koa.ParameterizedContext<S>): boolean;
}

/**
 * WithAudit: after authentication, before impersonation. An API error thrown further in is
 * recorded with its Status and thrown on (the outer middleware writes it); any other error is a
 * bug, recorded as the Panic stage, and thrown on too.
 */
export function withAudit<S extends AuditState>(auditor: Auditor, hooks: AuditHooks<S>): Koa.Middleware<S> {
  return async (ctx, next) => {
    const ev = auditor.begin(ctx.req, ctx.res, hooks.attributes(ctx), { auditID: ctx.state.auditID, received: ctx.state.received, longRunning: hooks.longRunning(ctx) });
    if (!ev) return next();
    ctx.state.audit = ev;
    try {
      await next();
    } catch (e) {
      if (isApiError(e)) ev.complete(e.code, e.toStatus());
      else ev.panic(e);
      throw e;
    }
    // A streamed response (watch, logs, exec) wrote its own status; otherwise koa writes ctx's.
    const code = ctx.respond === false ? ctx.res.statusCode : ctx.status;
    ev.complete(code, ctx.state.auditResponse ?? (ctx.respond === false ? undefined : ctx.body));
  };
}
