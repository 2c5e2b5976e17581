#!/usr/bin/env bash
# Runs the suites that drive the native fabric against an AddressSanitizer build of it.
# The ASan addon is parked in build-asan/ (node-gyp rebuild wipes build/), the normal addon is rebuilt,
# and the tests load the ASan one through SQUALL_NATIVE_ADDON with libasan preloaded into node.
set -euo pipefail
command -v node-gyp >/dev/null || { echo "test:asan: run it as npm run test:asan (npm puts node-gyp on PATH)"; exit 1; }
cd "$(dirname "$0")/.."
libasan=$(gcc -print-file-name=libasan.so)
if [ ! -e "$libasan" ] || [ "$libasan" = libasan.so ]; then
  echo "test:asan: libasan not found (apt-get install libasan8); skipped"
  exit 0
fi
node-gyp rebuild -- -Dsquall_asan=true >/dev/null
mkdir -p build-asan
cp build/Release/squall_fabric.node build-asan/squall_fabric.node
node-gyp rebuild >/dev/null
# detect_leaks=0: node itself leaks by design at exit; the fabric tests check their own cleanup.
# close-stress: 4 of its rounds (a join, a kill and a leave while members close), about 50 s under ASan.
SQUALL_STRESS_ROUNDS=4 SQUALL_NATIVE_ADDON="$PWD/build-asan/squall_fabric.node" LD_PRELOAD="$libasan" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 node scripts/run-tests.mjs fabric sst-processes rdmc-processes \
  multicast-processes view-change-processes join-processes close-stress
