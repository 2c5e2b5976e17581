#!/usr/bin/env bash
# Runs the suites that drive whole members (SST, RDMC, ordered multicast, view changes, joins, the squall
# sst CLI) and the fabric suites once more with every member on the libfabric backend: SQUALL_FABRIC=libfabric,
# read by MemberRuntime (ts/fabric/choice.ts) and inherited by the member processes the tests start.
# Once per provider: SQUALL_FABRIC_PROVIDER if set, else each of tcp (RMA mode), tcp+msg (message mode) and
# shm (RDM mode) that this libfabric offers (docs/rdma.md "Modes"). The tcp+msg pass runs on the worker
# engine (SQUALL_SHARD_ENGINE=worker) unless SQUALL_SHARD_ENGINE is set.
# Skips, exit 0, when the addon was built without the libfabric backend.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! node --input-type=module -e "
  const { nativeBackends } = await import('./dist/ts/fabric/native.js');
  const usable = nativeBackends().includes('libfabric') && process.env.SQUALL_FORCE_NO_LIBFABRIC !== '1';
  process.exit(usable ? 0 : 1);" 2>/dev/null; then
  echo "test:libfabric: the native addon has no libfabric backend" \
    "(libfabric's headers were not found when it was built);"
  echo "  skipped. To run it: apt-get install libfabric-dev pkg-config, then npm run build:native"
  exit 0
fi
export SQUALL_FABRIC=libfabric
providers="${SQUALL_FABRIC_PROVIDER:-tcp tcp+msg shm}"
status=0
for provider in $providers; do
  if ! node --input-type=module -e "
    const { checkFabricUsable } = await import('./dist/ts/fabric/native.js');
    checkFabricUsable({ backend: 'libfabric', provider: process.argv[1] });" "$provider" 2>/dev/null; then
    echo "test:libfabric: provider $provider is not offered by this libfabric; skipped"
    continue
  fi
  # The tcp+msg pass (which skips nothing) runs the group suites on the main-thread engine — the event loop
  # steps the shards and the view-change protocol — so both engines are tested without another pass.
  engine="${SQUALL_SHARD_ENGINE:-worker}"
  if [ -z "${SQUALL_SHARD_ENGINE:-}" ] && [ "$provider" = "tcp+msg" ]; then engine=main; fi
  echo "test:libfabric: every member on libfabric, provider $provider, engine $engine"
  SQUALL_SHARD_ENGINE="$engine" SQUALL_FABRIC_PROVIDER="$provider" node scripts/run-tests.mjs fabric sst-processes \
    rdmc-processes multicast-processes view-change-processes join-processes cli-sst worker-engine || status=1
done
exit $status
