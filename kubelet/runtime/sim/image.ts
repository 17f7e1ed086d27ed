// Simulated images: every image is "present" except names containing `notfound` or
// `does-not-exist`, which fail to pull as a missing image does in containerd (ErrImagePull).

import { createHash } from "node:crypto";

/** Docker's reference normalisation: "busybox" → "docker.io/library/busybox:latest". */
export function normalizeImageRef(name: string): string {
  const at = name.indexOf("@");
  let repo = at >= 0 ? name.slice(0, at) : name;
  const digest = at >= 0 ? name.slice(at) : "";
  let tag = "";
  const colon = repo.lastIndexOf(":");
  if (colon > repo.lastIndexOf("/")) {
    tag = repo.slice(colon);
    repo = repo.slice(0, colon);
  }
  const first = repo.split("/")[0];
  if (!repo.includes("/")) repo = `docker.io/library/${repo}`;
  else if (!(first.includes(".") || first.includes(":") || first === "localhost")) repo = `docker.io/${repo}`;
  if (!tag && !digest) tag = ":latest";
  return repo + tag + digest;
}

/** Whether the simulated registry has this image. */
export function imageExists(name: string): boolean {
  return !name.includes("notfound") && !name.includes("does-not-exist");
}

/** A stable image id ("sha256:…") and a plausible size for a present image. */
export function imageInfo(name: string): { id: string; size: number } {
  const digest = createHash("sha256").update(normalizeImageRef(name)).digest("hex");
  return { id: `sha256:${digest}`, size: 1_000_000 + (parseInt(digest.slice(0, 6), 16) % 50_000_000) };
}
