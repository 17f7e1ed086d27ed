// Regenerates kubelab's Kubernetes protobuf subset (proto/k8s/**/generated.proto) and the Go JSON facts of
// its fields (proto/k8s/gofields.ts) from upstream sources:
//
//   npx tsx proto/subset.ts --api <k8s.io/api checkout> --apimachinery <k8s.io/apimachinery checkout> \
//     --version v0.36.3 && npm run proto
//
// (e.g. `git clone --depth 1 -b v0.36.3 https://github.com/kubernetes/api`, same for apimachinery.)
//
// It keeps, unchanged (names, field numbers, types), every upstream message reachable from the roots in
// apiserver/protobuf/kinds.ts, i.e. from the catalogue: each served kind, its subresource bodies,
// DeleteOptions and the runtime.Unknown envelope. Messages are copied whole, so a body from an upstream
// client never carries a field the subset lacks (unknown fields are then only fields newer than
// --version, which upstream's decoder drops as well).
//
// For every kept message it records, per proto field, the Go field's type and `json:` tag from the
// package's types.go (matched by protobuf field number), which apiserver/protobuf uses to write the JSON
// Go's encoding/json would write (pointer / omitempty / inline / json name). Go types with their own
// MarshalJSON (Time, Quantity, IntOrString, RawExtension, ...) are listed in GO_JSON_MARSHALERS instead.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { protoRoots } from "../apiserver/protobuf/kinds.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = join(HERE, "k8s");

const SCALARS = new Set(["string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64", "double", "float"]);

interface ProtoField {
  line: string;
  name: string;
  number: number;
  /** referenced message types (full names) */
  refs: string[];
}

interface ProtoMessage {
  pkg: string;
  name: string;
  fields: ProtoField[];
  /** directory of the upstream package (for its Go sources) */
  dir: string;
}

interface GoField {
  goType: string;
  json: string;
}

function args(): { api: string; apimachinery: string; version: string } {
  const a = process.argv.slice(2);
  const get = (flag: string): string => {
    const i = a.indexOf(flag);
    const v = i >= 0 ? a[i + 1] : undefined;
    if (v === undefined) throw new Error(`usage: tsx proto/subset.ts --api DIR --apimachinery DIR --version vX.Y.Z (missing ${flag})`);
    return v;
  };
  return { api: resolve(get("--api")), apimachinery: resolve(get("--apimachinery")), version: get("--version") };
}

function findProtoDirs(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (e === "generated.proto") out.push(dir);
    }
  };
  walk(root);
  return out;
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
}

function parseProto(dir: string): ProtoMessage[] {
  const text = stripComments(readFileSync(join(dir, "generated.proto"), "utf8"));
  const pkg = /^\s*package\s+([\w.]+)\s*;/m.exec(text)?.[1];
  if (!pkg) throw new Error(`${dir}/generated.proto: no package`);
  const messages: ProtoMessage[] = [];
  for (const m of text.matchAll(/\bmessage\s+(\w+)\s*\{([^{}]*)\}/g)) {
    const fields: ProtoField[] = [];
    for (const raw of (m[2] ?? "").split(";")) {
      const line = raw.trim().replace(/\s+/g, " ");
      if (line === "") continue;
      const f = /^(?:(optional|repeated|required) )?(map ?< ?([\w.]+) ?, ?([\w.]+) ?>|[\w.]+) (\w+) ?= ?(\d+)(?: ?\[[^\]]*\])?$/.exec(line);
      if (!f) throw new Error(`${pkg}.${m[1]}: cannot parse field "${line}"`);
      const types = f[3] !== undefined ? [f[3], f[4] ?? ""] : [f[2] ?? ""];
      const refs = types.filter((t) => !SCALARS.has(t)).map((t) => (t.startsWith(".") ? t.slice(1) : `${pkg}.${t}`));
      fields.push({ line: `${line};`, name: f[5] ?? "", number: Number(f[6]), refs });
    }
    messages.push({ pkg, name: m[1] ?? "", fields, dir });
  }
  return messages;
}

