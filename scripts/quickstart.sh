#!/usr/bin/env bash
# The README's main job: set up (Vulkan driver if none, npm ci, build), then generate code with
# the bundled LayerSkip model by self-speculative decoding and compare it with autoregressive.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
prompt=$'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n'
printf '%s' "$prompt"
# tiny-code-deep: Llama-2-7B's proportions (its LM head weighs 0.65 of a layer), so the speedup
# is closer to what a 7B model gets on a GPU; self-speculative at the graph's default E=4, k=3
node dist/cli/main.js generate --model examples/models/tiny-code-deep --prompt "$prompt" \
  --max-new-tokens 128 --compare "$@"
