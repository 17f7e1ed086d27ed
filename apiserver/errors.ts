// API errors as metav1.Status, shaped so kubectl prints "Error from server (Reason): message".

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, unknown>;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** An error that becomes a Status response. Checked by `name`, not instanceof, across modules. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  toStatus(): Status {
    const s: Status = {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details) s.details = this.details;
    return s;
  }
}

export function isApiError(e: unknown): e is ApiError {
  return typeof e === "object" && e !== null && (e as { name?: unknown }).name === "ApiError";
}

/** "pods" or "deployments.apps", as the real apiserver names a group resource in messages. */
export function qualifiedResource(group: string, resource: string): string {
  return group ? `${resource}.${group}` : resource;
}

interface GR {
  group: string;
  resource: string;
}

function stripField(message: string, field: string): string {
  return field && message.startsWith(field + ": ") ? message.slice(field.length + 2) : message;
}

export const errors = {
  notFound(gr: GR, name: string): ApiError {
    return new ApiError(404, "NotFound", `${qualifiedResource(gr.group, gr.resource)} "${name}" not found`, {
      name,
      group: gr.group || undefined,
      kind: gr.resource,
    });
  },
  alreadyExists(gr: GR, name: string): ApiError {
    return new ApiError(409, "AlreadyExists", `${qualifiedResource(gr.group, gr.resource)} "${name}" already exists`, {
      name,
      group: gr.group || undefined,
      kind: gr.resource,
    });
  },
  conflict(gr: GR, name: string, why = "the object has been modified; please apply your changes to the latest version and try again"): ApiError {
    return new ApiError(
      409,
      "Conflict",
      `Operation cannot be fulfilled on ${qualifiedResource(gr.group, gr.resource)} "${name}": ${why}`,
      { name, group: gr.group || undefined, kind: gr.resource },
    );
  },
  /** 422 Invalid. `message` is "field: detail" for the summary; `cause` (without the field) goes in details.causes, as upstream. */
  invalid(group: string, kind: string, name: string, causes: { field: string; message: string; type: string; cause?: string }[]): ApiError {
    const list = causes.map((c) => c.message);
    const msg =
      list.length === 1 ? `${kind}${group ? "." + group : ""} "${name}" is invalid: ${list[0]}` : `${kind}${group ? "." + group : ""} "${name}" is invalid: [${list.join(", ")}]`;
    return new ApiError(422, "Invalid", msg, {
      name,
      group: group || undefined,
      kind,
      causes: causes.map((c) => ({ reason: c.type, message: c.cause ?? stripField(c.message, c.field), field: c.field })),
    });
  },
  badRequest(message: string): ApiError {
    return new ApiError(400, "BadRequest", message);
  },
  /** apierrors.NewForbidden: `<resource> "<name>" is forbidden: why`, without the name when empty, `forbidden: why` without a resource. */
  forbidden(gr: GR, name: string, why: string): ApiError {
    const what = !gr.resource && !gr.group ? "forbidden" : name ? `${qualifiedResource(gr.group, gr.resource)} "${name}" is forbidden` : `${qualifiedResource(gr.group, gr.resource)} is forbidden`;
    return new ApiError(403, "Forbidden", `${what}: ${why}`, {
      name,
      group: gr.group || undefined,
      kind: gr.resource,
    });
  },
  methodNotAllowed(message: string): ApiError {
    return new ApiError(405, "MethodNotAllowed", message);
  },
  notAcceptable(message: string): ApiError {
    return new ApiError(406, "NotAcceptable", message);
  },
  unsupportedMediaType(message: string): ApiError {
    return new ApiError(415, "UnsupportedMediaType", message);
  },
  requestEntityTooLarge(message: string): ApiError {
    return new ApiError(413, "RequestEntityTooLarge", message);
  },
  gone(message: string): ApiError {
    return new ApiError(410, "Expired", message);
  },
  unauthorized(message = "Unauthorized"): ApiError {
    return new ApiError(401, "Unauthorized", message);
  },
  tooManyRequests(message: string, retryAfterSeconds = 1): ApiError {
    return new ApiError(429, "TooManyRequests", message, { retryAfterSeconds });
  },
  timeout(message: string): ApiError {
    return new ApiError(504, "Timeout", message);
  },
  serviceUnavailable(message: string): ApiError {
    return new ApiError(503, "ServiceUnavailable", message);
  },
  internal(message: string): ApiError {
    return new ApiError(500, "InternalError", `Internal error occurred: ${message}`);
  },
  pathNotFound(): ApiError {
    return new ApiError(404, "NotFound", "the server could not find the requested resource", {});
  },
};

/** A Success Status, as returned by deletes of most kinds. */
export function successStatus(details?: StatusDetails): Status {
  const s: Status = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 200 };
  if (details) s.details = details;
  return s;
}
