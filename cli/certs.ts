// `kubelab certs`: the cluster's PKI and admin kubeconfig without running a cluster — what `up` makes
// for itself (cli/pki.ts ensurePki, cli/kubeconfig.ts writeKubeconfig), for deployments where the
// components run elsewhere, like deploy/docker-compose.yml's one-shot `certs` service (kubeadm's
// `init phase certs` and `init phase kubeconfig admin` do the same for a kubeadm cluster).

import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CliError } from "./errors.ts";
import { writeKubeconfig } from "./kubeconfig.ts";
import { componentIdentity, ensureClientCert, ensurePki, kubeletPoolIdentity, servingSANs, type ClientIdentity, type Pki } from "./pki.ts";

const HELP = `usage: kubelab certs --data-dir DIR [flags]

Writes, keeping what already exists (run it again and nothing changes unless --tls-san adds a name):
  DIR/ca.crt, DIR/ca.key               the cluster CA
  DIR/apiserver.crt, DIR/apiserver.key the apiserver's serving certificate, signed by the CA (re-issued
                                       when a wanted name is missing from it)
  DIR/tokens.csv                       the admin bearer token (--token-auth-file format)
  DIR/token                            the same token alone (for Prometheus' credentials_file)
  DIR/kubeconfig                       the admin kubeconfig for --server
  DIR/sa.key, DIR/sa.pub               the ServiceAccount token signing key pair
  DIR/kubeconfigs/NAME.kubeconfig      a component's own kubeconfig: a client certificate from the CA
                                       (DIR/client-NAME.crt, .key) naming its identity

  --data-dir DIR       where to write them (required)
  --tls-san NAME       extra DNS name or IP of the serving certificate (repeatable); 127.0.0.1, localhost,
                       10.96.0.1 and kubernetes[.default[.svc]] are always in it
  --server URL         the apiserver URL the kubeconfigs name (default https://endpoint:6443)
  --component NAME     a component kubeconfig (repeatable): scheduler (system:kube-scheduler),
                       controller-manager (system:kube-controller-manager), cloud-controller
                       (system:cloud-controller-manager), proxy (system:kube-proxy), dns (system:kube-dns),
                       ingress (kubelab:ingress-controller)
  --kubelet-pool ZONE  a simulated kubelet pool's kubeconfig, kubeconfigs/kubelet-ZONE.kubeconfig (repeatable):
                       the pool's own identity, with which each of its nodes requests its certificate`;

/** Writes DIR/kubeconfigs/<name>.kubeconfig for `id` (its client certificate kept while valid); returns the path. */
export function writeComponentKubeconfig(pki: Pki, dataDir: string, name: string, id: ClientIdentity, server: string): string {
  const cert = ensureClientCert(pki, `client-${name}`, id);
  const file = join(dataDir, "kubeconfigs", `${name}.kubeconfig`);
  mkdirSync(join(dataDir, "kubeconfigs"), { recursive: true });
  writeKubeconfig(file, { server, caCert: pki.caCert, clientCert: cert.cert, clientKey: cert.key, userName: id.user });
  return file;
}

const COMPONENTS = ["scheduler", "controller-manager", "cloud-controller", "proxy", "dns", "ingress"];

export async function runCerts(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "data-dir": { type: "string" },
      "tls-san": { type: "string", multiple: true, default: [] },
      server: { type: "string", default: "https://endpoint:6443" },
      component: { type: "string", multiple: true, default: [] },
      "kubelet-pool": { type: "string", multiple: true, default: [] },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  if (!values["data-dir"]) throw new CliError("--data-dir is required", 2);
  const sans = values["tls-san"] ?? [];
  for (const s of sans) {
    // A SAN is a DNS name (RFC 1123 labels, a leading *. allowed) or an IPv4 address.
    if (!/^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i.test(s)) throw new CliError(`--tls-san "${s}" is not a DNS name or an IPv4 address`, 2);
    if (/^[\d.]+$/.test(s) && !/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(s)) throw new CliError(`--tls-san "${s}" is not a valid IPv4 address`, 2);
  }
  let server: URL;
  try {
    server = new URL(values.server!);
  } catch {
    throw new CliError(`--server must be a URL like https://endpoint:6443, got "${values.server}"`, 2);
  }
  if (server.protocol !== "https:") throw new CliError(`--server must be an https:// URL (the apiserver serves only TLS), got "${values.server}"`, 2);
  const components: [string, ClientIdentity][] = [];
  for (const c of values.component ?? []) {
    if (!COMPONENTS.includes(c)) throw new CliError(`--component "${c}" is not one of ${COMPONENTS.join(", ")}`, 2);
    components.push([c, componentIdentity(c)]);
  }
  for (const z of values["kubelet-pool"] ?? []) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(z)) throw new CliError(`--kubelet-pool "${z}" is not a zone name (lower-case letters, digits and '-')`, 2);
    components.push([`kubelet-${z}`, kubeletPoolIdentity(z)]);
  }
  const dir = resolve(values["data-dir"]);
  const pki = ensurePki(dir, sans);
  writeFileSync(join(dir, "token"), pki.adminToken + "\n", { mode: 0o600 });
  const kubeconfig = join(dir, "kubeconfig");
  writeKubeconfig(kubeconfig, { server: server.href.replace(/\/$/, ""), caCert: pki.caCert, token: pki.adminToken });
  for (const [name, id] of components) writeComponentKubeconfig(pki, dir, name, id, server.href.replace(/\/$/, ""));
  process.stdout.write(
    `certificates in ${dir} (apiserver names: ${servingSANs(sans).join(", ")}); kubeconfig ${kubeconfig} for ${server.href.replace(/\/$/, "")}\n`,
  );
}
