// `kubelab apiserver`: the API server process.

import { isIPv4 } from "node:net";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ApiServer, TokenFileAuthenticator, X509Authenticator, openBackend } from "../apiserver/index.ts";
import type { Registry, RegistryOptions } from "../apiserver/registry/registry.ts";
import { AUTHORIZATION_MODES, installAuthorization, newAuthorizer } from "../apiserver/authorization/index.ts";
import { IPRange, PortRange } from "../apiserver/registry/core/services/allocator.ts";
import { EncryptingBackend, loadEncryptionConfiguration, type EncryptionConfig } from "../apiserver/storage/encryption.ts";
import { newLogger } from "../client/index.ts";
import { newAuditing } from "../apiserver/audit/index.ts";
import { CliError } from "./errors.ts";
import { ServiceAccounts, readPrivateKeyFile, readPublicKeyFiles, validateServiceAccountConfig, type ServiceAccountConfig } from "../apiserver/serviceaccount/index.ts";
import { createPublicKey } from "node:crypto";

const HELP = `usage: kubelab apiserver [flags]

  --storage URL              memory://, file://DIR or etcd://HOST:PORT[,HOST:PORT] (default memory://)
  --port P                   secure port (default 6443)
  --bind ADDR                address to listen on (default 127.0.0.1)
  --advertise-address IP     the address the default/kubernetes Service's endpoints name (default: --bind,
                             or 127.0.0.1 when that is 0.0.0.0)
  --advertise-port P         the port those endpoints name (default --port; behind the cluster
                             endpoint of several apiservers, the endpoint's port, so that every
                             apiserver writes the same endpoints)
  --tls-cert-file FILE       serving certificate (PEM)
  --tls-private-key-file F   serving key (PEM)
  --token-auth-file FILE     bearer tokens, one "token,user,uid[,groups]" per line
  --client-ca-file FILE      CA bundle (PEM): client certificates it signed authenticate as their
                             subject's CN (user) and O values (groups)
  --authorization-mode M     comma-separated: Node, RBAC, AlwaysAllow, AlwaysDeny (default AlwaysAllow;
                             with AlwaysAllow requests without credentials are refused, with any
                             other mode they are system:anonymous and the authorizers decide)
  --audit-policy-file FILE   an audit.k8s.io/v1 Policy (YAML or JSON): which requests are logged, at
                             which level (None, Metadata, Request, RequestResponse)
  --audit-log-path PATH      where audit events go, one JSON line each (a file, or - for stdout)
  --audit-log-maxsize MB     rotate the file at this size (default 0 = 100)
  --audit-log-maxbackup N    rotated files kept (default 0 = all)
  --audit-log-maxage DAYS    rotated files kept this long (default 0 = no limit)
  --service-account-issuer URL        the issuer of ServiceAccount tokens (repeatable; the first signs)
  --service-account-key-file FILE     PEM keys that verify ServiceAccount tokens (repeatable)
  --service-account-signing-key-file FILE  the PEM private key that signs them
  --api-audiences A[,A]      audiences the apiserver accepts in tokens (default: the issuers)
  --service-account-max-token-expiration D  the longest TokenRequest lifetime, 1h to 2^32 s (default: none)
  --service-account-extend-token-expiration B  pods' 3607 s tokens live a year, warning after 3607 s
                             (default true)
  --service-account-jwks-uri URL  the jwks_uri of the OIDC discovery document (default:
                             https://<advertise address>:<port>/openid/v1/jwks)
  --insecure-serving         serve plain HTTP without authentication (tests and debugging only)
  --encryption-provider-config FILE  an EncryptionConfiguration (apiserver.config.k8s.io/v1):
                             the resources it names are stored encrypted (aescbc, aesgcm; identity)
  --default-not-ready-toleration-seconds N    tolerationSeconds of the not-ready:NoExecute toleration
                             added to pods that have none (default 300)
  --default-unreachable-toleration-seconds N  the same for unreachable:NoExecute (default 300)
  --max-requests-inflight N  non-mutating requests served at once; more are answered 429 with
                             Retry-After (default 400; 0: no limit)
  --max-mutating-requests-inflight N  the same for create, update, patch and delete (default 200)
  --request-timeout D        a request that has not answered by then gets 504 Timeout; watches,
                             logs and exec are exempt (default 1m0s; 0: none)
  --service-cluster-ip-range CIDR  IPv4 range Service ClusterIPs are allocated from, /12 to /30
                             (default 10.96.0.0/16)
  --service-node-port-range R      ports NodePort and LoadBalancer Services get (default 30000-32767)`;

