// Child process of crash.test.ts: opens the file:// store in DIR and writes numbered objects as fast
// as it can with CONCURRENCY writers, appending a line to ACKS (synchronously, right after the store
// acknowledged it) for each write: "c N" for a create, "u N" for an update of an object it created.
// Prints "ready" once the store is open; runs until killed. With concurrency 0 it only holds the store.
//
//   node --import tsx crash-writer.ts DIR ACKS RUN CONCURRENCY

import * as fs from "node:fs";
import { openBackend } from "../index.ts";

const [dir, acks, run, conc] = process.argv.slice(2);
if (!dir || !acks || !run || conc === undefined) {
  process.stderr.write("usage: crash-writer.ts DIR ACKS RUN CONCURRENCY\n");
  process.exit(2);
}
const backend = await openBackend(`file://${dir}`);
const fd = fs.openSync(acks, "a");
process.stdout.write("ready\n");

const pad = "x".repeat(300);
let next = 0;
async function writer(): Promise<void> {
  for (;;) {
    const n = next++;
    const key = `/registry/configmaps/crash/${run}-${n}`;
    const c = await backend.create(key, JSON.stringify({ run, n, v: 1, pad }));
    if (!c.succeeded) throw new Error(`create ${key} failed`);
    fs.writeSync(fd, `c ${n}\n`);
    if (n % 5 === 0) {
      const u = await backend.update(key, JSON.stringify({ run, n, v: 2, pad }), c.revision);
      if (!u.succeeded) throw new Error(`update ${key} failed`);
      fs.writeSync(fd, `u ${n}\n`);
    }
  }
}
for (let i = 0; i < Number(conc); i++) {
  writer().catch((e: unknown) => {
    process.stderr.write(`writer failed: ${String(e)}\n`);
    process.exit(1);
  });
}
// Keep the process alive while only holding the store.
setInterval(() => undefined, 60_000);
