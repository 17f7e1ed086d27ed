// Command lines of the busybox applets the simulated runtime imitates beyond the tiny shell:
// `httpd` (networking/httpd.c) and `nc` in listen mode (networking/nc_bloaty.c, the netcat-1.10
// compatible nc of busybox's default config). This module only reads argv the way busybox's
// getopt32 does and says what the applet would do; sim.ts binds the sockets.

/** Where a server binds: `host` is "" for the wildcard address (busybox's `::`), else as written. */
export interface BindSpec {
  host: string;
  port: number;
}

export type Applet =
  /** Ends at once: `status`, with these lines on stdout / stderr. */
  | { kind: "exit"; status: number; stdout: string[]; stderr: string[] }
  | {
      kind: "httpd";
      /** `-f`: stays in the foreground; else it daemonizes once bound and the command returns 0. */
      foreground: boolean;
      /** `-v` count: 1 logs `ADDR:PORT: response:N`, 2 also `url:PATH`. */
      verbose: number;
      bind: BindSpec;
      /** `-h DIR` (undefined: the current directory). */
      home?: string;
    }
  | {
      kind: "nc-listen";
      bind: BindSpec;
      /** `-lk` / `-ll` with `-e`: fork a PROG per connection and keep accepting. */
      persistent: boolean;
      /** `-e PROG ARGS...`: run with the connection as stdin and stdout. */
      prog?: string[];
      verbose: number;
      /** `-w SEC`: give up (exit 1, "timeout") when no connection arrives in time. */
      waitSec: number;
    }
  /** A use the simulator does not imitate (nc connecting out, UDP, inetd config...): runs until stopped. */
  | { kind: "opaque" };

const HTTPD_USAGE = [
  "BusyBox v1.36.1 (simulated) multi-call binary.",
  "",
  "Usage: httpd [-ifv[v]] [-c CONFFILE] [-p [IP:]PORT] [-u USER[:GRP]] [-r REALM] [-h HOME]",
  "or httpd -d/-e/-m STRING",
];
const NC_USAGE = [
  "BusyBox v1.36.1 (simulated) multi-call binary.",
  "",
  "Usage: nc [OPTIONS] HOST PORT  - connect",
  "nc [OPTIONS] -l -p PORT [HOST] [PORT]  - listen",
];

function fail(applet: string, message: string, usage?: string[]): Applet {
  return { kind: "exit", status: 1, stdout: [], stderr: [`${applet}: ${message}`, ...(usage ?? [])] };
}

interface Parsed {
  flags: Map<string, number>;
  values: Map<string, string>;
  operands: string[];
}

/**
 * getopt as busybox uses it: clustered flags (`-fv`), an option's value attached (`-p8080`) or
 * next (`-p 8080`), options and operands in any order (GNU permutation), `--` ends options.
 * A string naming the error, as getopt prints it, when an option is unknown or lacks its value.
 */
function getopt(args: string[], withValue: string, flagsOnly: string): Parsed | string {
  const flags = new Map<string, number>();
  const values = new Map<string, string>();
  const operands: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      operands.push(a);
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const ch = a[j];
      if (withValue.includes(ch)) {
        let v = a.slice(j + 1);
        if (v === "") {
          if (i + 1 >= args.length) return `option requires an argument -- '${ch}'`;
          v = args[++i];
        }
        values.set(ch, v);
        flags.set(ch, (flags.get(ch) ?? 0) + 1);
        break;
      }
      if (!flagsOnly.includes(ch)) return `invalid option -- '${ch}'`;
      flags.set(ch, (flags.get(ch) ?? 0) + 1);
    }
  }
  return { flags, values, operands };
}

/** `-p` of httpd: `PORT`, `ADDR:PORT`, `[V6]:PORT` or `ADDR` (port 80). */
function httpdBind(spec: string | undefined): BindSpec | string {
  if (spec === undefined) return { host: "", port: 80 };
  if (/^\d+$/.test(spec)) {
    const n = Number(spec);
    if (n >= 1 && n <= 65535) return { host: "", port: n };
  }
  let host = spec;
  let port = 80;
  const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(spec);
  let portText: string | undefined;
  if (v6) {
    host = v6[1];
    portText = v6[2];
  } else {
    const colon = spec.lastIndexOf(":");
    if (colon >= 0 && spec.indexOf(":") === colon) {
      host = spec.slice(0, colon);
      portText = spec.slice(colon + 1);
    }
  }
  if (portText !== undefined) {
    if (!/^\d+$/.test(portText) || Number(portText) > 65535) return `bad port spec '${spec}'`;
    port = Number(portText);
  }
  return { host, port };
}

