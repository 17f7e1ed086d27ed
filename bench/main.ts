// `npm run bench -- <name>`: benchmarks that print figures beside a reference measured in the same run.

import { runApiBench } from "./api.ts";

const BENCHES: Record<string, (argv: string[]) => Promise<void>> = {
  api: runApiBench,
  controllers: (argv) => import("./controllers.ts").then((m) => m.runControllersBench(argv)),
  scheduler: (argv) => import("./scheduler.ts").then((m) => m.runSchedulerBench(argv)),
  pods: (argv) => import("./pods.ts").then((m) => m.runPodsBench(argv)),
  idle: (argv) => import("./idle.ts").then((m) => m.runIdleBench(argv)),
  ingress: (argv) => import("./ingress.ts").then((m) => m.runIngressBench(argv)),
  volumes: (argv) => import("./volumes.ts").then((m) => m.runVolumesBench(argv)),
};

const [name, ...rest] = process.argv.slice(2);
const run = name ? BENCHES[name] : undefined;
if (!run) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(BENCHES).join("|")}> [flags]\n`);
  process.exit(2);
}
run(rest).then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench ${name} failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
