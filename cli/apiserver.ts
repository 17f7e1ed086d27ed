// `kubelab apiserver`: the API server process.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ApiServer, TokenFileAuthenticator, openBackend } from "../apiserver/index.ts";
import { newLogger } from "../client/index.ts";
import { CliError } from "./errors.ts";

const HELP = `usage: kubelab apiserver [flags]

  --storage URL              memory://, file://DIR or etcd://HOST:PORT[,HOST:PORT] (default memory://)
  --port P                   secure port (default 6443)
  --bind ADDR                address to listen on (default 127.0.0.1)
  --tls-cert-file FILE       serving certificate (PEM)
  --tls-private-key-file F   serving key (PEM)
  --token-auth-file FILE     bearer tokens, one "token,user,uid[,groups]" per line
  --insecure-serving         serve plain HTTP without authentication (tests and debugging only)
  --default-not-ready-toleration-seconds N    tolerationSeconds of the not-ready:NoExecute toleration
                             added to pods that have none (default 300)
  --default-unreachable-toleration-seconds N  the same for unreachable:NoExecute (default 300)`;

function parseSeconds(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < 0) throw new CliError(`--${flag} must be a non-negative integer, got "${v}"`, 2);
  return n;
}

export async function runApiserver(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      storage: { type: "string", default: "memory://" },
      port: { type: "string", default: "6443" },
      bind: { type: "string", default: "127.0.0.1" },
      "tls-cert-file": { type: "string" },
      "tls-private-key-file": { type: "string" },
      "token-auth-file": { type: "string" },
      "insecure-serving": { type: "boolean", default: false },
      "default-not-ready-toleration-seconds": { type: "string", default: "300" },
      "default-unreachable-toleration-seconds": { type: "string", default: "300" },
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
  const admission = {
    defaultNotReadyTolerationSeconds: parseSeconds("default-not-ready-toleration-seconds", values["default-not-ready-toleration-seconds"]!),
    defaultUnreachableTolerationSeconds: parseSeconds("default-unreachable-toleration-seconds", values["default-unreachable-toleration-seconds"]!),
  };
  const log = newLogger("apiserver");
  const backend = await openBackend(values.storage!).catch((e: Error) => {
    throw new CliError(`cannot open storage ${values.storage}: ${e.message}`);
  });
  const server = new ApiServer({
    backend,
    log,
    admission,
    tls: insecure ? undefined : { cert: readFileSync(values["tls-cert-file"]!, "utf8"), key: readFileSync(values["tls-private-key-file"]!, "utf8") },
    authenticators: insecure ? [] : [TokenFileAuthenticator.fromFile(values["token-auth-file"]!)],
  });
  const bound = await server.start(port, values.bind);
  log.info({ port: bound, storage: values.storage }, "apiserver ready");
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "apiserver stopping");
    await server.stop();
    await backend.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}
