// Reading and decoding request bodies: size limit, JSON/YAML/protobuf, nesting-bomb guard.

import type { IncomingMessage } from "node:http";
import { parse as parseYaml } from "yaml";
import type { KubeObject } from "../api/index.ts";
import { errors } from "./errors.ts";
import { decodeProtobufObject, isProtobufContentType } from "./protobuf/index.ts";

/** The apiserver's request body limit (3 MiB, as upstream's MaxRequestBodyBytes). */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;
/** Deeper JSON than this is rejected before parsing (upstream's decoders stop at 10000; we are stricter). */
export const MAX_JSON_DEPTH = 100;

/**
 * Reads a request body of at most `limit` bytes. Past the limit it stops collecting and rejects
 * with 413; the rest of the body is left flowing (dropped), and the server closes the connection
 * after the answer (see guardUnreadBody in server.ts). The request is never destroyed here: that
 * would take the connection, and the answer with it.
 */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const tooLarge = () => errors.requestEntityTooLarge(`the request body is too large: limit is ${limit} bytes`);
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > limit) return Promise.reject(tooLarge());
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const socket = req.socket;
    const done = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("aborted", onAborted);
      socket?.off("close", onAborted);
    };
    const onData = (b: Buffer): void => {
      size += b.length;
      if (size > limit) {
        done();
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(b);
    };
    const onEnd = (): void => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = (e: Error): void => {
      done();
      reject(e);
    };
    const onAborted = (): void => onError(new Error("the client closed the connection before sending the whole request body"));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("aborted", onAborted);
    // Once a request has been answered (a 504 from --request-timeout) Node no longer aborts it
    // when its connection goes: the connection closing is the end of the body too.
    socket?.once("close", onAborted);
  });
}

/** True when the JSON text nests arrays/objects deeper than `max` (strings are skipped). */
export function jsonTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

/** Parses JSON text with the depth guard; errors are 400s naming the problem. */
export function parseJson(text: string): unknown {
  if (jsonTooDeep(text)) throw errors.badRequest(`the request body nests deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw errors.badRequest(`the request body is not valid JSON: ${(e as Error).message}`);
  }
}

/** The media type of a Content-Type header; a charset other than UTF-8 is refused (415). */
function mediaType(contentType: string | undefined): string {
  const [type, ...params] = (contentType ?? "").split(";").map((p) => p.trim().toLowerCase());
  for (const p of params) {
    if (p === "") continue;
    const [k, v] = p.split("=").map((x) => x.trim().replace(/^"|"$/g, ""));
    if (k === "charset" && v !== "utf-8" && v !== "utf8") {
      throw errors.unsupportedMediaType(`the body of the request was in an unknown charset: ${v}; only utf-8 is accepted`);
    }
  }
  if (type === "" && params.some((p) => p !== "")) throw errors.unsupportedMediaType(`malformed Content-Type "${contentType}"`);
  return type ?? "";
}

/**
 * Decodes a create/update body into an object. A missing Content-Type is JSON (kubectl's scale PUT
 * sends none). Protobuf bodies are decoded by the generated messages.
 */
export function decodeObjectBody(contentType: string | undefined, body: Buffer): KubeObject {
  const mt = mediaType(contentType);
  let value: unknown;
  if (mt === "" || mt === "application/json" || mt === "*/*") {
    value = parseJson(body.toString("utf8"));
  } else if (mt === "application/yaml") {
    const text = body.toString("utf8");
    if (jsonTooDeep(text)) throw errors.badRequest(`the request body nests deeper than ${MAX_JSON_DEPTH} levels`);
    try {
      value = parseYaml(text, { maxAliasCount: 100 });
    } catch (e) {
      throw errors.badRequest(`the request body is not valid YAML: ${(e as Error).message}`);
    }
  } else if (isProtobufContentType(mt)) {
    try {
      value = decodeProtobufObject(body);
    } catch (e) {
      throw errors.badRequest(`the request body is not a valid protobuf object: ${(e as Error).message}`);
    }
  } else {
    throw errors.unsupportedMediaType(
      `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw errors.badRequest("the request body must be a JSON object");
  }
  const obj = value as KubeObject;
  if (obj.metadata === undefined || obj.metadata === null) obj.metadata = {};
  if (typeof obj.metadata !== "object" || Array.isArray(obj.metadata)) throw errors.badRequest("metadata must be an object");
  for (const f of ["apiVersion", "kind"] as const) {
    if (obj[f] !== undefined && typeof obj[f] !== "string") throw errors.badRequest(`${f} must be a string`);
  }
  return obj;
}
