// ServiceAccount issuer discovery (upstream pkg/serviceaccount/openidmetadata.go): the OIDC
// discovery document at /.well-known/openid-configuration and the JWKS at /openid/v1/jwks, so that
// a relying party outside the cluster (an STS, a cloud IAM) can verify ServiceAccount tokens.

import type { KeyObject } from "node:crypto";
import { publicJWK, type JSONWebKey } from "./jwt.ts";

export const OPENID_CONFIG_PATH = "/.well-known/openid-configuration";
export const JWKS_PATH = "/openid/v1/jwks";
/** upstream's cacheControl: overrides the apiserver's `private, no-cache` for these two documents. */
export const DISCOVERY_CACHE_CONTROL = "public, max-age=3600";
/** upstream's mimeJWKS. */
export const JWKS_CONTENT_TYPE = "application/jwk-set+json";

/** The two documents, serialized once at start as upstream does (the keys do not change while it runs). */
export interface OpenIDMetadata {
  configJSON: string;
  publicKeysetJSON: string;
}

/** upstream's openIDMetadata, in its field order. */
interface OpenIDConfiguration {
  issuer: string;
  jwks_uri: string;
  response_types_supported: string[];
  subject_types_supported: string[];
  id_token_signing_alg_values_supported: string[];
}

/**
 * upstream's NewOpenIDMetadata: the issuer must be an https URL without query or fragment; the JWKS
 * URI is --service-account-jwks-uri, or https://<the apiserver's external address>/openid/v1/jwks.
 * Throws with upstream's message when the configuration cannot serve discovery.
 */
export function newOpenIDMetadata(issuerURL: string, jwksURI: string | undefined, defaultExternalAddress: string, pubKeys: readonly KeyObject[]): OpenIDMetadata {
  if (!issuerURL) throw new Error("empty issuer URL");
  if (!jwksURI && !defaultExternalAddress) throw new Error("either the JWKS URI or the default external address, or both, must be set");
  if (pubKeys.length === 0) throw new Error("no keys provided for validating keyset");
  let issuer: URL;
  try {
    issuer = new URL(issuerURL);
  } catch (e) {
    throw new Error(`could not parse issuer URL: ${(e as Error).message}`, { cause: e });
  }
  if (issuer.protocol !== "https:") throw new Error("issuer URL must use https scheme, got: " + issuerURL);
  if (issuer.search) throw new Error("issuer URL may not include a query, got: " + issuerURL);
  if (issuer.hash) throw new Error("issuer URL may not include a fragment, got: " + issuerURL);

  let jwks: string;
  if (jwksURI) {
    let u: URL;
    try {
      u = new URL(jwksURI);
    } catch (e) {
      throw new Error(`could not parse JWKS URI: ${(e as Error).message}`, { cause: e });
    }
    if (u.protocol !== "https:") throw new Error("jwks URI must use https scheme, got: " + jwksURI);
    jwks = jwksURI;
  } else {
    jwks = `https://${defaultExternalAddress}${JWKS_PATH}`;
  }

  const keys = pubKeys.map(publicJWK);
  const config: OpenIDConfiguration = {
    issuer: issuerURL,
    jwks_uri: jwks,
    response_types_supported: ["id_token"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: signingAlgs(keys),
  };
  return { configJSON: JSON.stringify(config), publicKeysetJSON: JSON.stringify({ keys }) };
}

/** The distinct algorithms of the keys, sorted (upstream's getAlgs). */
function signingAlgs(keys: readonly JSONWebKey[]): string[] {
  return [...new Set(keys.map((k) => k.alg))].sort();
}