/** Checks --service-cluster-ip-range and --service-node-port-range (undefined: the defaults). */
export function parseServiceRanges(ipRange: string | undefined, portRange: string | undefined): { serviceClusterIPRange?: string; serviceNodePortRange?: string } {
  try {
    if (ipRange !== undefined) new IPRange(ipRange);
  } catch (e) {
    throw new CliError(`--service-cluster-ip-range: ${(e as Error).message}`, 2);
  }
  try {
    if (portRange !== undefined) new PortRange(portRange);
  } catch (e) {
    throw new CliError(`--service-node-port-range: ${(e as Error).message}`, 2);
  }
  return { serviceClusterIPRange: ipRange, serviceNodePortRange: portRange };
}

/** A Go duration as kube-apiserver's flags take them: "1m0s", "90s", "1.5s", "500ms", "0". */
export function parseGoDuration(flag: string, v: string): number {
  const text = v.trim();
  if (text === "0") return 0;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new CliError(`--${flag} must be a duration like 1m0s, 30s or 500ms, got "${v}"`, 2);
    total += Number(m[1]) * unit[m[2]];
    pos = re.lastIndex;
  }
  if (text === "") throw new CliError(`--${flag} must be a duration like 1m0s, 30s or 500ms, got "${v}"`, 2);
  return Math.round(total);
}

/** A non-negative integer flag (seconds, counts). */
function parseSeconds(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < 0) throw new CliError(`--${flag} must be a non-negative integer, got "${v}"`, 2);
  return n;
}

/**
 * The --service-account-* flags and --api-audiences, as kube-apiserver reads them: undefined when
 * no issuer is given (no ServiceAccount tokens); keys default to the signing key's public half.
 */
