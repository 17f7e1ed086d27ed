#!/usr/bin/env bash
# Regenerates proto/gen/ with ts-proto: codecs for the Kubernetes protobuf subset in proto/k8s/ (proto/gen/k8s/)
# and the CRI v1 gRPC client for the subset in proto/cri/ (proto/gen/cri/).
# Usage: npm run proto   (or: bash proto/generate.sh). Needs protoc (3.21+) on PATH and `npm install` done.
# The generated files are committed, so nobody needs protoc just to build or run kubelab.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

plugin="$root/node_modules/.bin/protoc-gen-ts_proto"
[[ -x "$plugin" ]] || { echo "missing $plugin (run npm install)" >&2; exit 1; }
command -v protoc >/dev/null || { echo "protoc not found on PATH" >&2; exit 1; }

out="$root/proto/gen"
rm -rf "$out"
mkdir -p "$out"

# Options:
#  importSuffix=.ts            relative imports end in .ts (tsx/vitest + allowImportingTsExtensions)
#  outputTypeAnnotations=true  every decoded message carries $type (its full proto name); the JSON
#                              converter in apiserver/protobuf uses it to walk messages generically
#  unknownFields=true          decoders keep unknown fields in _unknownFields, so the converter can refuse
#                              bodies carrying non-empty fields we do not model instead of dropping data
#  initializeFieldsAsUndefined=false + proto2 optionals (default on): absent optional fields decode to
#                              undefined, present ones to their value, so wire presence is preserved
#  forceLong=number            int64 -> number (all int64 values used here are small)
# Caveats of the generated code (decoding is what kubelab uses):
#  * the generated encode() skips zero-valued proto2 optionals (replicas: 0, immutable: false), unlike Go;
#    do not use it to produce protobuf where a Go pointer's zero value matters
#  * decode() replaces (does not merge) a singular message field that occurs twice; Go clients never split
ts_opts="esModuleInterop=true,importSuffix=.ts,outputJsonMethods=false,outputEncodeMethods=true"
ts_opts+=",outputPartialMethods=false,useOptionals=messages,forceLong=number,env=node"
ts_opts+=",outputTypeAnnotations=true,unknownFields=true,outputServices=false,useExactTypes=false,initializeFieldsAsUndefined=false"

mapfile -t protos < <(cd proto && find k8s -name '*.proto' | sort)
(cd proto && protoc \
  --plugin="protoc-gen-ts_proto=$plugin" \
  --ts_proto_out="$out" \
  --ts_proto_opt="$ts_opts" \
  -I . \
  "${protos[@]}")

echo "generated $(find "$out" -name '*.ts' | wc -l) files in proto/gen/"

# CRI v1 (proto/cri/api.proto, our subset of kubernetes/cri-api) -> proto/gen/cri/api.ts, a gRPC client for
# kubelet/runtime/cri.ts. Options differ from the k8s codecs above:
#  outputServices=grpc-js      service definitions + typed clients for @grpc/grpc-js
#  outputPartialMethods=true   X.fromPartial(): build every request with it (a bare object literal leaves
#                              scalars undefined and encode() throws "invalid int32: undefined")
#  forceLong=string            int64 (nanosecond timestamps, timeouts) -> decimal strings, no precision loss
#  useOptionals=none, unknownFields=false, no $type: plain messages; unknown response fields are dropped
cri_opts="esModuleInterop=true,importSuffix=.ts,outputJsonMethods=false,outputEncodeMethods=true"
cri_opts+=",outputPartialMethods=true,outputServices=grpc-js,forceLong=string,env=node,useOptionals=none"
cri_opts+=",outputTypeAnnotations=false,unknownFields=false,useExactTypes=false"
(cd proto && protoc \
  --plugin="protoc-gen-ts_proto=$plugin" \
  --ts_proto_out="$out" \
  --ts_proto_opt="$cri_opts" \
  -I . \
  cri/api.proto)

echo "generated proto/gen/cri/api.ts"
