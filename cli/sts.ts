// `kubelab sts`: the simulated cloud's STS (controllers/cloud/sts.ts), AssumeRoleWithWebIdentity for
// pods' projected ServiceAccount tokens — EKS's IAM Roles for Service Accounts, end to end. It knows
// the cluster only as an OIDC provider (the apiserver's /.well-known/openid-configuration and JWKS).

import { readFileSync } from "node:fs";
import http from "node:http";
import { parseArgs } from "node:util";
import { newLogger } from "../client/index.ts";
import { SimulatedSTS, parseRoles } from "../controllers/cloud/sts.ts";
import { CliError } from "./errors.ts";

const HELP = `usage: kubelab sts --issuer URL --roles FILE [flags]

  --issuer URL          the OIDC provider: the issuer the tokens name (the apiserver's --service-account-issuer;
                        kubelab up: https://kubernetes.default.svc.cluster.local)
  --discovery-url URL   where /.well-known/openid-configuration and the JWKS are fetched (default: the issuer;
                        e.g. https://127.0.0.1:6443, the apiserver). The JWKS URL's path is fetched from here.
  --ca-file FILE        the CA of the discovery URL's certificate (the cluster CA, DATA/pki/ca.crt)
  --roles FILE          YAML: roles: [{arn: arn:aws:iam::111122223333:role/NAME, subjects: [system:serviceaccount:NS:SA],
                        audiences: [sts.amazonaws.com], maxSessionSeconds: 3600}] (subjects and audiences take * and ?)
  --bind HOST           listen address (default 127.0.0.1)
  --port P              listen port (default 4566; 0 picks one). POST / with Action=AssumeRoleWithWebIdentity.`;

export async function runSts(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      issuer: { type: "string" },
      "discovery-url": { type: "string" },
      "ca-file": { type: "string" },
      roles: { type: "string" },
      bind: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "4566" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  if (!values.issuer) throw new CliError("--issuer is required", 2);
  if (!values.roles) throw new CliError("--roles is required", 2);
  for (const f of ["issuer", "discovery-url"] as const) {
    const v = values[f];
    if (v === undefined) continue;
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw new CliError(`--${f} must be a URL, got "${v}"`, 2);
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") throw new CliError(`--${f} must be an http(s) URL, got "${v}"`, 2);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be a port number, got "${values.port}"`, 2);
  const read = (flag: string, f: string): string => {
    try {
      return readFileSync(f, "utf8");
    } catch (e) {
      throw new CliError(`--${flag}: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 2);
    }
  };
  let roles;
  try {
    roles = parseRoles(read("roles", values.roles), values.roles);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError((e as Error).message, 2);
  }
  const log = newLogger("sts");
  const sts = new SimulatedSTS({
    issuer: values.issuer,
    discoveryURL: values["discovery-url"] ?? values.issuer,
    ...(values["ca-file"] ? { caCert: read("ca-file", values["ca-file"]) } : {}),
    account: roles[0]?.arn.split(":")[4] ?? "000000000000",
    roles,
  });
  const handler = sts.handler();
  const server = http.createServer((req, res) => {
    res.on("finish", () => log.info({ method: req.method, status: res.statusCode }, "request"));
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) => reject(new CliError(`cannot listen on ${values.bind}:${port}: ${(e as Error).message}`, 1)));
    server.listen(port, values.bind, () => resolve());
  });
  const addr = server.address() as { port: number };
  log.info({ port: addr.port, issuer: values.issuer, roles: roles.length }, "STS serving AssumeRoleWithWebIdentity");
  process.stdout.write(`sts listening on http://${values.bind}:${addr.port}\n`);
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
