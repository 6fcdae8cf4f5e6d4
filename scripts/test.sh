#!/usr/bin/env bash
# The README's test command: set up (driver, npm ci, build) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test --silent
