// Writes a kubeconfig: the cluster's CA, the apiserver URL, and a user — a bearer token (the admin) or a
// client certificate (each component's own identity, as kubeadm writes scheduler.conf and kubelet.conf).

import { writeFileSync } from "node:fs";
import { stringify } from "yaml";

export interface KubeconfigOptions {
  server: string;
  caCert: string;
  token?: string;
  /** PEM client certificate and key (instead of a token). */
  clientCert?: string;
  clientKey?: string;
  name?: string;
  /** The user entry's name (default `<name>-admin`). */
  userName?: string;
}

export function kubeconfigYaml(opts: KubeconfigOptions): string {
  const name = opts.name ?? "kubelab";
  const userName = opts.userName ?? `${name}-admin`;
  const user: Record<string, string> = {};
  if (opts.clientCert && opts.clientKey) {
    user["client-certificate-data"] = Buffer.from(opts.clientCert).toString("base64");
    user["client-key-data"] = Buffer.from(opts.clientKey).toString("base64");
  } else if (opts.token) {
    user.token = opts.token;
  } else {
    throw new Error("a kubeconfig needs a token or a client certificate");
  }
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name, cluster: { server: opts.server, "certificate-authority-data": Buffer.from(opts.caCert).toString("base64") } }],
    users: [{ name: userName, user }],
    contexts: [{ name, context: { cluster: name, user: userName, namespace: "default" } }],
    "current-context": name,
    preferences: {},
  });
}

export function writeKubeconfig(path: string, opts: KubeconfigOptions): void {
  writeFileSync(path, kubeconfigYaml(opts), { mode: 0o600 });
}
