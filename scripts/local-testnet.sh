#!/usr/bin/env bash
# Starts the `local` chain's four validators (//Alice, //Bob, //Charlie, //Dave) on loopback,
# each with its own base path and ports, prints their RPC endpoints, and stops them all on
# Ctrl-C. Usage: scripts/local-testnet.sh [BASE_DIR] (default: a fresh temporary folder).
# Set HYPERION to use another binary (default: target/release/hyperion, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${HYPERION:-target/release/hyperion}"
if [[ ! -x "$BIN" ]]; then
    cargo build --release --bin hyperion
fi
BASE="${1:-$(mktemp -d -t hyperion-local-XXXXXX)}"
mkdir -p "$BASE"
NAMES=(alice bob charlie dave)
PIDS=()
BOOTNODES=()

stop() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

for i in "${!NAMES[@]}"; do
    name="${NAMES[$i]}"
    p2p=$((30333 + i)); rpc=$((9944 + i)); metrics=$((9615 + i))
    args=(--chain local "--$name" --base-path "$BASE/$name" --listen-addr "/ip4/127.0.0.1/tcp/$p2p"
          --rpc-port "$rpc" --prometheus-port "$metrics")
    if ((${#BOOTNODES[@]})); then args+=(--bootnodes "${BOOTNODES[@]}"); fi
    "$BIN" "${args[@]}" >"$BASE/$name.log" 2>&1 &
    PIDS+=($!)
    BOOTNODES+=("/ip4/127.0.0.1/tcp/$p2p")
    echo "$name: RPC http://127.0.0.1:$rpc  metrics http://127.0.0.1:$metrics/metrics  log $BASE/$name.log"
done
echo "data in $BASE; Ctrl-C stops the network"
wait
