#!/usr/bin/env bash
# The README's test command: set up (driver, npm ci, build, the browser for the viewer tests) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
LSC_SETUP_BROWSER=1 bash scripts/setup.sh
npm test --silent
