// The tiny shell the simulated runtime interprets so that one-shot containers behave:
// `sh -c 'echo hi; sleep 2; exit 3'` writes "hi", runs 2 s and exits 3. It knows and-or lists
// (`;`, newlines, `&&`, `||`), quoting, comments, `set -e` via `sh -ec`, and the commands `echo`,
// `sleep`, `true`, `false`, `:`, `exit`, `exec`, `cat FILE` and `busybox APPLET`, and output
// redirections `> FILE` / `>> FILE` (files the host maps, e.g. onto volume mounts). Any other command goes to the
// host, which may imitate it (the runtime's busybox `httpd` and `nc -l`: a pending command that
// ends, or never does, through a callback) or not: a container blocks on it until stopped (a
// `while` loop, an nginx), an exec treats it as succeeding. Syntax it cannot read (pipes, input and fd redirections, `$`, subshells) makes the
// whole script opaque. Time only passes in `sleep`, through the caller's timer, one at a time.

export type ListOp = ";" | "&&" | "||";

export interface ShellCommand {
  /** How this command joins the previous one (the first is ";"). */
  op: ListOp;
  argv: string[];
  /** `> path` (truncate) or `>> path` (append): the command's stdout goes to the file. The last one wins. */
  redirect?: { path: string; append: boolean };
}

export interface Script {
  commands: ShellCommand[];
  /** `sh -e`: exit at the first failing command that ends an and-or list. */
  errexit: boolean;
}

