// Authentication: a chain of authenticators run before any handler; the first that recognises the request wins.

import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import type { PeerCertificate, TLSSocket } from "node:tls";

export interface UserInfo {
  name: string;
  uid: string;
  groups: string[];
  /** user.Info's extra: e.g. a ServiceAccount token's authentication.kubernetes.io/pod-name. */
  extra?: Record<string, string[]>;
}

/**
 * Authenticator answers who sent a request: a user, `null` when the request carries no credential
 * of its kind (the next authenticator is asked), or throws AuthenticationError when it carries one
 * that is wrong (the request is rejected with 401 whatever else it carries).
 */
export interface Authenticator {
  authenticate(req: IncomingMessage): Promise<UserInfo | null> | UserInfo | null;
}

export class AuthenticationError extends Error {
  override readonly name = "AuthenticationError";
}

/**
 * Static bearer tokens, as `--token-auth-file` does upstream: a CSV of `token,user,uid[,"group1,group2"]`.
 */
export class TokenFileAuthenticator implements Authenticator {
  private readonly tokens: { token: Buffer; user: UserInfo }[];

  constructor(entries: { token: string; user: UserInfo }[]) {
    this.tokens = entries.map((e) => ({ token: Buffer.from(e.token), user: e.user }));
  }

  static fromFile(path: string): TokenFileAuthenticator {
    return new TokenFileAuthenticator(parseTokenFile(readFileSync(path, "utf8")));
  }

  authenticate(req: IncomingMessage): UserInfo | null {
    const h = req.headers.authorization;
    if (!h) return null;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m) return null;
    const given = Buffer.from(m[1]);
    for (const t of this.tokens) {
      if (t.token.length === given.length && timingSafeEqual(t.token, given)) return t.user;
    }
    throw new AuthenticationError("invalid bearer token");
  }
}

export function parseTokenFile(text: string): { token: string; user: UserInfo }[] {
  const out: { token: string; user: UserInfo }[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^([^,]+),([^,]+),([^,]+)(?:,"?([^"]*)"?)?$/.exec(line);
    if (!m) throw new Error(`token file: malformed line (want token,user,uid[,"groups"])`);
    out.push({ token: m[1], user: { name: m[2], uid: m[3], groups: m[4] ? m[4].split(",").filter(Boolean) : [] } });
  }
  return out;
}

/** Paths anyone may read, as the system:public-info-viewer role allows upstream. */
export const PUBLIC_PATHS = new Set(["/healthz", "/livez", "/readyz", "/version"]);

export const ANONYMOUS: UserInfo = { name: "system:anonymous", uid: "", groups: ["system:unauthenticated"] };

/** The group every authenticated user is in (upstream's AuthenticatedGroupAdder). */
export const AUTHENTICATED_GROUP = "system:authenticated";

const CLIENT_AUTH_OID = "1.3.6.1.5.5.7.3.2";

/**
 * x509 client certificates, as `--client-ca-file` does upstream: the TLS server asks for a client
 * certificate and checks its chain against the client CA (and its validity dates); a connection that
 * presented one that fails (unknown CA, expired, not for client auth) is refused with 401 on every
 * request. The user is the subject's CN, the groups its O values.
 */
export class X509Authenticator implements Authenticator {
  private readonly bySocket = new WeakMap<object, UserInfo | Error | null>();

  authenticate(req: IncomingMessage): UserInfo | null {
    const socket = req.socket as TLSSocket;
    if (typeof socket.getPeerCertificate !== "function") return null;
    let r = this.bySocket.get(socket);
    if (r === undefined) {
      r = this.verify(socket);
      this.bySocket.set(socket, r);
    }
    if (r instanceof Error) throw r;
    return r;
  }

  private verify(socket: TLSSocket): UserInfo | Error | null {
    const cert = socket.getPeerCertificate();
    if (!cert || Object.keys(cert).length === 0) return null;
    if (!socket.authorized) {
      const why = String(socket.authorizationError ?? "unverified");
      return new AuthenticationError(`verifying certificate ${certSummary(cert)} failed: x509: ${why}`);
    }
    if (cert.ext_key_usage && !cert.ext_key_usage.includes(CLIENT_AUTH_OID)) {
      return new AuthenticationError(`verifying certificate ${certSummary(cert)} failed: x509: certificate specifies an incompatible key usage`);
    }
    const cn = first(cert.subject?.CN);
    if (!cn) return new AuthenticationError("x509: client certificate has no common name");
    const orgs = cert.subject?.O;
    return { name: cn, uid: "", groups: orgs === undefined ? [] : Array.isArray(orgs) ? [...orgs] : [orgs] };
  }
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function certSummary(cert: PeerCertificate): string {
  return `SN=${BigInt("0x" + (cert.serialNumber || "0")).toString()}, CN=${first(cert.subject?.CN) ?? ""}, O=${[cert.subject?.O ?? []].flat().join(",")}`;
}
