// The tiny shell's output redirections and `cat` over a host's files (the simulated runtime maps
// them onto volume mounts).

import { describe, expect, it } from "vitest";
import { parseScript, runScript, scriptFromArgv, type ShellFiles, type ShellHost } from "./shell.ts";

/** An in-memory file system with one writable directory, /data. */
function memFiles(): ShellFiles & { files: Map<string, string> } {
  const files = new Map<string, string>();
  return {
    files,
    write(path, data, append) {
      if (!path.startsWith("/data/")) return { error: "No such file or directory" };
      files.set(path, (append ? (files.get(path) ?? "") : "") + data);
      return {};
    },
    read(path) {
      if (path.startsWith("/proc/")) return undefined;
      const d = files.get(path);
      return d === undefined ? { error: "No such file or directory" } : { data: d };
    },
  };
}

function sh(src: string, fs = memFiles()): { out: string[]; status: number | "block"; fs: ReturnType<typeof memFiles> } {
  const script = scriptFromArgv(["sh", "-c", src]);
  if (!script) throw new Error(`unparsable: ${src}`);
  const out: string[] = [];
  let status: number | "block" = "block";
  const host: ShellHost = { stdout: (t) => out.push(t), stderr: (t) => out.push(`err: ${t}`), sleep: () => () => {}, unknown: () => "block", files: fs };
  runScript(script, host, (s) => (status = s));
  return { out, status, fs };
}

describe("tiny shell redirections", () => {
  it("parses > and >> with or without a space, and keeps the target out of argv", () => {
    expect(parseScript("echo hello > /data/f; echo more>>/data/f")?.commands).toEqual([
      { op: ";", argv: ["echo", "hello"], redirect: { path: "/data/f", append: false } },
      { op: ";", argv: ["echo", "more"], redirect: { path: "/data/f", append: true } },
    ]);
  });

  it.each(["echo >", "> /data/f", "echo 2> /data/f", "echo x >& 2", "cat < /data/f", "echo a > > b"])("%s stays beyond the tiny shell", (src) => {
    expect(parseScript(src)).toBeUndefined();
  });

  it("echo > truncates, >> appends, and cat prints the file", () => {
    const r = sh("echo one > /data/f; echo two >> /data/f; cat /data/f; echo new > /data/f; cat /data/f");
    expect(r.out).toEqual(["one\ntwo", "new"]);
    expect(r.status).toBe(0);
    expect(r.fs.files.get("/data/f")).toBe("new\n");
  });

  it("a write outside the host's files fails like sh, and the list goes on", () => {
    const r = sh("echo x > /etc/f || echo failed");
    expect(r.out).toEqual(["err: sh: can't create /etc/f: No such file or directory", "failed"]);
    expect(r.status).toBe(0);
  });

  it("cat of a missing file exits 1 with busybox's message", () => {
    const r = sh("cat /data/none");
    expect(r.out).toEqual(["err: cat: can't open '/data/none': No such file or directory"]);
    expect(r.status).toBe(1);
  });

  it("a bare `cat FILE` command line is a script too", () => {
    const fs = memFiles();
    fs.files.set("/data/f", "hello\n");
    const script = scriptFromArgv(["cat", "/data/f"])!;
    const out: string[] = [];
    let status = -1;
    runScript(script, { stdout: (t) => out.push(t), stderr: () => {}, sleep: () => () => {}, unknown: () => "block", files: fs }, (s) => (status = s));
    expect({ out, status }).toEqual({ out: ["hello"], status: 0 });
  });

  it("cat of a path the host does not simulate goes to the host", () => {
    const fs = memFiles();
    const out: string[] = [];
    const unknown: string[][] = [];
    runScript(parseScript("cat /proc/1/status")!, { stdout: (t) => out.push(t), stderr: () => {}, sleep: () => () => {}, unknown: (a) => (unknown.push(a), 0), files: fs }, () => {});
    expect(unknown).toEqual([["cat", "/proc/1/status"]]);
  });

  it("without host files cat goes to the host, and a redirection fails read-only", () => {
    const script = parseScript("echo x > /data/f; cat /data/f")!;
    const out: string[] = [];
    const unknown: string[][] = [];
    runScript(script, { stdout: (t) => out.push(t), stderr: (t) => out.push(`err: ${t}`), sleep: () => () => {}, unknown: (a) => (unknown.push(a), 0) }, () => {});
    expect(out).toEqual(["err: sh: can't create /data/f: Read-only file system"]);
    expect(unknown).toEqual([["cat", "/data/f"]]);
  });
});
