// Content negotiation: which representation the client accepts (JSON, YAML, Table), as the apiserver's negotiation package.

import { errors } from "./errors.ts";

export interface Negotiated {
  /** The response media type. */
  mediaType: "application/json" | "application/yaml";
  /** The client asked for meta.k8s.io Table (kubectl get). */
  table: boolean;
  /** The client asked for meta.k8s.io PartialObjectMetadata(List). */
  partialMetadata: boolean;
}

interface AcceptEntry {
  type: string;
  params: Record<string, string>;
}

function parseAccept(accept: string): AcceptEntry[] {
  return accept
    .split(",")
    .map((part) => {
      const [type, ...params] = part.split(";").map((s) => s.trim());
      const p: Record<string, string> = {};
      for (const kv of params) {
        const i = kv.indexOf("=");
        if (i > 0) p[kv.slice(0, i).trim().toLowerCase()] = kv.slice(i + 1).trim();
      }
      return { type: type.toLowerCase(), params: p };
    })
    .filter((e) => e.type.length > 0);
}

/** Picks the first representation we can produce; none → 406 NotAcceptable. */
export function negotiate(accept: string | undefined): Negotiated {
  if (!accept || accept.trim() === "") return { mediaType: "application/json", table: false, partialMetadata: false };
  for (const e of parseAccept(accept)) {
    const json = e.type === "application/json" || e.type === "*/*" || e.type === "application/*";
    const yaml = e.type === "application/yaml";
    if (!json && !yaml) continue;
    const as = e.params["as"];
    if (as) {
      if (e.params["g"] !== "meta.k8s.io") continue;
      if (as === "Table" && (e.params["v"] === "v1" || e.params["v"] === "v1beta1")) {
        return { mediaType: "application/json", table: true, partialMetadata: false };
      }
      if ((as === "PartialObjectMetadata" || as === "PartialObjectMetadataList") && (e.params["v"] === "v1" || e.params["v"] === "v1beta1")) {
        return { mediaType: "application/json", table: false, partialMetadata: true };
      }
      continue;
    }
    return { mediaType: yaml ? "application/yaml" : "application/json", table: false, partialMetadata: false };
  }
  throw errors.notAcceptable(
    `only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io`,
  );
}
