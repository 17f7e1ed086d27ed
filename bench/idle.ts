// Idle bench: the compiled `kubelab up` (what `npm start` runs), left idle with its simulated nodes,
// and the RSS of each process — the target: apiserver + scheduler + controller-manager + one
// kubelet under 300 MB.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Node } from "../api/core/v1.ts";
import { RestClient } from "../client/index.ts";
import { freePort, testClusterCIDR } from "../test/harness/kubelab.ts";
import { sleep, stopProcess } from "./util.ts";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const rssMB = (pid: number): number => (Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]) * 4096) / 2 ** 20;

export async function runIdleBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { settle: { type: "string", default: "30" } } });
  execFileSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });
  const dir = mkdtempSync(join(tmpdir(), "kubelab-bench-idle-"));
  const port = await freePort();
  const up = spawn(process.execPath, [join(ROOT, "dist/cli/main.js"), "up", "--data-dir", dir, "--port", String(port), "--cluster-cidr", testClusterCIDR()], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, KUBELAB_LOG_LEVEL: "warn" },
  });
  let client: RestClient | undefined;
  try {
    for (let i = 0; !existsSync(join(dir, "kubeconfig")); i++) {
      if (i > 600 || up.exitCode !== null) throw new Error("kubelab up did not start");
      await sleep(100);
    }
    client = RestClient.fromKubeconfig(join(dir, "kubeconfig"), { userAgent: "kubelab-bench" });
    for (let i = 0; ; i++) {
      const nodes = await client.resource<Node>("", "nodes").list("").catch(() => ({ items: [] as Node[] }));
      if (nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length >= 6) break;
      if (i > 600) throw new Error("the nodes did not become Ready");
      await sleep(100);
    }
    await sleep(Number(values.settle) * 1000);
    const state = JSON.parse(readFileSync(join(dir, "up.json"), "utf8")) as { components: { name: string; pid?: number }[] };
    const rss = Object.fromEntries(state.components.filter((c) => c.pid).map((c) => [c.name, rssMB(c.pid!)]));
    const core = ["apiserver", "scheduler-1", "controller-manager-1", "kubelet-local-1a"].reduce((s, n) => s + (rss[n] ?? NaN), 0);
    const lines = [
      `kubelab idle bench (compiled kubelab up, 6 simulated nodes, idle ${values.settle}s after Ready)`,
      ...Object.entries(rss).map(([n, mb]) => `  ${n.padEnd(24)} ${mb.toFixed(0)} MB`),
      `  apiserver + scheduler + controller-manager + one kubelet pool   ${core.toFixed(0)} MB`,
      `  ratio to the 300 MB target       ${(core / 300).toFixed(2)}   (<= 1.00 meets the target)`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    client?.close();
    await stopProcess(up);
    rmSync(dir, { recursive: true, force: true });
  }
}
