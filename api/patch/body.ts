// Decoding PATCH request bodies by media type.

import { parseAllDocuments } from "yaml";
import { validateJsonPatch } from "./jsonpatch.ts";
import { assertDepth, isObject, typeName, MAX_DEPTH, PatchError } from "./util.ts";

export type PatchType = "json" | "merge" | "strategic" | "apply";

export interface ParsedPatch {
  patchType: PatchType;
  patch: unknown;
}

export const ACCEPTED_PATCH_TYPES =
  "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json";

const MEDIA: Readonly<Record<string, PatchType>> = {
  "application/json-patch+json": "json",
  "application/merge-patch+json": "merge",
  "application/strategic-merge-patch+json": "strategic",
  "application/apply-patch+yaml": "apply",
};

const NAMES: Readonly<Record<PatchType, string>> = {
  json: "JSON patch",
  merge: "JSON merge patch",
  strategic: "strategic merge patch",
  apply: "apply configuration",
};

/** Chooses the patch type from the Content-Type header and decodes the body. */
export function parsePatchBody(contentType: string, body: string | Buffer): ParsedPatch {
  const media = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  if (media === "application/apply-patch+cbor") {
    throw new PatchError(
      "UnsupportedMediaType",
      "the media type application/apply-patch+cbor is not supported: send the apply configuration as application/apply-patch+yaml",
    );
  }
  const patchType = MEDIA[media];
  if (!patchType) {
    throw new PatchError(
      "UnsupportedMediaType",
      `the body of the request was in an unknown format - accepted media types include: ${ACCEPTED_PATCH_TYPES}`,
    );
  }
  const text = typeof body === "string" ? body : body.toString("utf8");
  const what = NAMES[patchType];
  if (text.trim() === "") throw new PatchError("BadRequest", `the ${what} in the request body is empty`);
  checkBracketDepth(text, what);

  let patch: unknown;
  if (patchType === "apply") {
    patch = parseYaml(text, what);
  } else {
    try {
      patch = JSON.parse(text);
    } catch (e) {
      throw new PatchError("BadRequest", `the ${what} in the request body is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  assertDepth(patch, `the ${what}`);

  if (patchType === "json") validateJsonPatch(patch);
  if ((patchType === "strategic" || patchType === "apply") && !isObject(patch)) {
    throw new PatchError("BadRequest", `the ${what} must be a JSON object, got ${typeName(patch)}`);
  }
  return { patchType, patch };
}

function parseYaml(text: string, what: string): unknown {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{")) {
    // kubectl sends JSON; take the fast path and fall back to YAML only when it is not JSON.
    try {
      return JSON.parse(text);
    } catch {
      /* not JSON: parse as YAML below */
    }
  }
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  if (docs.length !== 1) {
    throw new PatchError("BadRequest", `the ${what} must be a single YAML document, got ${docs.length}`);
  }
  const doc = docs[0];
  if (doc === undefined) throw new PatchError("BadRequest", `the ${what} in the request body is empty`);
  const err = doc.errors[0];
  if (err) throw new PatchError("BadRequest", `the ${what} in the request body is not valid YAML: ${err.message}`);
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new PatchError("BadRequest", `the ${what} in the request body is not valid YAML: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Rejects bodies whose [ / { nesting exceeds MAX_DEPTH before any parser recurses into them.
 * Brackets inside double-quoted strings are skipped.
 */
function checkBracketDepth(text: string, what: string): void {
  let depth = 0;
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== "") {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = "";
      continue;
    }
    if (c === '"') quote = c;
    else if (c === "[" || c === "{") {
      if (++depth > MAX_DEPTH) {
        throw new PatchError("BadRequest", `the ${what} is nested deeper than the maximum of ${MAX_DEPTH} levels`);
      }
    } else if (c === "]" || c === "}") depth = Math.max(0, depth - 1);
  }
}
