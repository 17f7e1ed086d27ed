// Bearer ServiceAccount tokens as the apiserver authenticates them (upstream pkg/serviceaccount
// jwt.go's jwtTokenAuthenticator) and TokenReview (pkg/registry/authentication/tokenreview).

import type { IncomingMessage } from "node:http";
import type { KeyObject } from "node:crypto";
import type { TokenReview, TokenReviewStatus } from "../../api/authentication/v1.ts";
import { AUTHENTICATED_GROUP, AuthenticationError, type Authenticator, type UserInfo } from "../auth.ts";
import { errors } from "../errors.ts";
import type { VirtualCreate } from "../registry/registry.ts";
import { userInfoFor, type Validator } from "./claims.ts";
import { ERR_CRYPTO_FAILURE, parseToken, verifySignature } from "./jwt.ts";

/** Who a token is and which of the requested audiences it is good for (authenticator.Response). */
export interface TokenResponse {
  user: UserInfo;
  audiences: string[];
}

/**
 * A bearer token authenticator that knows about audiences (authenticator.Token). Resolves null
 * for a token it does not recognise; rejects with AuthenticationError for one it recognises as its
 * own and refuses.
 */
export interface TokenAuthenticator {
  authenticateToken(token: string, audiences?: readonly string[]): Promise<TokenResponse | null>;
}

