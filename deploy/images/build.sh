#!/usr/bin/env bash
# Builds kubelab's two local container images as OCI image layout tarballs (no registry needed):
#   OUTDIR/pause.tar    localhost/pause:latest    the pod sandbox image
#   OUTDIR/busybox.tar  localhost/busybox:latest  busybox-static + one symlink per applet, /etc/passwd, /etc/group
# Import with: ctr -a SOCK -n k8s.io images import OUTDIR/pause.tar
# Usage: deploy/images/build.sh OUTDIR
# Needs: busybox (busybox-static, statically linked), tar, sha256sum. gcc + static libc (libc6-dev) are
# optional: with them pause is the static C program in pause.c; without them (or with
# KUBELAB_PAUSE_NO_GCC=1) pause is busybox running a shell loop that traps TERM/INT and exits 0.
# Layers are reproducible: sorted names, owner 0, mtime 0 (same inputs give the same digests).
set -euo pipefail

out="${1:?usage: build.sh OUTDIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  armv7l) arch=arm ;;
  *) arch="$(uname -m)" ;;
esac

busybox="$(command -v busybox || true)"
[[ -n "$busybox" ]] || { echo "busybox not found (apt-get install busybox-static)" >&2; exit 1; }
busybox="$(readlink -f "$busybox")"
if ldd "$busybox" >/dev/null 2>&1; then
  echo "$busybox is dynamically linked; install busybox-static" >&2
  exit 1
fi

tarflags=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu)

sha() { sha256sum "$1" | cut -d' ' -f1; }
# json_array a b c -> ["a","b","c"] (arguments must not contain quotes or backslashes)
json_array() {
  local first=1 s="["
  for a in "$@"; do
    [[ $first == 1 ]] || s+=","
    first=0
    s+="\"$a\""
  done
  printf '%s]' "$s"
}

# make_image NAME ROOTFS_DIR CONFIG_JSON_FRAGMENT -> OUTDIR/NAME.tar
# CONFIG_JSON_FRAGMENT is the body of the image config's "config" object.
make_image() {
  local name="$1" rootfs="$2" config="$3"
  local img="$work/img-$name"
  rm -rf "$img"
  mkdir -p "$img/blobs/sha256"

  tar -C "$rootfs" "${tarflags[@]}" -cf "$img/layer.tar" .
  local layer_digest layer_size
  layer_digest="$(sha "$img/layer.tar")"
  layer_size="$(stat -c %s "$img/layer.tar")"
  mv "$img/layer.tar" "$img/blobs/sha256/$layer_digest"

  printf '{"architecture":"%s","os":"linux","config":{%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"kubelab deploy/images/build.sh"}]}' \
    "$arch" "$config" "$layer_digest" >"$img/config.json"
  local config_digest config_size
  config_digest="$(sha "$img/config.json")"
  config_size="$(stat -c %s "$img/config.json")"
  mv "$img/config.json" "$img/blobs/sha256/$config_digest"

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$img/manifest.json"
  local manifest_digest manifest_size
  manifest_digest="$(sha "$img/manifest.json")"
  manifest_size="$(stat -c %s "$img/manifest.json")"
  mv "$img/manifest.json" "$img/blobs/sha256/$manifest_digest"

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"localhost/%s:latest","org.opencontainers.image.ref.name":"latest"}}]}' \
    "$manifest_digest" "$manifest_size" "$arch" "$name" >"$img/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$img/oci-layout"

  tar -C "$img" "${tarflags[@]}" -cf "$out/$name.tar.tmp" oci-layout index.json blobs
  mv "$out/$name.tar.tmp" "$out/$name.tar"
  echo "built localhost/$name:latest -> $out/$name.tar (manifest sha256:$manifest_digest)"
}

# /etc/passwd and /etc/group shared by both images.
write_etc() {
  local root="$1"
  mkdir -p "$root/etc"
  cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
  cat >"$root/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
nogroup:x:65534:
GROUP
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
}

# ---- busybox ----
bb="$work/rootfs-busybox"
mkdir -p "$bb/bin" "$bb/sbin" "$bb/usr/bin" "$bb/usr/sbin" "$bb/root" "$bb/tmp" "$bb/proc" "$bb/sys" "$bb/dev" "$bb/var/www"
chmod 1777 "$bb/tmp"
chmod 0700 "$bb/root"
cp "$busybox" "$bb/bin/busybox"
chmod 0755 "$bb/bin/busybox"
# One symlink per applet, all in /bin (PATH covers it), pointing at /bin/busybox.
while IFS= read -r applet; do
  [[ -n "$applet" && "$applet" != busybox ]] || continue
  ln -sf busybox "$bb/bin/$applet"
done < <("$busybox" --list)
write_etc "$bb"
make_image busybox "$bb" \
  '"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]'

# ---- pause ----
pa="$work/rootfs-pause"
mkdir -p "$pa"
if [[ "${KUBELAB_PAUSE_NO_GCC:-}" != 1 ]] && command -v gcc >/dev/null &&
  gcc -static -Os -Wall -o "$work/pause" "$here/pause.c" 2>"$work/gcc.log"; then
  strip "$work/pause" 2>/dev/null || true
  cp "$work/pause" "$pa/pause"
  chmod 0755 "$pa/pause"
  write_etc "$pa"
  make_image pause "$pa" '"Entrypoint":["/pause"],"User":"65535:65535"'
else
  [[ -s "$work/gcc.log" ]] && { echo "gcc could not build a static pause, using busybox:" >&2; cat "$work/gcc.log" >&2; }
  mkdir -p "$pa/bin"
  cp "$busybox" "$pa/bin/busybox"
  chmod 0755 "$pa/bin/busybox"
  for applet in sh sleep; do ln -sf busybox "$pa/bin/$applet"; done
  write_etc "$pa"
  # PID 1 shell: `wait` returns on TERM/INT (trap runs, exits 0) and reaps children.
  make_image pause "$pa" \
    '"Entrypoint":["/bin/sh","-c","trap '"'"'exit 0'"'"' TERM INT; while :; do sleep 3600 & wait $!; done"],"Env":["PATH=/bin"],"User":"65535:65535"'
fi
