// `kubelab certs`: the PKI and admin kubeconfig that `up` makes for itself, written for deployments
// that run the components elsewhere (deploy/docker-compose.yml's one-shot `certs` service).

import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, describe, expect, it, vi } from "vitest";
import { runCerts } from "./certs.ts";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "kubelab-certs-"));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** runCerts with its stdout captured. */
async function certs(argv: string[]): Promise<string> {
  let out = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  try {
    await runCerts(argv);
  } finally {
    spy.mockRestore();
  }
  return out;
}

interface Kubeconfig {
  clusters: { cluster: { server: string; "certificate-authority-data": string } }[];
  users: { user: { token: string } }[];
}

describe("kubelab certs", () => {
  it("writes a CA, a serving certificate it signed for the given names, the token and a kubeconfig for --server", async () => {
    const dir = join(tmp(), "pki");
    const out = await certs(["--data-dir", dir, "--tls-san", "apiserver-1", "--tls-san", "127.10.0.1", "--server", "https://127.0.0.1:6443"]);
    expect(out).toContain(`certificates in ${dir}`);
    const ca = new X509Certificate(readFileSync(join(dir, "ca.crt")));
    const serving = new X509Certificate(readFileSync(join(dir, "apiserver.crt")));
    expect(ca.ca).toBe(true);
    expect(serving.checkIssued(ca)).toBe(true);
    expect(serving.verify(ca.publicKey)).toBe(true);
    for (const name of ["DNS:apiserver-1", "IP Address:127.10.0.1", "IP Address:127.0.0.1", "DNS:localhost"]) expect(serving.subjectAltName).toContain(name);
    const token = readFileSync(join(dir, "token"), "utf8").trim();
    expect(token.length).toBeGreaterThan(20);
    expect(readFileSync(join(dir, "tokens.csv"), "utf8")).toMatch(new RegExp(`^${token},kubelab-admin,`));
    const kc = parse(readFileSync(join(dir, "kubeconfig"), "utf8")) as Kubeconfig;
    expect(kc.clusters[0].cluster.server).toBe("https://127.0.0.1:6443");
    expect(Buffer.from(kc.clusters[0].cluster["certificate-authority-data"], "base64").toString()).toBe(readFileSync(join(dir, "ca.crt"), "utf8"));
    expect(kc.users[0].user.token).toBe(token);
    // Secrets are the owner's only.
    for (const f of ["ca.key", "apiserver.key", "tokens.csv", "token", "kubeconfig"]) expect(statSync(join(dir, f)).mode & 0o077, f).toBe(0);
  });

  it("defaults --server to the compose file's cluster endpoint, https://endpoint:6443", async () => {
    const dir = tmp();
    await certs(["--data-dir", dir]);
    expect((parse(readFileSync(join(dir, "kubeconfig"), "utf8")) as Kubeconfig).clusters[0].cluster.server).toBe("https://endpoint:6443");
  });

  it("keeps what exists when run again, and re-issues only the serving certificate for a new name", async () => {
    const dir = tmp();
    const files = ["ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "tokens.csv", "token", "kubeconfig"];
    await certs(["--data-dir", dir, "--tls-san", "apiserver-1"]);
    const first = files.map((f) => readFileSync(join(dir, f), "utf8"));
    await certs(["--data-dir", dir, "--tls-san", "apiserver-1"]);
    expect(files.map((f) => readFileSync(join(dir, f), "utf8"))).toEqual(first);
    await certs(["--data-dir", dir, "--tls-san", "apiserver-1", "--tls-san", "apiserver-2"]);
    const serving = new X509Certificate(readFileSync(join(dir, "apiserver.crt")));
    expect(serving.subjectAltName).toContain("DNS:apiserver-2");
    expect(serving.checkIssued(new X509Certificate(first[0]))).toBe(true);
    expect(readFileSync(join(dir, "ca.key"), "utf8")).toBe(first[1]);
    expect(readFileSync(join(dir, "token"), "utf8")).toBe(first[5]);
  });

  it.each([
    ["no --data-dir", [], /--data-dir is required/],
    ["a SAN with a space", ["--tls-san", "api server"], /--tls-san "api server" is not a DNS name/],
    ["an IP out of range", ["--tls-san", "127.0.0.256"], /not a valid IPv4 address/],
    ["an http:// server", ["--server", "http://endpoint:6443"], /must be an https:\/\/ URL/],
    ["a server that is not a URL", ["--server", "endpoint:6443:x"], /--server must be/],
  ])("refuses %s with a one-line usage error (exit 2)", async (_what, args, message) => {
    const argv = args.length === 0 ? [] : ["--data-dir", tmp(), ...args];
    await expect(certs(argv)).rejects.toMatchObject({ name: "CliError", exitCode: 2, message: expect.stringMatching(message) });
  });

  it("refuses an unknown flag as the CLI's strict parser does", async () => {
    await expect(certs(["--data-dir", tmp(), "--tls-sans", "x"])).rejects.toMatchObject({ code: "ERR_PARSE_ARGS_UNKNOWN_OPTION" });
  });

  it("--component and --kubelet-pool write each one's kubeconfig with a client certificate naming its identity; a bad name is one line", async () => {
    const dir = join(tmp(), "pki");
    await certs(["--data-dir", dir, "--server", "https://127.0.0.1:6443", "--component", "scheduler", "--component", "proxy", "--kubelet-pool", "local-1a"]);
    const ca = new X509Certificate(readFileSync(join(dir, "ca.crt")));
    const want: Record<string, string> = { scheduler: "CN=system:kube-scheduler", proxy: "CN=system:kube-proxy", "kubelet-local-1a": "CN=kubelab:kubelet-pool:local-1a" };
    for (const [name, subject] of Object.entries(want)) {
      const kc = parse(readFileSync(join(dir, "kubeconfigs", `${name}.kubeconfig`), "utf8")) as { clusters: { cluster: { server: string } }[]; users: { user: Record<string, string> }[] };
      expect(kc.clusters[0]!.cluster.server).toBe("https://127.0.0.1:6443");
      const cert = new X509Certificate(Buffer.from(kc.users[0]!.user["client-certificate-data"]!, "base64"));
      expect(cert.subject).toContain(subject);
      expect(cert.checkIssued(ca)).toBe(true);
    }
    const pool = new X509Certificate(readFileSync(join(dir, "client-kubelet-local-1a.crt")));
    expect(pool.subject).toContain("O=kubelab:kubelet-pools");
    expect(pool.subject).toContain("O=system:bootstrappers");
    expect(statSync(join(dir, "sa.key")).mode & 0o777).toBe(0o600);
    await expect(runCerts(["--data-dir", dir, "--component", "kubelet"])).rejects.toMatchObject({ name: "CliError", exitCode: 2, message: '--component "kubelet" is not one of scheduler, controller-manager, cloud-controller, proxy, dns, ingress' });
    await expect(runCerts(["--data-dir", dir, "--kubelet-pool", "Zone A"])).rejects.toMatchObject({ name: "CliError", exitCode: 2 });
  });
});