/**
 * Go structs of one package: type name -> protobuf field number -> Go type and json tag; plus MarshalJSON
 * types, and named slice types (`type ExtraValue []string`), which go-to-protobuf wraps in a message with
 * one `repeated items = 1` field while Go's encoding/json writes the bare list.
 */
function parseGo(dir: string): { structs: Map<string, Map<number, GoField>>; marshalers: Set<string>; slices: Set<string> } {
  const structs = new Map<string, Map<number, GoField>>();
  const marshalers = new Set<string>();
  const slices = new Set<string>();
  const files = readdirSync(dir).filter((f) => f.endsWith(".go") && !f.endsWith("_test.go") && !f.endsWith(".pb.go") && !f.startsWith("zz_generated"));
  for (const file of files) {
    const lines = readFileSync(join(dir, file), "utf8").split("\n");
    let current: Map<number, GoField> | undefined;
    for (const line of lines) {
      const mj = /^func \(\w+ \*?(\w+)\) MarshalJSON\(\)/.exec(line);
      if (mj?.[1]) marshalers.add(mj[1]);
      const slice = /^type (\w+) \[\][\w.*]+\s*$/.exec(line);
      if (slice?.[1]) slices.add(slice[1]);
      const start = /^type (\w+) struct \{\s*$/.exec(line);
      if (start?.[1]) {
        current = new Map();
        structs.set(start[1], current);
        continue;
      }
      if (current && /^\}/.test(line)) {
        current = undefined;
        continue;
      }
      if (!current) continue;
      const code = line.replace(/^\s+/, "");
      if (code.startsWith("//")) continue;
      const named = /^(\w+)\s+([^`]+?)\s+`([^`]*)`/.exec(code);
      const embedded = /^([\w.*]+)\s+`([^`]*)`/.exec(code);
      const goType = named ? named[2] : embedded?.[1];
      const tags = named ? named[3] : embedded?.[2];
      if (goType === undefined || tags === undefined) continue;
      const proto = /protobuf:"([^"]*)"/.exec(tags)?.[1];
      const json = /json:"([^"]*)"/.exec(tags)?.[1];
      if (proto === undefined || proto === "-") continue;
      const number = Number(proto.split(",")[1]);
      if (!Number.isInteger(number)) throw new Error(`${dir}/${file}: bad protobuf tag ${proto}`);
      current.set(number, { goType: goType.trim(), json: json ?? "" });
    }
  }
  return { structs, marshalers, slices };
}

function packagePath(pkg: string): string {
  if (!pkg.startsWith("k8s.io.")) throw new Error(`unexpected package ${pkg}`);
  return `k8s/${pkg.slice("k8s.io.".length).replaceAll(".", "/")}/generated.proto`;
}

function main(): void {
  const { api, apimachinery, version } = args();
  const all = new Map<string, ProtoMessage>();
  const order: string[] = [];
  for (const dir of [...findProtoDirs(api), ...findProtoDirs(join(apimachinery, "pkg"))]) {
    for (const m of parseProto(dir)) {
      const full = `${m.pkg}.${m.name}`;
      all.set(full, m);
      order.push(full);
    }
  }
  const keep = new Set<string>();
  const queue = protoRoots();
  while (queue.length > 0) {
    const name = queue.shift() ?? "";
    if (keep.has(name)) continue;
    const m = all.get(name);
    if (!m) throw new Error(`message ${name} not found upstream (is its package among the checked-out dirs?)`);
    keep.add(name);
    for (const f of m.fields) queue.push(...f.refs);
  }

  // proto files, one per package, messages in upstream order
  const byPkg = new Map<string, ProtoMessage[]>();
  for (const full of order) {
    const m = all.get(full);
    if (!m || !keep.has(full)) continue;
    byPkg.set(m.pkg, [...(byPkg.get(m.pkg) ?? []), m]);
  }
  for (const e of existsSync(OUT) ? readdirSync(OUT) : []) {
    if (e !== "gofields.ts") rmSync(join(OUT, e), { recursive: true, force: true });
  }
  for (const [pkg, messages] of byPkg) {
    const imports = new Set<string>();
    for (const m of messages) for (const f of m.fields) for (const r of f.refs) {
      const target = all.get(r);
      if (target && target.pkg !== pkg) imports.add(packagePath(target.pkg));
    }
    const body = [
      `// Generated by proto/subset.ts from upstream ${pkg.startsWith("k8s.io.api.") ? "k8s.io/api" : "k8s.io/apimachinery"} ${version}`,
      "// generated.proto: the messages kubelab decodes (reachable from apiserver/protobuf/kinds.ts), copied",
      "// whole with upstream names and field numbers. Do not edit; re-run proto/subset.ts, then npm run proto.",
      'syntax = "proto2";',
      "",
      `package ${pkg};`,
      "",
      ...[...imports].sort().map((i) => `import "${i}";`),
      ...(imports.size > 0 ? [""] : []),
      ...messages.flatMap((m) => [`message ${m.name} {`, ...m.fields.map((f) => `  ${f.line}`), "}", ""]),
    ];
    const path = join(HERE, packagePath(pkg));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, body.join("\n"));
  }

  // Go JSON facts
  const goCache = new Map<string, ReturnType<typeof parseGo>>();
  const marshalers: string[] = [];
  const namedSlices: string[] = [];
  const fields: string[] = [];
  for (const full of order) {
    const m = all.get(full);
    if (!m || !keep.has(full)) continue;
    let go = goCache.get(m.dir);
    if (!go) {
      go = parseGo(m.dir);
      goCache.set(m.dir, go);
    }
    if (go.marshalers.has(m.name)) {
      marshalers.push(full);
      continue;
    }
    if (go.slices.has(m.name)) {
      if (m.fields.length !== 1 || m.fields[0]?.name !== "items") throw new Error(`${full}: a named slice type whose message is not { repeated items = 1 }`);
      namedSlices.push(full);
      continue;
    }
    const struct = go.structs.get(m.name);
    if (!struct) throw new Error(`${full}: no Go struct ${m.name} in ${relative(process.cwd(), m.dir)}`);
    const entries = m.fields.map((f) => {
      const g = struct.get(f.number);
      if (!g) throw new Error(`${full}.${f.name} (${f.number}): no Go field with that protobuf number`);
      return `    ${JSON.stringify(f.name)}: [${JSON.stringify(g.goType)}, ${JSON.stringify(g.json)}],`;
    });
    fields.push(`  ${JSON.stringify(full)}: {`, ...entries, "  },");
  }
  const ts = [
    `// Generated by proto/subset.ts from k8s.io/api and k8s.io/apimachinery ${version} (types.go struct tags).`,
    "// Do not edit; re-run proto/subset.ts. For every message in proto/k8s/: proto field name -> [Go type,",
    "// Go `json:` tag]. apiserver/protobuf derives from them what Go's encoding/json writes for the field.",
    "",
    "/** Messages whose Go type has its own MarshalJSON (converted by hand in apiserver/protobuf). */",
    "export const GO_JSON_MARSHALERS: readonly string[] = [",
    ...marshalers.map((m) => `  ${JSON.stringify(m)},`),
    "];",
    "",
    "/** Messages of Go named slice types (`type ExtraValue []string`): their JSON is the bare `items` list. */",
    "export const GO_NAMED_SLICES: readonly string[] = [",
    ...namedSlices.map((m) => `  ${JSON.stringify(m)},`),
    "];",
    "",
    "export const GO_FIELDS: Readonly<Record<string, Readonly<Record<string, readonly [goType: string, jsonTag: string]>>>> = {",
    ...fields,
    "};",
    "",
  ];
  writeFileSync(join(OUT, "gofields.ts"), ts.join("\n"));
  console.log(`kept ${keep.size} messages in ${byPkg.size} packages; ${marshalers.length} with MarshalJSON, ${namedSlices.length} named slices`);
}

main();
