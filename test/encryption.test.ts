// Secrets at rest (issue 13, item 5): `kubelab up --etcd URL --encryption-provider-config FILE`
// stores Secrets encrypted in etcd's keyspace — read here straight from etcd — while kubectl reads
// them back in the clear; ConfigMaps (not named by the file) stay plain. Rotation as upstream
// documents it: a new key first, the old one still listed, every secret re-written with
// `kubectl replace`, then the old key can go. A bad file is one line and nothing starts.

import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEtcd, type EtcdHandle } from "./harness/etcd.ts";
import { REPO, startKubelab, type Kubelab } from "./harness/kubelab.ts";

const KEY1 = Buffer.alloc(32, 7).toString("base64");
const KEY2 = Buffer.alloc(32, 9).toString("base64");
const encryptionConfig = (keys: { name: string; secret: string }[]) => `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
${keys.map((k) => `            - { name: ${k.name}, secret: "${k.secret}" }`).join("\n")}
      - identity: {}
`;

let etcd: EtcdHandle;
let raw: Etcd3;
let k: Kubelab | undefined;
const dir = mkdtempSync(join(tmpdir(), "kubelab-enc-"));
const file = join(dir, "encryption.yaml");
const dataDir = mkdtempSync(join(tmpdir(), "kubelab-test-"));

const stored = async (key: string) => (await raw.get(key).string()) ?? "";
const up = () => startKubelab({ etcd: etcd.url, dataDir, extraArgs: ["--encryption-provider-config", file] });

beforeAll(async () => {
  etcd = await startEtcd();
  raw = new Etcd3({ hosts: etcd.endpoints });
  writeFileSync(file, encryptionConfig([{ name: "key1", secret: KEY1 }]));
  k = await up();
}, 120_000);

afterAll(async () => {
  await k?.stop();
  raw?.close();
  await etcd?.stop();
});

describe("secrets at rest", () => {
  it("a Secret is ciphertext in etcd and plain through the API; a ConfigMap stays plain", async () => {
    expect((await k!.kubectl(["create", "secret", "generic", "db", "--from-literal=password=hunter2-very-secret"])).code).toBe(0);
    expect((await k!.kubectl(["create", "configmap", "settings", "--from-literal=colour=blue"])).code).toBe(0);
    const secret = await stored("/registry/secrets/default/db");
    expect(secret.startsWith("k8s:enc:aescbc:v1:key1:")).toBe(true);
    expect(secret).not.toContain("hunter2");
    expect(secret).not.toContain(Buffer.from("hunter2-very-secret").toString("base64"));
    expect(secret).not.toContain('"kind"');
    expect(await stored("/registry/configmaps/default/settings")).toContain('"colour":"blue"');
    const got = await k!.kubectl(["get", "secret", "db", "-o", "jsonpath={.data.password}"]);
    expect(Buffer.from(got.stdout, "base64").toString()).toBe("hunter2-very-secret");
    // Lists and watches decrypt too: the watch cache serves `get secrets` from the same stream.
    expect((await k!.kubectl(["get", "secrets", "-o", "name"])).stdout).toContain("secret/db");
  }, 60_000);

  it("rotates: a new key first, every secret re-written with kubectl replace, then the old key dropped", async () => {
    await k!.stop();
    k = undefined;
    writeFileSync(file, encryptionConfig([{ name: "key2", secret: KEY2 }, { name: "key1", secret: KEY1 }]));
    k = await up();
    // Still readable with the old key; still stored under it until re-written.
    const got = await k.kubectl(["get", "secret", "db", "-o", "jsonpath={.data.password}"]);
    expect(Buffer.from(got.stdout, "base64").toString()).toBe("hunter2-very-secret");
    expect((await stored("/registry/secrets/default/db")).startsWith("k8s:enc:aescbc:v1:key1:")).toBe(true);
    const all = await k.kubectl(["get", "secrets", "--all-namespaces", "-o", "json"]);
    const replaced = await k.kubectl(["replace", "-f", "-"], { input: all.stdout });
    expect(replaced.code, replaced.stderr).toBe(0);
    expect((await stored("/registry/secrets/default/db")).startsWith("k8s:enc:aescbc:v1:key2:")).toBe(true);

    await k.stop();
    k = undefined;
    writeFileSync(file, encryptionConfig([{ name: "key2", secret: KEY2 }]));
    k = await up();
    const again = await k.kubectl(["get", "secret", "db", "-o", "jsonpath={.data.password}"]);
    expect(Buffer.from(again.stdout, "base64").toString()).toBe("hunter2-very-secret");
  }, 180_000);

  it("a bad configuration file is one line naming the field, and nothing starts", () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, encryptionConfig([{ name: "key1", secret: "c2hvcnQ=" }]));
    const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO, "cli/main.ts"), "up", "--data-dir", mkdtempSync(join(tmpdir(), "kubelab-test-")), "--encryption-provider-config", bad], { encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`kubelab: --encryption-provider-config: ${bad}: resources[0].providers[0].aescbc.keys[0].secret: must decode to 16, 24 or 32 bytes (an AES key), not 5`);
  }, 60_000);
});
