// ServiceAccounts in the apiserver, wired as kube-apiserver's --service-account-* flags wire them:
// the token authenticators (legacy and bound), TokenReview, the serviceaccounts/token subresource,
// the ServiceAccount admission plugin, and the OIDC issuer discovery documents.

import type { KeyObject } from "node:crypto";
import type { ServiceAccount } from "../../api/index.ts";
import { ServiceAccountAdmission } from "../admission/serviceaccount.ts";
import type { Authenticator } from "../auth.ts";
import type { Registry } from "../registry/registry.ts";
import { JWTTokenAuthenticator, UnionTokenAuthenticator, tokenReviewHandler, type TokenAuthenticator } from "./authenticator.ts";
import { LEGACY_ISSUER, newLegacyValidator, newValidator, type ServiceAccountTokenGetter } from "./claims.ts";
import { registryTokenGetter } from "./getter.ts";
import { TokenGenerator } from "./jwt.ts";
import { newOpenIDMetadata, type OpenIDMetadata } from "./openidmetadata.ts";
import { MAX_TOKEN_EXPIRATION_SECONDS, tokenRequestHandler } from "./tokenrequest.ts";

export * from "./authenticator.ts";
export * from "./claims.ts";
export * from "./jwt.ts";
export * from "./openidmetadata.ts";
export * from "./tokenrequest.ts";
export { registryTokenGetter } from "./getter.ts";

/** kube-apiserver's ServiceAccount flags, parsed. */
export interface ServiceAccountConfig {
  /** --service-account-issuer: the first signs new tokens, all are accepted. */
  issuers: string[];
  /** --service-account-key-file: the public keys that verify tokens. */
  publicKeys: KeyObject[];
  /** --service-account-signing-key-file: without it the apiserver issues no tokens (no TokenRequest). */
  signingKey?: KeyObject;
  /** --api-audiences; empty: the issuers. */
  apiAudiences: string[];
  /** --service-account-max-token-expiration in seconds; 0: none. */
  maxExpirationSeconds: number;
  /** --service-account-extend-token-expiration (default true). */
  extendExpiration: boolean;
  /** --service-account-jwks-uri; empty: https://<external address>/openid/v1/jwks. */
  jwksURI?: string;
}

/** upstream's ValidateServiceAccount...: the messages kube-apiserver refuses to start with. */
export function validateServiceAccountConfig(c: ServiceAccountConfig): string[] {
  const errs: string[] = [];
  if (c.issuers.length === 0) errs.push("service-account-issuer is a required flag");
  if (c.publicKeys.length === 0) errs.push("service-account-key-file is a required flag");
  const seen = new Set<string>();
  for (const iss of c.issuers) {
    if (!iss) errs.push("service-account-issuer should not be an empty string");
    else if (iss.includes(":") && !isURL(iss)) errs.push(`service-account-issuer ${JSON.stringify(iss)} contained a ':' but was not a valid URL`);
    if (seen.has(iss)) errs.push(`service-account-issuer ${JSON.stringify(iss)} is already specified`);
    seen.add(iss);
  }
  if (c.maxExpirationSeconds !== 0 && (c.maxExpirationSeconds < 3600 || c.maxExpirationSeconds > MAX_TOKEN_EXPIRATION_SECONDS)) {
    errs.push("the service-account-max-token-expiration must be between 1 hour and 2^32 seconds");
  }
  if (c.jwksURI && !isURL(c.jwksURI)) errs.push("service-account-jwks-uri must be a valid URL");
  return errs;
}

function isURL(s: string): boolean {
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}

