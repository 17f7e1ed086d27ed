// A bench helper process: opens N watches on the apiserver and records, for every event, how long
// after its write it arrived. Runs apart from the writer so neither's event loop delays the other.
// Protocol: argv = port token-file-free JSON config on stdin's first line; prints "ready\n" when all
// watches stream, then on "stop\n" prints one JSON line with the delays and exits.

import https from "node:https";
import { createInterface } from "node:readline";

interface Config {
  port: number;
  token: string;
  ca: string;
  watchers: number;
  path: string;
}

async function main(): Promise<void> {
  const rl = createInterface({ input: process.stdin });
  const lines = rl[Symbol.asyncIterator]();
  const cfg = JSON.parse(String((await lines.next()).value)) as Config;
  const agent = new https.Agent({ keepAlive: false, maxSockets: Infinity, ca: cfg.ca });
  const delays: number[] = [];
  const streams: ReturnType<typeof https.request>[] = [];
  const open = () =>
    new Promise<void>((resolve, reject) => {
      const req = https.request(
        { host: "127.0.0.1", port: cfg.port, method: "GET", agent, path: cfg.path, headers: { Authorization: `Bearer ${cfg.token}` } },
        (res) => {
          if (res.statusCode !== 200) return reject(new Error(`watch answered ${res.statusCode}`));
          resolve();
          let buf = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => {
            const now = Date.now();
            buf += d;
            let from = 0;
            for (;;) {
              const nl = buf.indexOf("\n", from);
              if (nl < 0) break;
              // The object carries its write time; find it without parsing the whole event.
              const i = buf.indexOf('"sent":"', from);
              if (i >= 0 && i < nl) delays.push(now - Number(buf.slice(i + 8, buf.indexOf('"', i + 8))));
              from = nl + 1;
            }
            buf = buf.slice(from);
          });
          res.on("error", () => undefined);
        },
      );
      req.on("error", reject);
      req.end();
      streams.push(req);
    });
  for (let w = 0; w < cfg.watchers; w += 50) {
    await Promise.all(Array.from({ length: Math.min(50, cfg.watchers - w) }, () => open()));
  }
  process.stdout.write("ready\n");
  await lines.next(); // "stop"
  for (const s of streams) s.destroy();
  delays.sort((a, b) => a - b);
  const pct = (p: number) => (delays.length ? delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))] : NaN);
  const summary = { count: delays.length, p50: pct(50), p99: pct(99), max: delays.length ? delays[delays.length - 1] : NaN };
  process.stdout.write(JSON.stringify(summary) + "\n", () => process.exit(0));
}

main().catch((e: unknown) => {
  process.stderr.write(`watchers: ${(e as Error).message}\n`);
  process.exit(1);
});
