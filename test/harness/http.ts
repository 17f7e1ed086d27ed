// Test harness: raw HTTPS requests to a running kubelab, verified with the kubeconfig's CA.

import https from "node:https";
import type { Kubelab } from "./kubelab.ts";

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

export interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Send the bearer token: true (default) = the cluster's token, a string = that token, false = none. */
  token?: boolean | string;
  /** Use this CA instead of the cluster's; `null` = the system trust store. */
  ca?: string | null;
  timeoutMs?: number;
  agent?: https.Agent;
  /** Resolve as soon as the headers arrive when the status is 2xx (for watches). */
  headersOnlyOn2xx?: boolean;
  /** Send the body with chunked transfer encoding (no Content-Length). */
  chunked?: boolean;
  /** Present this client certificate (PEM cert and key). */
  clientCert?: { cert: string; key: string };
}

/** One HTTPS request to the cluster. Rejects on network/TLS errors and on timeout. */
export function request(k: Pick<Kubelab, "port" | "token" | "caCert">, r: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(r.headers ?? {}) };
    const token = r.token === undefined || r.token === true ? k.token : r.token === false ? undefined : r.token;
    if (token !== undefined) headers.Authorization = `Bearer ${token}`;
    const body = r.body === undefined ? undefined : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body);
    if (body !== undefined && !r.chunked) headers["Content-Length"] = String(body.length);
    const req = https.request(
      {
        host: "127.0.0.1",
        port: k.port,
        method: r.method ?? "GET",
        path: r.path,
        headers,
        ...(r.ca === null ? {} : { ca: r.ca ?? k.caCert }),
        ...(r.clientCert ? { cert: r.clientCert.cert, key: r.clientCert.key } : {}),
        agent: r.agent,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (r.headersOnlyOn2xx && status >= 200 && status < 300) {
          res.destroy();
          req.destroy();
          resolve({ status, headers: res.headers, body: Buffer.alloc(0), text: "" });
          return;
        }
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const b = Buffer.concat(chunks);
          resolve({ status, headers: res.headers, body: b, text: b.toString("utf8") });
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(r.timeoutMs ?? 20_000, () => req.destroy(new Error(`timeout after ${r.timeoutMs ?? 20_000} ms`)));
    req.on("error", reject);
    if (r.chunked && body !== undefined) {
      for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024));
      req.end();
    } else {
      req.end(body);
    }
  });
}

export interface StatusBody {
  kind?: unknown;
  apiVersion?: unknown;
  status?: unknown;
  message?: unknown;
  reason?: unknown;
  code?: unknown;
}

/** Parses a body as a JSON object, or undefined when it is not one. */
export function jsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A token of ServiceAccount `name` in default, bound to the `edit` ClusterRole there — a client that
 * is not system:masters (exempt from max-in-flight). Resolves once the authorizer, fed by its watch,
 * lets the token list ConfigMaps.
 */
export async function defaultNamespaceEditorToken(k: Kubelab, name: string): Promise<string> {
  const kc = async (args: string[]): Promise<string> => {
    const r = await k.kubectl(args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  await kc(["create", "serviceaccount", name, "-n", "default"]);
  await kc(["create", "rolebinding", `${name}-edit`, "--clusterrole", "edit", "--serviceaccount", `default:${name}`, "-n", "default"]);
  const token = (await kc(["create", "token", name, "-n", "default"])).trim();
  for (let i = 0; (await request({ ...k, token }, { path: "/api/v1/namespaces/default/configmaps" })).status !== 200; i++) {
    if (i > 100) throw new Error(`the ${name} ServiceAccount was never allowed to list configmaps`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return token;
}
