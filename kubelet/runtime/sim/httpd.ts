// The file-serving half of busybox httpd (networking/httpd.c, without CGI, auth and config files),
// for a simulated `httpd -h DIR` whose DIR lies in one of the container's volume mounts: the files
// are the volume's host directory. GET and HEAD only (501 otherwise), the URL percent-decoded and
// canonicalised (a `..` above the root is 400), `DIR/` serves `DIR/index.html` (404 without one),
// `DIR` without its slash is a 302 to `DIR/`, the Content-type from busybox's suffix table, and
// busybox's HTML error pages.

import type http from "node:http";
import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { join, sep } from "node:path";

const REASONS: Record<number, [string, string | undefined]> = {
  200: ["OK", undefined],
  302: ["Found", undefined],
  400: ["Bad Request", "Unsupported method"],
  403: ["Forbidden", ""],
  404: ["Not Found", "The requested URL was not found"],
  501: ["Not Implemented", "The requested method is not recognized"],
};

/** busybox's built-in suffix table (first match; no Content-type when none matches). */
const MIME: [string[], string][] = [
  [[".txt", ".h", ".c", ".cc", ".cpp"], "text/plain"],
  [[".htm", ".html"], "text/html"],
  [[".jpg", ".jpeg"], "image/jpeg"],
  [[".gif"], "image/gif"],
  [[".png"], "image/png"],
  [[".svg"], "image/svg+xml"],
  [[".css"], "text/css"],
  [[".js"], "application/javascript"],
  [[".wav"], "audio/wav"],
  [[".avi"], "video/x-msvideo"],
  [[".qt", ".mov"], "video/quicktime"],
  [[".mpe", ".mpeg"], "video/mpeg"],
  [[".mid", ".midi"], "audio/midi"],
  [[".mp3"], "audio/mpeg"],
];

export function mimeType(path: string): string | undefined {
  const dot = path.lastIndexOf(".");
  if (dot < 0 || path.indexOf("/", dot) >= 0) return undefined;
  const suffix = path.slice(dot);
  for (const [suffixes, type] of MIME) if (suffixes.includes(suffix)) return type;
  return undefined;
}

/** The URL path as busybox canonicalises it (keeps a trailing slash); undefined = 400. */
export function canonicalPath(raw: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  if (!decoded.startsWith("/") || decoded.includes("\0")) return undefined;
  const parts: string[] = [];
  const segs = decoded.split("/");
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i];
    const last = i === segs.length - 1;
    if (s === "" || s === ".") {
      if (last) parts.push("");
      continue;
    }
    if (s === "..") {
      if (parts.length === 0 || (parts.length === 1 && parts[0] === "")) return undefined; // protect root
      parts.pop();
      if (last) parts.push("");
      continue;
    }
    parts.push(s);
  }
  return `/${parts.join("/")}`;
}

function sendError(res: http.ServerResponse, status: number, extra: Record<string, string> = {}): number {
  const [name, info] = REASONS[status];
  const body = info === undefined ? "" : `<HTML><HEAD><TITLE>${status} ${name}</TITLE></HEAD>\n<BODY><H1>${status} ${name}</H1>\n${info}\n</BODY></HTML>\n`;
  res.writeHead(status, name, { "content-type": "text/html", connection: "close", ...extra });
  res.end(body);
  return status;
}

/** Answers one request from the files under `root`; resolves to the status sent. */
export async function serveFile(root: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<number> {
  req.resume();
  const method = (req.method ?? "GET").toUpperCase();
  if (method !== "GET" && method !== "HEAD") return sendError(res, 501);
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const rawPath = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? undefined : url.slice(q + 1);
  const path = canonicalPath(rawPath);
  if (path === undefined) return sendError(res, 400);
  const wantIndex = path.endsWith("/");
  const rel = wantIndex ? `${path}index.html` : path;
  let file: string;
  let st;
  try {
    const realRoot = await realpath(root);
    file = await realpath(join(root, rel));
    if (file !== realRoot && !file.startsWith(realRoot + sep)) return sendError(res, 404); // a symlink out of the volume
    st = await stat(file);
  } catch {
    return sendError(res, 404);
  }
  if (st.isDirectory()) {
    if (!wantIndex) return sendError(res, 302, { location: `${path}/${query !== undefined ? `?${query}` : ""}` });
    return sendError(res, 404);
  }
  if (!st.isFile()) return sendError(res, 403);
  const mtime = Math.floor(st.mtimeMs / 1000);
  const headers: Record<string, string | number> = {
    connection: "close",
    "accept-ranges": "bytes",
    "last-modified": new Date(mtime * 1000).toUTCString(),
    etag: `"${mtime.toString(16)}-${st.size.toString(16)}"`,
    "content-length": st.size,
  };
  const type = mimeType(rel);
  if (type) headers["content-type"] = type;
  res.writeHead(200, "OK", headers);
  if (method === "HEAD") {
    res.end();
    return 200;
  }
  await new Promise<void>((resolve) => {
    const s = createReadStream(file);
    s.on("error", () => {
      res.destroy();
      resolve();
    });
    s.on("end", resolve);
    s.pipe(res);
  });
  return 200;
}