/** A getter that reads the registry once it is bound (the authenticators exist before the server's registry does). */
class LateGetter implements ServiceAccountTokenGetter {
  private getter?: ServiceAccountTokenGetter;
  bind(g: ServiceAccountTokenGetter): void {
    this.getter = g;
  }
  private get g(): ServiceAccountTokenGetter {
    if (!this.getter) throw new Error("ServiceAccount token getter used before the registry was bound");
    return this.getter;
  }
  getServiceAccount = (ns: string, name: string) => this.g.getServiceAccount(ns, name);
  getPod = (ns: string, name: string) => this.g.getPod(ns, name);
  getSecret = (ns: string, name: string) => this.g.getSecret(ns, name);
  getNode = (name: string) => this.g.getNode(name);
}

/**
 * The ServiceAccount side of one apiserver. Build it from the flags, put `authenticator` in the
 * server's authenticators (after client certificates, as upstream's union orders token
 * authenticators after x509), serve `discovery`, and call `install` with the server's registry.
 */
export class ServiceAccounts {
  /** The legacy (secret-based) and bound token authenticators, in upstream's order. */
  readonly authenticator: Authenticator & TokenAuthenticator;
  /** The OIDC documents; undefined when the issuer cannot serve discovery (not https). */
  readonly discovery?: OpenIDMetadata;
  /** Why discovery is off, for the log. */
  readonly discoveryError?: string;
  readonly apiAudiences: string[];
  private readonly getter = new LateGetter();

  constructor(
    readonly config: ServiceAccountConfig,
    /** The apiserver's external host:port (the default JWKS URI names it). */
    externalAddress: string,
  ) {
    this.apiAudiences = config.apiAudiences.length ? [...config.apiAudiences] : [...config.issuers];
    const legacy = new JWTTokenAuthenticator({ issuers: [LEGACY_ISSUER], keys: config.publicKeys, implicitAudiences: this.apiAudiences, validator: newLegacyValidator(this.getter) });
    const bound = new JWTTokenAuthenticator({ issuers: config.issuers, keys: config.publicKeys, implicitAudiences: this.apiAudiences, validator: newValidator(this.getter) });
    this.authenticator = new UnionTokenAuthenticator([legacy, bound]);
    try {
      this.discovery = newOpenIDMetadata(config.issuers[0] ?? "", config.jwksURI, externalAddress, config.publicKeys);
    } catch (e) {
      this.discoveryError = (e as Error).message;
    }
  }

  /**
   * Binds the authenticators to the registry and registers TokenReview (answered by the
   * ServiceAccount authenticators, then `others`), serviceaccounts/token (when there is a signing
   * key) and the ServiceAccount admission plugin. Call once, after installAuthorization.
   */
  install(registry: Registry, others: readonly Authenticator[]): void {
    this.getter.bind(registryTokenGetter(registry));
    registry.registerVirtual("authentication.k8s.io", "tokenreviews", tokenReviewHandler(this.authenticator, others, this.apiAudiences));
    const { signingKey, issuers } = this.config;
    if (signingKey && issuers[0]) {
      registry.registerSubresourceCreate(
        "",
        "serviceaccounts",
        "token",
        tokenRequestHandler(registry, {
          generator: new TokenGenerator(issuers[0], signingKey),
          apiAudiences: this.apiAudiences,
          maxExpirationSeconds: this.config.maxExpirationSeconds,
          extendExpiration: this.config.extendExpiration,
        }),
      );
    }
    // Upstream's order: LimitRanger, ServiceAccount, NodeRestriction, ...
    const plugin = newServiceAccountAdmission(registry);
    registry.admission.add({ mutating: plugin, validating: plugin }, "LimitRanger");
  }
}

/** The admission plugin over the registry: the watch cache, then the store. */
export function newServiceAccountAdmission(registry: Registry): ServiceAccountAdmission {
  const store = () => registry.store("", "serviceaccounts");
  return new ServiceAccountAdmission({
    cached: (ns, name) => store().cache.get(store().key(ns, name))?.obj as ServiceAccount | undefined,
    live: async (ns, name) => {
      try {
        return (await store().get(ns, name)) as ServiceAccount;
      } catch (e) {
        if ((e as { code?: number }).code === 404) return undefined;
        throw e;
      }
    },
  });
}
