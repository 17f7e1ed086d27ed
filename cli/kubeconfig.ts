// Writes the admin kubeconfig: the cluster's CA, the apiserver URL, and the admin bearer token.

import { writeFileSync } from "node:fs";
import { stringify } from "yaml";

export function kubeconfigYaml(opts: { server: string; caCert: string; token: string; name?: string }): string {
  const name = opts.name ?? "kubelab";
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name, cluster: { server: opts.server, "certificate-authority-data": Buffer.from(opts.caCert).toString("base64") } }],
    users: [{ name: `${name}-admin`, user: { token: opts.token } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace: "default" } }],
    "current-context": name,
    preferences: {},
  });
}

export function writeKubeconfig(path: string, opts: { server: string; caCert: string; token: string; name?: string }): void {
  writeFileSync(path, kubeconfigYaml(opts), { mode: 0o600 });
}