/** The token of `Authorization: Bearer <token>` (upstream's bearertoken authenticator); undefined without one. */
export function bearerToken(req: Pick<IncomingMessage, "headers">): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/** Go's %q of a []string: ["a" "b"]. */
function goQuotedList(list: readonly string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(" ")}]`;
}

function intersect(a: readonly string[], b: readonly string[]): string[] {
  const set = new Set(b);
  return a.filter((x) => set.has(x));
}

export interface JWTTokenAuthenticatorOptions {
  /** The issuers whose tokens this authenticator owns (--service-account-issuer, or the legacy issuer). */
  issuers: readonly string[];
  /** Every public key that may have signed them (--service-account-key-file). */
  keys: readonly KeyObject[];
  /** --api-audiences: what a token must be for when the request does not say (every apiserver request). */
  implicitAudiences: readonly string[];
  validator: Validator;
}

/**
 * upstream's jwtTokenAuthenticator: a token whose (unverified) issuer is not one of ours is left to
 * the other authenticators; one that is must carry a signature of one of our keys, an issuer we
 * accept, an audience the request asks for, and pass the validator (times, and the service account
 * and bound objects still existing).
 */
export class JWTTokenAuthenticator implements Authenticator, TokenAuthenticator {
  private readonly issuers: Set<string>;

  constructor(private readonly opts: JWTTokenAuthenticatorOptions) {
    this.issuers = new Set(opts.issuers);
  }

  async authenticate(req: IncomingMessage): Promise<UserInfo | null> {
    const token = bearerToken(req);
    if (!token) return null;
    const r = await this.authenticateToken(token);
    return r ? r.user : null;
  }

  async authenticateToken(token: string, requested?: readonly string[]): Promise<TokenResponse | null> {
    if (token.trimStart().startsWith("{")) return null;
    const tok = parseToken(token);
    // WARNING: the issuer is read before the signature is checked; it only says whose token this claims to be.
    if (!tok || typeof tok.claims.iss !== "string" || !this.issuers.has(tok.claims.iss)) return null;
    if (!this.opts.keys.some((k) => verifySignature(tok, k))) throw new AuthenticationError(ERR_CRYPTO_FAILURE);
    const c = tok.claims;
    let tokenAudiences: readonly string[] = Array.isArray(c.aud) ? c.aud.filter((a): a is string => typeof a === "string") : [];
    // Legacy (secret-based) tokens carry no audience: they are good for the apiserver only.
    if (tokenAudiences.length === 0) tokenAudiences = this.opts.implicitAudiences;
    const want = requested && requested.length ? requested : this.opts.implicitAudiences;
    const audiences = intersect(tokenAudiences, want);
    if (audiences.length === 0 && this.opts.implicitAudiences.length !== 0) {
      throw new AuthenticationError(`token audiences ${goQuotedList(tokenAudiences)} is invalid for the target audiences ${goQuotedList(want)}`);
    }
    let info;
    try {
      info = await this.opts.validator.validate(token, c);
    } catch (e) {
      if ((e as { name?: string }).name === "TokenValidationError") throw new AuthenticationError((e as Error).message);
      throw e;
    }
    return { user: userInfoFor(info), audiences };
  }
}

/** Tries each token authenticator in turn (upstream's union): the first that knows the token answers. */
export class UnionTokenAuthenticator implements Authenticator, TokenAuthenticator {
  constructor(private readonly members: readonly TokenAuthenticator[]) {}

  async authenticate(req: IncomingMessage): Promise<UserInfo | null> {
    const token = bearerToken(req);
    if (!token) return null;
    const r = await this.authenticateToken(token);
    return r ? r.user : null;
  }

  async authenticateToken(token: string, audiences?: readonly string[]): Promise<TokenResponse | null> {
    const errs: string[] = [];
    for (const m of this.members) {
      try {
        const r = await m.authenticateToken(token, audiences);
        if (r) return r;
      } catch (e) {
        if ((e as { name?: string }).name !== "AuthenticationError") throw e;
        errs.push((e as Error).message);
      }
    }
    if (errs.length) throw new AuthenticationError(aggregate(errs));
    return null;
  }
}

/** utilerrors.NewAggregate(...).Error(): one message alone, several de-duplicated in brackets. */
function aggregate(messages: readonly string[]): string {
  const seen = [...new Set(messages)];
  return seen.length === 1 ? seen[0]! : `[${seen.join(", ")}]`;
}

/**
 * POST /apis/authentication.k8s.io/v1/tokenreviews (upstream pkg/registry/authentication/tokenreview):
 * authenticates spec.token for spec.audiences (default the API audiences) with the token
 * authenticators a request bearing it would meet — the ServiceAccount authenticators, then `others`
 * (the static token file) — and answers who it is. A refused token is a 201 with authenticated
 * false and the reason in status.error, not an error.
 */
export function tokenReviewHandler(serviceAccounts: TokenAuthenticator, others: readonly Authenticator[], apiAudiences: readonly string[]): VirtualCreate {
  return async (obj, req) => {
    const review = obj as TokenReview;
    if (req.namespace) throw errors.badRequest(`namespace is not allowed on this type: ${req.namespace}`);
    const token = review.spec?.token ?? "";
    if (!token) throw errors.badRequest("token is required for TokenReview in authentication.k8s.io");
    const auds = review.spec?.audiences?.length ? review.spec.audiences : [...apiAudiences];
    const status: TokenReviewStatus = { authenticated: false };
    const errs: string[] = [];
    let resp: TokenResponse | null = null;
    try {
      resp = await serviceAccounts.authenticateToken(token, auds);
    } catch (e) {
      if ((e as { name?: string }).name !== "AuthenticationError") throw e;
      errs.push((e as Error).message);
    }
    // The other authenticators know no audiences (upstream wraps them WrapAudienceAgnosticToken):
    // they answer only for a review meant for the apiserver itself. Upstream's token file answers
    // "not mine" for a token it does not hold; ours rejects it (the request path needs that 401),
    // which a review reports as not authenticated, without an error of its own.
    const forApiserver = intersect(auds, apiAudiences);
    if (!resp && (forApiserver.length > 0 || apiAudiences.length === 0)) {
      const fake = { headers: { authorization: `Bearer ${token}` }, socket: {} } as unknown as IncomingMessage;
      for (const a of others) {
        try {
          const user = await a.authenticate(fake);
          if (user) {
            resp = { user, audiences: forApiserver };
            break;
          }
        } catch (e) {
          if ((e as { name?: string }).name !== "AuthenticationError") throw e;
        }
      }
    }
    if (resp && auds.length > 0 && intersect(auds, resp.audiences).length === 0) throw errors.internal("error validating audiences");
    if (resp) {
      const u = resp.user;
      // The union's AuthenticatedGroupAdder, as a request gets it.
      const groups = u.groups.includes(AUTHENTICATED_GROUP) ? u.groups : [...u.groups, AUTHENTICATED_GROUP];
      status.authenticated = true;
      status.user = { username: u.name, uid: u.uid, groups, ...(u.extra && Object.keys(u.extra).length ? { extra: u.extra } : {}) };
      status.audiences = resp.audiences;
    } else if (errs.length) {
      status.error = aggregate(errs);
    }
    return { ...review, status } satisfies TokenReview;
  };
}
