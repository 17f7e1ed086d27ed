// A bench helper process: opens N watches on the apiserver(s) (round-robin over the ports given)
// and records, for every event, how long after its write it arrived. Runs apart from the writer so
// neither's event loop delays the other. The stream is scanned as bytes (no UTF-8 decoding, no
// JSON parsing): this process shares the machine with the apiserver it measures.
// Protocol: a JSON config on stdin's first line; prints "ready\n" when all watches stream, then on
// "stop\n" prints one JSON line with the delays (and this process's CPU seconds) and exits.

import https from "node:https";
import { createInterface } from "node:readline";

interface Config {
  ports: number[];
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
  const SENT = Buffer.from('"sent":"');
  const NL = 0x0a;
  const QUOTE = 0x22;
  const open = (n: number) =>
    new Promise<void>((resolve, reject) => {
      const port = cfg.ports[n % cfg.ports.length]!;
      const req = https.request(
        { host: "127.0.0.1", port, method: "GET", agent, path: cfg.path, headers: { Authorization: `Bearer ${cfg.token}` } },
        (res) => {
          if (res.statusCode !== 200) return reject(new Error(`watch answered ${res.statusCode}`));
          resolve();
          let rest: Buffer | undefined; // an incomplete last line
          res.on("data", (d: Buffer) => {
            const now = Date.now();
            const buf = rest ? Buffer.concat([rest, d]) : d;
            let from = 0;
            for (;;) {
              const nl = buf.indexOf(NL, from);
              if (nl < 0) break;
              // The object carries its write time; find it without parsing the whole event.
              const i = buf.indexOf(SENT, from);
              if (i >= 0 && i < nl) {
                let t = 0;
                for (let j = i + SENT.length; buf[j] !== QUOTE; j++) t = t * 10 + (buf[j]! - 48);
                delays.push(now - t);
              }
              from = nl + 1;
            }
            rest = from < buf.length ? buf.subarray(from) : undefined;
          });
          res.on("error", () => undefined);
        },
      );
      req.on("error", reject);
      req.end();
      streams.push(req);
    });
  for (let w = 0; w < cfg.watchers; w += 50) {
    await Promise.all(Array.from({ length: Math.min(50, cfg.watchers - w) }, (_, i) => open(w + i)));
  }
  process.stdout.write("ready\n");
  const cpu0 = process.cpuUsage();
  await lines.next(); // "stop"
  const used = process.cpuUsage(cpu0);
  for (const s of streams) s.destroy();
  delays.sort((a, b) => a - b);
  const pct = (p: number) => (delays.length ? delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))] : NaN);
  const summary = { count: delays.length, p50: pct(50), p99: pct(99), max: delays.length ? delays[delays.length - 1] : NaN, cpu: (used.user + used.system) / 1e6 };
  process.stdout.write(JSON.stringify(summary) + "\n", () => process.exit(0));
}

main().catch((e: unknown) => {
  process.stderr.write(`watchers: ${(e as Error).message}\n`);
  process.exit(1);
});
