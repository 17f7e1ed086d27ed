// Authentication: a chain of authenticators run before any handler; the first that recognises the request wins.

import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";

export interface UserInfo {
  name: string;
  uid: string;
  groups: string[];
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