export function serviceAccountsFromFlags(
  values: {
    "service-account-issuer"?: string[];
    "service-account-key-file"?: string[];
    "service-account-signing-key-file"?: string;
    "api-audiences"?: string;
    "service-account-max-token-expiration"?: string;
    "service-account-extend-token-expiration"?: string;
    "service-account-jwks-uri"?: string;
  },
  externalAddress: string,
): ServiceAccounts | undefined {
  const issuers = values["service-account-issuer"] ?? [];
  const keyFiles = values["service-account-key-file"] ?? [];
  const signingFile = values["service-account-signing-key-file"];
  if (issuers.length === 0) {
    if (signingFile) throw new CliError("--service-account-signing-key-file and --service-account-issuer are required flags", 2);
    return undefined;
  }
  let signingKey;
  let publicKeys;
  try {
    signingKey = signingFile ? readPrivateKeyFile(signingFile) : undefined;
    publicKeys = keyFiles.length ? readPublicKeyFiles(keyFiles) : signingKey ? [createPublicKey(signingKey)] : [];
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  const extend = values["service-account-extend-token-expiration"] ?? "true";
  if (extend !== "true" && extend !== "false") throw new CliError(`--service-account-extend-token-expiration must be true or false, got "${extend}"`, 2);
  const max = values["service-account-max-token-expiration"];
  const config: ServiceAccountConfig = {
    issuers,
    publicKeys,
    ...(signingKey ? { signingKey } : {}),
    apiAudiences: (values["api-audiences"] ?? "").split(",").map((a) => a.trim()).filter(Boolean),
    maxExpirationSeconds: max === undefined ? 0 : Math.floor(parseGoDuration("service-account-max-token-expiration", max) / 1000),
    extendExpiration: extend === "true",
    ...(values["service-account-jwks-uri"] ? { jwksURI: values["service-account-jwks-uri"] } : {}),
  };
  const errs = validateServiceAccountConfig(config);
  if (errs.length) throw new CliError(errs.join("; "), 2);
  return new ServiceAccounts(config, externalAddress);
}

export async function runApiserver(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      storage: { type: "string", default: "memory://" },
      port: { type: "string", default: "6443" },
      bind: { type: "string", default: "127.0.0.1" },
      "advertise-address": { type: "string" },
      "advertise-port": { type: "string" },
      "tls-cert-file": { type: "string" },
      "tls-private-key-file": { type: "string" },
      "token-auth-file": { type: "string" },
      "client-ca-file": { type: "string" },
      "audit-policy-file": { type: "string" },
      "audit-log-path": { type: "string" },
      "audit-log-maxsize": { type: "string", default: "0" },
      "audit-log-maxbackup": { type: "string", default: "0" },
      "audit-log-maxage": { type: "string", default: "0" },
      "authorization-mode": { type: "string", default: "AlwaysAllow" },
      "service-account-issuer": { type: "string", multiple: true, default: [] },
      "service-account-key-file": { type: "string", multiple: true, default: [] },
      "service-account-signing-key-file": { type: "string" },
      "api-audiences": { type: "string" },
      "service-account-max-token-expiration": { type: "string" },
      "service-account-extend-token-expiration": { type: "string", default: "true" },
      "service-account-jwks-uri": { type: "string" },
      "insecure-serving": { type: "boolean", default: false },
      "encryption-provider-config": { type: "string" },
      "default-not-ready-toleration-seconds": { type: "string", default: "300" },
      "default-unreachable-toleration-seconds": { type: "string", default: "300" },
      "max-requests-inflight": { type: "string", default: "400" },
      "max-mutating-requests-inflight": { type: "string", default: "200" },
      "request-timeout": { type: "string", default: "1m0s" },
      "service-cluster-ip-range": { type: "string" },
      "service-node-port-range": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be a port number, got "${values.port}"`, 2);
  const insecure = values["insecure-serving"];
  if (!insecure && (!values["tls-cert-file"] || !values["tls-private-key-file"] || !values["token-auth-file"])) {
    throw new CliError("--tls-cert-file, --tls-private-key-file and --token-auth-file are required (or --insecure-serving for tests)", 2);
  }
  const admission: RegistryOptions = {
    ...parseServiceRanges(values["service-cluster-ip-range"], values["service-node-port-range"]),
    defaultNotReadyTolerationSeconds: parseSeconds("default-not-ready-toleration-seconds", values["default-not-ready-toleration-seconds"]!),
    defaultUnreachableTolerationSeconds: parseSeconds("default-unreachable-toleration-seconds", values["default-unreachable-toleration-seconds"]!),
  };
  const limits = {
    maxRequestsInflight: parseSeconds("max-requests-inflight", values["max-requests-inflight"]!),
    maxMutatingRequestsInflight: parseSeconds("max-mutating-requests-inflight", values["max-mutating-requests-inflight"]!),
    requestTimeoutMs: parseGoDuration("request-timeout", values["request-timeout"]!),
  };
  const advertisePort = values["advertise-port"] !== undefined ? Number(values["advertise-port"]) : undefined;
  if (advertisePort !== undefined && !(/^\d+$/.test(values["advertise-port"]!) && advertisePort > 0 && advertisePort < 65536)) {
    throw new CliError(`--advertise-port must be a port number, got "${values["advertise-port"]}"`, 2);
  }
  let encryption: EncryptionConfig | undefined;
  if (values["encryption-provider-config"] !== undefined) {
    try {
      encryption = loadEncryptionConfiguration(values["encryption-provider-config"]);
    } catch (e) {
      throw new CliError(`--encryption-provider-config: ${(e as Error).message}`, 2);
    }
  }
  let clientCA: string | undefined;
  if (values["client-ca-file"] !== undefined) {
    try {
      clientCA = readFileSync(values["client-ca-file"], "utf8");
    } catch (e) {
      throw new CliError(`--client-ca-file: ${(e as Error).message}`, 2);
    }
    if (!clientCA.includes("-----BEGIN CERTIFICATE-----")) throw new CliError(`--client-ca-file: ${values["client-ca-file"]} holds no PEM certificate`, 2);
  }
  const modes = values["authorization-mode"]!.split(",").map((m) => m.trim()).filter(Boolean);
  for (const m of modes) {
    if (!(AUTHORIZATION_MODES as readonly string[]).includes(m)) throw new CliError(`--authorization-mode: unknown authorization mode "${m}" (supported: ${AUTHORIZATION_MODES.join(", ")})`, 2);
  }
  if (modes.length === 0 || new Set(modes).size !== modes.length) throw new CliError(`--authorization-mode: each mode once, at least one, got "${values["authorization-mode"]}"`, 2);
  const log = newLogger("apiserver");
  let auditing: ReturnType<typeof newAuditing>;
  try {
    auditing = newAuditing(
      {
        policyFile: values["audit-policy-file"],
        logPath: values["audit-log-path"],
        maxSizeMB: parseSeconds("audit-log-maxsize", values["audit-log-maxsize"]!),
        maxBackups: parseSeconds("audit-log-maxbackup", values["audit-log-maxbackup"]!),
        maxAgeDays: parseSeconds("audit-log-maxage", values["audit-log-maxage"]!),
      },
      (e) => log.error({ err: e.message }, "audit log"),
    );
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  for (const w of auditing.warnings) log.warn(w);
  const opened = await openBackend(values.storage!).catch((e: Error) => {
    throw new CliError(`cannot open storage ${values.storage}: ${e.message}`);
  });
  const backend = encryption ? new EncryptingBackend(opened, encryption) : opened;
  if (encryption) log.info({ resources: encryption.rules.flatMap((r) => r.resources), providers: encryption.rules.map((r) => r.providers[0]!.kind) }, "encryption at rest");
  const bindHost = values.bind === "0.0.0.0" || values.bind === "::" ? "127.0.0.1" : values.bind!;
  const serviceAccounts = serviceAccountsFromFlags(values, `${values["advertise-address"] ?? bindHost}:${advertisePort ?? port}`);
  if (serviceAccounts?.discoveryError) log.warn({ err: serviceAccounts.discoveryError }, "ServiceAccount issuer discovery disabled");
  const tokenFile = insecure ? undefined : TokenFileAuthenticator.fromFile(values["token-auth-file"]!);
  const server = new ApiServer({
    backend,
    log,
    admission,
    limits,
    tls: insecure ? undefined : { cert: readFileSync(values["tls-cert-file"]!, "utf8"), key: readFileSync(values["tls-private-key-file"]!, "utf8"), ...(clientCA ? { clientCA } : {}) },
    authenticators: !tokenFile ? [] : [...(clientCA ? [new X509Authenticator()] : []), tokenFile, ...(serviceAccounts ? [serviceAccounts.authenticator] : [])],
    ...(serviceAccounts?.discovery ? { serviceAccountIssuerDiscovery: serviceAccounts.discovery } : {}),
    ...(modes.length === 1 && modes[0] === "AlwaysAllow"
      ? {}
      : {
          authorizer: (registry: Registry) => {
            const a = newAuthorizer(modes, registry);
            installAuthorization(registry, a);
            return a;
          },
        }),
    auditor: auditing.auditor,
    kubernetesService: { advertiseAddress: values["advertise-address"], ...(advertisePort !== undefined ? { advertisePort } : {}) },
  });
  if (values["advertise-address"] !== undefined && !isIPv4(values["advertise-address"])) throw new CliError(`--advertise-address must be an IPv4 address, got "${values["advertise-address"]}"`, 2);
  serviceAccounts?.install(server.registry, tokenFile ? [tokenFile] : []);
  const bound = await server.start(port, values.bind);
  log.info({ port: bound, storage: values.storage }, "apiserver ready");
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "apiserver stopping");
    await server.stop();
    await auditing.backend?.close();
    await backend.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}
