import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseCapacity, runKubelet } from "./kubelet.ts";

const dir = mkdtempSync(join(tmpdir(), "kubelet-cli-"));
const kubeconfig = join(dir, "kubeconfig");
writeFileSync(kubeconfig, "not used: every case fails before connecting\n");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("kubelab kubelet flags", () => {
  const cases: [string, string[], string][] = [
    ["--kubeconfig is required", ["--simulate"], "--kubeconfig is required"],
    ["a runtime is required", ["--kubeconfig", kubeconfig], "--runtime-endpoint is required (or --simulate for simulated nodes)"],
    ["simulate and an endpoint are exclusive", ["--kubeconfig", kubeconfig, "--simulate", "--runtime-endpoint", "unix:///x.sock"], "--runtime-endpoint and --simulate are exclusive"],
    ["--nodes needs --simulate", ["--kubeconfig", kubeconfig, "--runtime-endpoint", "unix:///x.sock", "--nodes", "3"], "--nodes needs --simulate"],
    ["--nodes must be positive", ["--kubeconfig", kubeconfig, "--simulate", "--nodes", "0"], '--nodes must be a positive integer, got "0"'],
    ["simulated pods stay on loopback", ["--kubeconfig", kubeconfig, "--simulate", "--pod-cidr", "10.0.0.0/16"], "--pod-cidr 10.0.0.0/16 must lie inside 127.0.0.0/8 with --simulate"],
    ["the range must hold the nodes", ["--kubeconfig", kubeconfig, "--simulate", "--nodes", "5", "--pod-cidr", "127.64.0.0/22"], "--pod-cidr: pod CIDR 127.64.0.0/22 holds 4 node /24s, too few for 5 nodes"],
    ["a bad duration names its flag", ["--kubeconfig", kubeconfig, "--simulate", "--node-status-update-frequency", "often"], '--node-status-update-frequency: "often" is not a duration like 15s or 500ms'],
    ["a bad port", ["--kubeconfig", kubeconfig, "--simulate", "--port", "70000"], '--port must be a port number, got "70000"'],
    ["a bad --node-certificates", ["--kubeconfig", kubeconfig, "--simulate", "--node-certificates", "always"], '--node-certificates must be auto, bootstrap or shared, got "always"'],
    ["the node IP must be local", ["--kubeconfig", kubeconfig, "--runtime-endpoint", "unix:///x.sock", "--node-ip", "192.0.2.1"], "--node-ip 192.0.2.1 is not an address of this machine"],
  ];
  for (const [name, argv, message] of cases) {
    it(name, async () => {
      await expect(runKubelet(argv)).rejects.toMatchObject({ name: "CliError", message, exitCode: 2 });
    });
  }

  it("parses --capacity and rejects entries that are not name=quantity", () => {
    expect(parseCapacity("cpu=4, memory=16Gi,pods=50")).toEqual({ cpu: "4", memory: "16Gi", pods: "50" });
    expect(() => parseCapacity("cpu=lots")).toThrow('--capacity: "cpu=lots" is not name=quantity');
  });
});
