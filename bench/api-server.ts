// The apiserver process of `npm run bench -- api --storage file`: the same ApiServer as
// `kubelab apiserver` (TLS, token auth), on the store named by --storage, and with
// --unsafe-ack-before-sync on the file store as it was before group commit (writes acknowledged
// before their fsync; only here, to measure what durability costs). All three configurations of
// that bench run through this one entry, so only the store differs between them.
//
//   node --import tsx bench/api-server.ts --storage URL --port P --tls-cert-file F --tls-private-key-file F --token-auth-file F [--unsafe-ack-before-sync]

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ApiServer, TokenFileAuthenticator } from "../apiserver/index.ts";
import { MemoryBackend, openBackend, type Backend } from "../apiserver/storage/index.ts";

const { values } = parseArgs({
  options: {
    storage: { type: "string" },
    port: { type: "string" },
    "tls-cert-file": { type: "string" },
    "tls-private-key-file": { type: "string" },
    "token-auth-file": { type: "string" },
    "unsafe-ack-before-sync": { type: "boolean", default: false },
  },
});
const url = values.storage!;
let backend: Backend;
if (values["unsafe-ack-before-sync"]) {
  if (!url.startsWith("file:///")) throw new Error("--unsafe-ack-before-sync needs an absolute file:/// URL");
  backend = await MemoryBackend.open({ dir: fileURLToPath(url), unsafeAcknowledgeBeforeSync: true });
} else {
  backend = await openBackend(url);
}
const server = new ApiServer({
  backend,
  tls: { cert: readFileSync(values["tls-cert-file"]!, "utf8"), key: readFileSync(values["tls-private-key-file"]!, "utf8") },
  authenticators: [TokenFileAuthenticator.fromFile(values["token-auth-file"]!)],
});
await server.start(Number(values.port), "127.0.0.1");
process.on("SIGTERM", () => {
  void (async () => {
    await server.stop();
    await backend.close();
    process.exit(0);
  })();
});
