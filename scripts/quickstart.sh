#!/usr/bin/env bash
# The README's main job: set up (Vulkan driver if none, npm ci, build), then generate code with
# the bundled LayerSkip model by self-speculative decoding and compare it with autoregressive.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
prompt=$'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n'
printf '%s' "$prompt"
# E=2, k=2: the best pair of the sweep in BENCHMARKS.md
node dist/cli/main.js generate --model examples/models/tiny-code --prompt "$prompt" \
  --strategy self-speculative --exit-layer 2 --num-speculations 2 --max-new-tokens 128 --compare "$@"