/** Parses a script; undefined when it uses syntax beyond the tiny shell. */
export function parseScript(src: string, errexit = false): Script | undefined {
  const commands: ShellCommand[] = [];
  let argv: string[] = [];
  let word: string | undefined;
  let op: ListOp = ";";
  /** An `&&`/`||` needs a command after it (a newline may come first). */
  let needCommand = false;
  /** After `>`/`>>`: the next word is the target, not an argument. */
  let pendingRedirect: { append: boolean } | undefined;
  let redirect: { path: string; append: boolean } | undefined;
  const endWord = (): void => {
    if (word !== undefined) {
      if (pendingRedirect) {
        redirect = { path: word, append: pendingRedirect.append };
        pendingRedirect = undefined;
      } else argv.push(word);
    }
    word = undefined;
  };
  const endCommand = (next: ListOp): boolean => {
    endWord();
    if (pendingRedirect) return false; // `echo >` with no target
    if (argv.length === 0) {
      if (needCommand || next !== ";" || redirect) return false; // `&& ;`, `; &&`, leading `&&`, a bare `> f`
    } else {
      commands.push({ op, argv, ...(redirect ? { redirect } : {}) });
      redirect = undefined;
      argv = [];
      op = ";";
      needCommand = false;
    }
    if (next !== ";") {
      op = next;
      needCommand = true;
    }
    return true;
  };
  let i = 0;
  while (i < src.length) {
    const ch = src[i];
    if (ch === " " || ch === "\t") {
      endWord();
      i++;
    } else if (ch === "\n" || ch === ";") {
      if (ch === ";" && src[i + 1] === ";") return undefined; // `;;` belongs to case
      if (ch === "\n" && needCommand && argv.length === 0 && word === undefined) {
        i++;
        continue; // `a &&\n b`
      }
      if (!endCommand(";")) return undefined;
      i++;
    } else if (ch === "&" || ch === "|") {
      if (src[i + 1] !== ch) return undefined; // background or pipe
      if (!endCommand(ch === "&" ? "&&" : "||")) return undefined;
      if (argv.length === 0 && commands.length === 0) return undefined;
      i += 2;
    } else if (ch === "#" && word === undefined) {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (ch === "'") {
      const end = src.indexOf("'", i + 1);
      if (end < 0) return undefined;
      word = (word ?? "") + src.slice(i + 1, end);
      i = end + 1;
    } else if (ch === '"') {
      let w = "";
      i++;
      for (;;) {
        if (i >= src.length) return undefined;
        const c = src[i];
        if (c === '"') break;
        if (c === "$" || c === "`") return undefined;
        if (c === "\\" && i + 1 < src.length && '"\\$`\n'.includes(src[i + 1])) {
          if (src[i + 1] !== "\n") w += src[i + 1];
          i += 2;
          continue;
        }
        w += c;
        i++;
      }
      word = (word ?? "") + w;
      i++;
    } else if (ch === "\\") {
      if (i + 1 >= src.length) return undefined;
      if (src[i + 1] !== "\n") word = (word ?? "") + src[i + 1];
      i += 2;
    } else if (ch === ">") {
      // `2>`/`1>` (fd redirections) and `>&` stay beyond the tiny shell.
      if (word !== undefined && /^\d+$/.test(word)) return undefined;
      if (pendingRedirect) return undefined;
      endWord();
      const append = src[i + 1] === ">";
      i += append ? 2 : 1;
      if (src[i] === "&" || src[i] === "|" || src[i] === ">") return undefined;
      pendingRedirect = { append };
    } else if ("<()`$".includes(ch)) {
      return undefined;
    } else {
      word = (word ?? "") + ch;
      i++;
    }
  }
  endWord();
  if (pendingRedirect) return undefined;
  if (argv.length > 0) commands.push({ op, argv, ...(redirect ? { redirect } : {}) });
  else if (needCommand || redirect) return undefined;
  return { commands, errexit };
}

const SHELLS = new Set(["sh", "bash", "ash", "dash", "zsh"]);
const BUILTIN = new Set(["echo", "sleep", "true", "false", "cat"]);
/** busybox applets the runtime imitates (sim/busybox.ts): a bare command line of theirs is a script too. */
const APPLETS = new Set(["httpd", "nc", "netcat", "busybox"]);

function basename(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/**
 * The script a container's command line (CRI command + args) runs, when the tiny shell can run it:
 * `sh -c SCRIPT` (also `/bin/sh`, `bash`, `-ec`), or a bare `echo`/`sleep`/`true`/`false`, or a
 * busybox `httpd`/`nc` (which the host runs).
 * undefined: an opaque process that runs until stopped.
 */
export function scriptFromArgv(argv: string[]): Script | undefined {
  if (argv.length === 0) return undefined;
  const prog = basename(argv[0]);
  if (SHELLS.has(prog)) {
    let errexit = false;
    let i = 1;
    // Flags before the script: `-c`, `-ec`, `-e -c`, `-xc`...
    let sawC = false;
    while (i < argv.length && /^-[a-z]+$/.test(argv[i])) {
      if (argv[i].includes("e")) errexit = true;
      if (argv[i].includes("c")) sawC = true;
      i++;
    }
    if (!sawC || i >= argv.length) return undefined;
    return parseScript(argv[i], errexit);
  }
  if (BUILTIN.has(prog) || APPLETS.has(prog)) return { commands: [{ op: ";", argv: [prog, ...argv.slice(1)] }], errexit: false };
  return undefined;
}

/** What the interpreter needs from its host (a container's main process, or an exec). */
export interface ShellHost {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Calls `done` after `ms` (Infinity: never); returns the cancel function. */
  sleep(ms: number, done: () => void): () => void;
  /**
   * A command the tiny shell does not know: "block" (runs until stopped), its exit status, or a
   * pending command that reports its status later (or never).
   */
  unknown(argv: string[]): "block" | number | PendingCommand;
  /** Files the script may write (`>`, `>>`) and read (`cat`); absent: redirections fail and `cat` goes to `unknown`. */
  files?: ShellFiles;
}

/**
 * A container's view of files by path (absolute, or relative to its working directory). Errors are
 * errno texts ("No such file or directory"). `read` returns undefined for a path the host does not
 * simulate: `cat` of it then goes to `unknown` (an exec probe `cat /tmp/healthy` keeps succeeding).
 */
export interface ShellFiles {
  write(path: string, data: string, append: boolean): { error?: string };
  read(path: string): { data?: string; error?: string } | undefined;
}

/** A command the host runs asynchronously: `start` calls `done` once with its status, or never (it blocks); returns a cancel function. */
export interface PendingCommand {
  start(done: (status: number) => void): () => void;
}

/** A running script; `cancel` stops it without calling `onExit`. */
export interface ScriptRun {
  cancel(): void;
}

const SLEEP_UNIT: Record<string, number> = { "": 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** busybox/coreutils `sleep` operands (summed): "5", "1.5", "2m", "infinity". undefined when invalid. */
export function sleepDurationMs(args: string[]): number | undefined {
  if (args.length === 0) return undefined;
  let total = 0;
  for (const a of args) {
    if (a === "inf" || a === "infinity") return Infinity;
    const m = /^(\d+(?:\.\d*)?|\.\d+)([smhd]?)$/.exec(a);
    if (!m) return undefined;
    total += Number(m[1]) * SLEEP_UNIT[m[2]];
  }
  return Math.round(total);
}

/**
 * Runs `script` against `host`; `onExit(status)` is called once when it finishes (synchronously
 * when no `sleep` intervenes). Never calls `onExit` when a command blocks.
 */
export function runScript(script: Script, host: ShellHost, onExit: (status: number) => void): ScriptRun {
  const cmds = script.commands;
  let i = 0;
  let status = 0;
  let cancelled = false;
  let cancelSleep: (() => void) | undefined;
  let cancelPending: (() => void) | undefined;

  /** Runs one command; returns its status, "block", or a pending sleep. */
  const exec = (argv: string[], out: ShellHost = host): number | "block" | PendingCommand | { sleepMs: number } | { exit: number } => {
    const [name, ...args] = argv;
    switch (basename(name)) {
      case "busybox":
        if (args.length > 0 && args[0] !== "sh") return exec(args, out);
        return host.unknown(argv);
      case "cat": {
        // `cat` of stdin (no operands, `-`) is the host's: the tiny shell has no stdin.
        if (!host.files || args.length === 0 || args.some((a) => a === "-" || a.startsWith("-"))) return host.unknown(argv);
        const reads = args.map((a) => host.files!.read(a));
        if (reads.some((r) => r === undefined)) return host.unknown(argv);
        let st = 0;
        for (const [k, a] of args.entries()) {
          const r = reads[k]!;
          if (r.error !== undefined) {
            out.stderr(`cat: can't open '${a}': ${r.error}`);
            st = 1;
          } else if (r.data) out.stdout(r.data.endsWith("\n") ? r.data.slice(0, -1) : r.data);
        }
        return st;
      }
      case "exec":
        if (args.length === 0) return 0;
        return { exit: -1 }; // handled by the caller: run args, then exit
      case "echo": {
        let words = args;
        while (words.length > 0 && /^-[neE]+$/.test(words[0])) words = words.slice(1);
        out.stdout(words.join(" "));
        return 0;
      }
      case "true":
      case ":":
        return 0;
      case "false":
        return 1;
      case "exit": {
        if (args.length === 0) return { exit: status };
        if (!/^\d+$/.test(args[0])) {
          host.stderr(`sh: exit: Illegal number: ${args[0]}`);
          return { exit: 2 };
        }
        return { exit: Number(args[0]) & 255 };
      }
      case "sleep": {
        const ms = sleepDurationMs(args);
        if (ms === undefined) {
          host.stderr(args.length === 0 ? "sleep: missing operand" : `sleep: invalid number '${args.find((a) => sleepDurationMs([a]) === undefined) ?? args[0]}'`);
          return 1;
        }
        return { sleepMs: ms };
      }
      default:
        return host.unknown(argv);
    }
  };

  /** Set by `exec CMD`: the script ends with CMD's status. */
  let execThenExit = false;
  const finish = (code: number): void => {
    i = cmds.length;
    if (!cancelled) onExit(code);
  };
  /** Records a finished command's status; false when the script ends here (exec, `sh -e`). */
  const advance = (s: number): boolean => {
    status = s;
    if (execThenExit) {
      finish(s);
      return false;
    }
    const nextOp = cmds[i + 1]?.op ?? ";";
    i++;
    if (script.errexit && s !== 0 && nextOp === ";") {
      finish(s);
      return false;
    }
    return true;
  };
  const loop = (): void => {
    while (!cancelled && i < cmds.length) {
      const c = cmds[i];
      if ((c.op === "&&" && status !== 0) || (c.op === "||" && status === 0)) {
        i++; // skipped: the list keeps the previous status
        continue;
      }
      let out: ShellHost = host;
      if (c.redirect) {
        // The shell opens (creates or truncates) the file before the command runs.
        const { path, append } = c.redirect;
        const files = host.files;
        const opened = files ? files.write(path, "", append) : { error: "Read-only file system" };
        if (opened.error !== undefined) {
          host.stderr(`sh: can't create ${path}: ${opened.error}`);
          if (!advance(1)) return;
          continue;
        }
        out = { ...host, stdout: (t) => void files!.write(path, `${t}\n`, true) };
      }
      let r = exec(c.argv, out);
      if (typeof r === "object" && "exit" in r && r.exit === -1) {
        execThenExit = true;
        r = exec(c.argv.slice(1), out);
      }
      if (r === "block") return;
      if (typeof r === "number") {
        if (!advance(r)) return;
        continue;
      }
      if ("start" in r) {
        let sync: number | undefined;
        let started = false;
        cancelPending = r.start((s) => {
          cancelPending = undefined;
          if (cancelled) return;
          if (!started) {
            sync = s; // reported before start returned: continue the loop here, not recursively
            return;
          }
          if (advance(s)) loop();
        });
        started = true;
        if (sync === undefined) return;
        cancelPending = undefined;
        if (!advance(sync)) return;
        continue;
      }
      if ("exit" in r) return finish(r.exit);
      if (r.sleepMs === Infinity) return;
      cancelSleep = host.sleep(r.sleepMs, () => {
        cancelSleep = undefined;
        if (!cancelled && advance(0)) loop();
      });
      return;
    }
    if (!cancelled && i >= cmds.length) finish(status);
  };
  loop();
  return {
    cancel() {
      cancelled = true;
      cancelSleep?.();
      cancelSleep = undefined;
      cancelPending?.();
      cancelPending = undefined;
    },
  };
}
