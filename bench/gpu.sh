#!/usr/bin/env bash
# The GPU benchmark (bench/gpu.ts): Llama-2-7B geometry, random weights made on the GPU, f16 / q8 / q4.
# Usage: bench/gpu.sh [--layers 32] [--formats f16,q8,q4] [--tokens 64] [--exit-layer 8] [--k 3] [--ctx 1024] [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/bench/gpu.js ] || npm run build >&2
exec node dist/bench/gpu.js "$@"