/** busybox httpd's argv (without the program name). */
export function parseHttpd(args: string[]): Applet {
  const p = getopt(args, "cdhermup", "ifv");
  if (typeof p === "string") return fail("httpd", p, HTTPD_USAGE);
  if (p.operands.length > 0) return { kind: "exit", status: 1, stdout: [], stderr: HTTPD_USAGE };
  const d = p.values.get("d");
  if (d !== undefined) return { kind: "exit", status: 0, stdout: [percentDecode(d)], stderr: [] };
  const e = p.values.get("e");
  if (e !== undefined) return { kind: "exit", status: 0, stdout: [encodeHTML(e)], stderr: [] };
  if (p.values.has("m")) return { kind: "opaque" };
  // -i: one request on stdin, which a container has at EOF: busybox exits 0 without a word.
  if (p.flags.has("i")) return { kind: "exit", status: 0, stdout: [], stderr: [] };
  const bind = httpdBind(p.values.get("p"));
  if (typeof bind === "string") return fail("httpd", bind);
  return { kind: "httpd", foreground: p.flags.has("f"), verbose: p.flags.get("v") ?? 0, bind, home: p.values.get("h") };
}

/** busybox nc's argv (without the program name); only listening is imitated. */
export function parseNc(argv: string[]): Applet {
  // As nc_main: everything after `-e` (or `-lke`, `-ve`...) is the program, "must be last".
  let args = argv;
  let prog: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-e") {
      args = argv.slice(0, i);
      prog = argv.slice(i + 1);
      break;
    }
    const m = /^-([nuvlkz]*)e$/.exec(a);
    if (m) {
      args = [...argv.slice(0, i), ...(m[1] ? [`-${m[1]}`] : [])];
      prog = argv.slice(i + 1);
      break;
    }
  }
  const p = getopt(args, "psw", "nubvlkioz");
  if (typeof p === "string") return fail("nc", p, NC_USAGE);
  if (p.operands.length > 2) return { kind: "exit", status: 1, stdout: [], stderr: NC_USAGE };
  const listens = (p.flags.get("l") ?? 0) + (p.flags.has("k") ? 2 : 0);
  if (listens === 0 || p.flags.has("u")) return { kind: "opaque" };
  if (prog !== undefined && prog.length === 0) return { kind: "exit", status: 1, stdout: [], stderr: NC_USAGE };
  let port = 0;
  const portText = p.values.get("p");
  if (portText !== undefined) {
    if (!/^\d+$/.test(portText) || Number(portText) > 65535) return fail("nc", `bad port '${portText}'`);
    port = Number(portText);
  }
  let waitSec = 0;
  const w = p.values.get("w");
  if (w !== undefined) {
    if (!/^\d+$/.test(w)) return fail("nc", `invalid number '${w}'`);
    waitSec = Number(w);
  }
  return {
    kind: "nc-listen",
    bind: { host: p.values.get("s") ?? "", port },
    persistent: listens >= 2 && prog !== undefined,
    prog,
    verbose: p.flags.get("v") ?? 0,
    waitSec,
  };
}

/** The applet an argv names (`httpd`, `/bin/nc`, `busybox httpd`...), undefined for anything else. */
export function parseApplet(argv: string[]): Applet | undefined {
  if (argv.length === 0) return undefined;
  const prog = argv[0].slice(argv[0].lastIndexOf("/") + 1);
  if (prog === "busybox") return parseApplet(argv.slice(1));
  if (prog === "httpd") return parseHttpd(argv.slice(1));
  if (prog === "nc" || prog === "netcat") return parseNc(argv.slice(1));
  return undefined;
}

/** Ports that applets in these command lines bind on every address (the pod IP): a declared echo stands aside for them. */
export function wildcardPorts(commands: string[][]): Set<number> {
  const out = new Set<number>();
  for (let argv of commands) {
    while (argv[0] === "exec") argv = argv.slice(1);
    const a = parseApplet(argv);
    if ((a?.kind === "httpd" || a?.kind === "nc-listen") && a.bind.port > 0 && (a.bind.host === "" || a.bind.host === "0.0.0.0" || a.bind.host === "::")) {
      out.add(a.bind.port);
    }
  }
  return out;
}

/** `httpd -d`: %XX and `+` decoded (not strict, as for -d). */
function percentDecode(s: string): string {
  return s.replace(/\+/g, " ").replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** `httpd -e`: every character but letters and digits as `&#N;`. */
function encodeHTML(s: string): string {
  let out = "";
  for (const ch of s) out += /[A-Za-z0-9]/.test(ch) ? ch : `&#${ch.codePointAt(0)};`;
  return out;
}
