// Encryption at rest: the EncryptionConfiguration's one-line errors, aescbc and aesgcm round trips
// on the embedded store (which holds only ciphertext), reads with old keys marked stale, identity.

import { describe, expect, it } from "vitest";
import { EncryptingBackend, Transformer, parseEncryptionConfiguration } from "./encryption.ts";
import { MemoryBackend } from "./memory.ts";

const K1 = Buffer.alloc(32, 1).toString("base64");
const K2 = Buffer.alloc(16, 2).toString("base64");

const config = (providers: string, resources = "[secrets]") =>
  parseEncryptionConfiguration(
    `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ${resources}
    providers:
${providers}`,
    "enc.yaml",
  );
const aescbc = (name: string, secret: string) => `      - aescbc: { keys: [{ name: ${name}, secret: "${secret}" }] }\n`;
const aesgcm = (name: string, secret: string) => `      - aesgcm: { keys: [{ name: ${name}, secret: "${secret}" }] }\n`;
const identity = "      - identity: {}\n";
const SECRET = JSON.stringify({ kind: "Secret", metadata: { name: "s" }, data: { password: Buffer.from("hunter2").toString("base64") } });

describe("EncryptionConfiguration", () => {
  it("names the field of each mistake in one line", () => {
    expect(() => config(aescbc("k1", "c2hvcnQ="))).toThrow("enc.yaml: resources[0].providers[0].aescbc.keys[0].secret: must decode to 16, 24 or 32 bytes (an AES key), not 5");
    expect(() => config("      - kms: { name: x }\n")).toThrow("enc.yaml: resources[0].providers[0].kms: provider kms is not supported (aescbc, aesgcm, identity)");
    expect(() => config(aescbc("k1", K1), "[Secrets]")).toThrow('enc.yaml: resources[0].resources[0]: "Secrets" is not a resource (secrets, deployments.apps, or *.* for all)');
    expect(() => config("      - identity: {}\n        aescbc: {}\n")).toThrow("enc.yaml: resources[0].providers[0]: must be exactly one of aescbc, aesgcm, identity");
    expect(() => parseEncryptionConfiguration("kind: EncryptionConfiguration\napiVersion: v1\nresources: []\n", "e.yaml")).toThrow('e.yaml: apiVersion: must be "apiserver.config.k8s.io/v1"');
    expect(() => config(`      - aescbc: { keys: [{ name: a, secret: "${K1}" }, { name: a, secret: "${K1}" }] }\n`)).toThrow('enc.yaml: resources[0].providers[0].aescbc.keys[1].name: duplicate key name "a"');
  });

  it("maps resources to storage prefixes; the most specific rule wins", () => {
    const c = config(aescbc("k1", K1), "[secrets, deployments.apps]");
    expect(c.rules[0]!.prefixes).toEqual(["/registry/secrets/", "/registry/deployments/"]);
  });
});

describe("EncryptingBackend", () => {
  for (const [kind, provider] of [["aescbc", aescbc("k1", K1)], ["aesgcm", aesgcm("k1", K2)]] as const) {
    it(`${kind}: the store holds only ciphertext; get, list and watch read plaintext; other resources stay plain`, async () => {
      const inner = await MemoryBackend.open({});
      const b = new EncryptingBackend(inner, config(provider));
      const ac = new AbortController();
      const events = b.watch("/registry/", 0, ac.signal)[Symbol.asyncIterator]();
      await b.create("/registry/secrets/default/s", SECRET);
      await b.create("/registry/configmaps/default/c", '{"kind":"ConfigMap"}');
      const raw = (await inner.get("/registry/secrets/default/s")).kv!.value;
      expect(raw.startsWith(`k8s:enc:${kind}:v1:k1:`)).toBe(true);
      expect(raw).not.toContain("aHVudGVyMg"); // the base64 of the password
      expect(raw).not.toContain("Secret");
      expect((await inner.get("/registry/configmaps/default/c")).kv!.value).toBe('{"kind":"ConfigMap"}');
      expect((await b.get("/registry/secrets/default/s")).kv!.value).toBe(SECRET);
      expect((await b.list("/registry/secrets/")).kvs.map((kv) => kv.value)).toEqual([SECRET]);
      expect((await events.next()).value.kv.value).toBe(SECRET);
      // Two writes of the same plaintext differ (a random IV or nonce each time).
      const cur = (await b.get("/registry/secrets/default/s")).kv!;
      await b.update("/registry/secrets/default/s", SECRET, cur.modRevision);
      expect((await inner.get("/registry/secrets/default/s")).kv!.value).not.toBe(raw);
      ac.abort();
      await b.close();
    });
  }

  it("aesgcm authenticates the key: a value copied under another name does not decrypt", async () => {
    const t = new Transformer(config(aesgcm("k1", K1)));
    const stored = t.toStorage("/registry/secrets/default/a", SECRET);
    expect(t.fromStorage("/registry/secrets/default/a", stored).value).toBe(SECRET);
    expect(() => t.fromStorage("/registry/secrets/default/b", stored)).toThrow(/cannot decrypt with aesgcm key k1/);
  });

  it("rotation: a value under an old key reads as stale; identity reads plaintext; without identity plaintext is an error", () => {
    const old = new Transformer(config(aescbc("k1", K1)));
    const stored = old.toStorage("/registry/secrets/n/s", SECRET);
    const rotated = new Transformer(config(`      - aescbc: { keys: [{ name: k2, secret: "${K1}" }, { name: k1, secret: "${K1}" }] }\n`));
    expect(rotated.fromStorage("/registry/secrets/n/s", stored)).toEqual({ value: SECRET, stale: true });
    expect(rotated.fromStorage("/registry/secrets/n/s", rotated.toStorage("/registry/secrets/n/s", SECRET))).toEqual({ value: SECRET, stale: false });
    const migrating = new Transformer(config(aescbc("k1", K1) + identity));
    expect(migrating.fromStorage("/registry/secrets/n/s", SECRET)).toEqual({ value: SECRET, stale: true });
    expect(() => old.fromStorage("/registry/secrets/n/s", SECRET)).toThrow(/no matching prefix found/);
    const unknownKey = new Transformer(config(aescbc("k9", K1)));
    expect(() => unknownKey.fromStorage("/registry/secrets/n/s", stored)).toThrow("/registry/secrets/n/s: encrypted with aescbc key k1, which the encryption configuration does not hold");
    // Decrypting back to plaintext: identity first, the old key still listed to read.
    const decrypting = new Transformer(config(identity + aescbc("k1", K1)));
    expect(decrypting.toStorage("/registry/secrets/n/s", SECRET)).toBe(SECRET);
    expect(decrypting.fromStorage("/registry/secrets/n/s", stored)).toEqual({ value: SECRET, stale: true });
  });
});
