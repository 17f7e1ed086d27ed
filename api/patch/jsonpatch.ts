// RFC 6902 JSON patch, applied with fast-json-patch after our own validation of the operations.

import jsonpatch from "fast-json-patch";
import type { Operation } from "fast-json-patch";
import { assertDepth, deepClone, describe, hasOwn, isObject, typeName, PatchError } from "./util.ts";

const OPS = new Set(["add", "remove", "replace", "move", "copy", "test"]);

/** Throws BadRequest unless `ops` is a well-formed RFC 6902 operation array; returns it typed. */
export function validateJsonPatch(ops: unknown): Operation[] {
  if (!Array.isArray(ops)) {
    throw new PatchError("BadRequest", `invalid JSON patch: expected an array of operations, got ${typeName(ops)}`);
  }
  assertDepth(ops, "the JSON patch");
  ops.forEach((op: unknown, i: number) => {
    const where = `invalid JSON patch: operation ${i}`;
    if (!isObject(op)) throw new PatchError("BadRequest", `${where}: expected an object, got ${typeName(op)}`);
    const name = op["op"];
    if (typeof name !== "string") throw new PatchError("BadRequest", `${where}: missing "op"`);
    if (!OPS.has(name)) {
      throw new PatchError("BadRequest", `${where}: unknown op ${describe(name)} (expected add, remove, replace, move, copy or test)`);
    }
    checkPointer(op["path"], `${where} (${name}): "path"`);
    if (name === "move" || name === "copy") checkPointer(op["from"], `${where} (${name}): "from"`);
    if ((name === "add" || name === "replace" || name === "test") && !hasOwn(op, "value")) {
      throw new PatchError("BadRequest", `${where} (${name}): missing "value"`);
    }
    if (name === "move" && typeof op["from"] === "string" && typeof op["path"] === "string") {
      const from = op["from"];
      const path = op["path"];
      if (path.startsWith(from + "/")) {
        throw new PatchError("BadRequest", `${where} (move): cannot move "${from}" into its own child "${path}"`);
      }
    }
  });
  return ops as Operation[];
}

function checkPointer(p: unknown, what: string): void {
  if (typeof p !== "string") throw new PatchError("BadRequest", `${what} is missing or not a string`);
  if (p !== "" && !p.startsWith("/")) {
    throw new PatchError("BadRequest", `${what} ${describe(p)} is not a JSON pointer (it must be empty or start with "/")`);
  }
  if (/~[^01]|~$/.test(p)) {
    throw new PatchError("BadRequest", `${what} ${describe(p)} has an invalid "~" escape (only ~0 and ~1 are allowed)`);
  }
  for (const seg of p.split("/").slice(1)) {
    const key = seg.replace(/~1/g, "/").replace(/~0/g, "~");
    if (key === "__proto__" || key === "constructor" || key === "prototype") {
      throw new PatchError("BadRequest", `${what} ${describe(p)} uses the reserved segment "${key}"`);
    }
  }
}

/**
 * Applies an RFC 6902 JSON patch. Malformed operations → BadRequest; operations that cannot be
 * applied (missing path, failed test) → Invalid (kube-apiserver answers 422 for those). Pure.
 */
export function applyJsonPatch(target: unknown, ops: unknown): unknown {
  const valid = validateJsonPatch(ops);
  assertDepth(target, "the target object");
  const doc = deepClone(target);
  const seq = deepClone(valid);
  try {
    return jsonpatch.applyPatch(doc, seq, true, true, true).newDocument;
  } catch (e) {
    if (isLibraryError(e)) throw translate(e, valid);
    if (e instanceof Error) throw new PatchError("BadRequest", `invalid JSON patch: ${e.message}`);
    throw e;
  }
}

interface LibraryError {
  name: string;
  message: string;
  index?: number;
}

// fast-json-patch's JsonPatchError (duck-typed: the CJS and ESM builds each have their own class).
function isLibraryError(e: unknown): e is LibraryError {
  return e instanceof Error && /^(SEQUENCE|OPERATION|TEST)_[A-Z_]+$/.test(e.name);
}

function translate(e: LibraryError, ops: Operation[]): PatchError {
  const i = typeof e.index === "number" ? e.index : -1;
  const op = i >= 0 ? ops[i] : undefined;
  const where = op ? `operation ${i} (${op.op})` : "operation";
  const path = op ? `"${op.path}"` : "path";
  switch (e.name) {
    case "TEST_OPERATION_FAILED": {
      const expected = op && "value" in op ? describe(op.value) : "the given value";
      return new PatchError("Invalid", `JSON patch ${where} failed: the value at ${path} is not ${expected}`);
    }
    case "OPERATION_PATH_UNRESOLVABLE":
      return new PatchError("Invalid", `invalid JSON patch: ${where}: path ${path} does not exist`);
    case "OPERATION_FROM_UNRESOLVABLE": {
      const from = op && "from" in op ? `"${op.from}"` : "from";
      return new PatchError("Invalid", `invalid JSON patch: ${where}: from ${from} does not exist`);
    }
    case "OPERATION_PATH_CANNOT_ADD":
      return new PatchError("Invalid", `invalid JSON patch: ${where}: cannot add at ${path}: its parent does not exist`);
    case "OPERATION_PATH_ILLEGAL_ARRAY_INDEX":
      return new PatchError("Invalid", `invalid JSON patch: ${where}: path ${path} has an array index that is not an unsigned integer`);
    case "OPERATION_VALUE_OUT_OF_BOUNDS":
      return new PatchError("Invalid", `invalid JSON patch: ${where}: array index in path ${path} is out of bounds`);
    default:
      return new PatchError("BadRequest", `invalid JSON patch: ${where}: ${e.message}`);
  }
}
