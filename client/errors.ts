// Client-side API errors: the server's Status, checked by code/reason (not instanceof across modules).

export interface StatusBody {
  kind?: string;
  apiVersion?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: { reason?: string; message?: string; field?: string }[]; retryAfterSeconds?: number };
}

/** An API request that failed with a Status (or an HTTP error without one). */
export class ClientError extends Error {
  override readonly name = "ClientError";
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly status?: StatusBody,
  ) {
    super(message);
  }
}

/** A reconcile failure that retrying cannot fix: logged, not requeued. */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

function isClientError(e: unknown): e is ClientError {
  return typeof e === "object" && e !== null && (e as { name?: unknown }).name === "ClientError";
}

export const isNotFound = (e: unknown): boolean => isClientError(e) && e.code === 404;
export const isConflict = (e: unknown): boolean => isClientError(e) && e.code === 409 && e.reason === "Conflict";
export const isAlreadyExists = (e: unknown): boolean => isClientError(e) && e.code === 409 && e.reason === "AlreadyExists";
export const isGone = (e: unknown): boolean => isClientError(e) && (e.code === 410 || e.reason === "Expired" || e.reason === "Gone");
export const isInvalid = (e: unknown): boolean => isClientError(e) && e.code === 422;
export const isTerminal = (e: unknown): boolean => typeof e === "object" && e !== null && (e as { name?: unknown }).name === "TerminalError";
export { isClientError };
