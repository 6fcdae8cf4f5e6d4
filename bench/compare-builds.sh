#!/usr/bin/env bash
# Two builds of lsc side by side: `lsc bench` on both bundled models, alternating between the
# builds round by round so drift on a shared machine hits both alike. Each DIR is a built checkout
# (npm run build). Prints AR / SS tok/s and the speedup per build, model and round.
#   bash bench/compare-builds.sh OLD_DIR NEW_DIR [ROUNDS]
set -euo pipefail
old=${1:?usage: compare-builds.sh OLD_DIR NEW_DIR [ROUNDS]}; new=${2:?usage: compare-builds.sh OLD_DIR NEW_DIR [ROUNDS]}
rounds=${3:-2}
for d in "$old" "$new"; do [ -f "$d/dist/cli/main.js" ] || { echo "compare-builds: $d has no dist/cli/main.js (run npm run build there)" >&2; exit 2; }; done
models=$(cd "$(dirname "$0")/.." && pwd)/examples/models
for round in $(seq 1 "$rounds"); do
  for which in old new; do
    dir=$old; [ "$which" = new ] && dir=$new
    for m in tiny-code tiny-code-deep; do
      json=$(cd "$dir" && node dist/cli/main.js bench "$models/$m" --repeat 2 --json 2>/dev/null)
      node -e '
        const r = JSON.parse(process.argv[1]); const ar = r.autoregressive.tokensPerSecond, ss = r.selfSpeculative.tokensPerSecond;
        console.log(`${process.argv[2]} ${process.argv[3]} round ${process.argv[4]}: AR ${ar.toFixed(1)} tok/s, SS ${ss.toFixed(1)} tok/s, speedup x${(ss / ar).toFixed(2)}`);
      ' "$json" "$which" "$m" "$round"
    done
  done
done
