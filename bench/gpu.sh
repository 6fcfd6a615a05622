#!/usr/bin/env bash
# The GPU run of issue 18, for the lent NVIDIA H200 (see the project's shared GPU notes): the kernel
# benchmark (square matmuls 256..4096 and every other row at GPU sizes, beside tfjs-webgpu), then the
# ResNet-32 (CIFAR, batch 128) and ResNet-50 (224 px, batch 64) training steps beside PyTorch on CUDA
# (float32, TF32 off), each with a per-kernel profile of one step. Everything lands as JSON under
# $OUT, with summary.md comparing the issue's targets:
#   matmul f32 >= 35 TFLOP/s at 4096^3; ResNet-32 step <= 2x PyTorch eager; ResNet-50 step <= 2x PyTorch f32.
#
# Here (builds bench/*.js and packs Node, node_modules and them into .gpu/):
#   bench/gpu.sh --prepare
# On the device (run tool, carry [".gpu"]; about 6-8 minutes, each stage under its own time limit):
#   source .gpu/env.sh && bash bench/gpu.sh
# On a machine without a GPU, the same stages at toy sizes (checks the script, the JSON and the summary):
#   bash bench/gpu.sh --cpu-check
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --prepare ]; then
  node scripts/build.mjs --no-types || exit 1
  bundle=${GPU_BUNDLE:-../shared/tools/gpu-bundle.sh}
  [ -x "$bundle" ] || bundle=/work/shared/tools/gpu-bundle.sh
  exec "$bundle" bench/kernels.js bench/train-step.js
fi
check=0
[ "${1:-}" = --cpu-check ] && check=1

OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
# the device image's python3 has CUDA PyTorch; here Debian's /usr/bin/python3 has the CPU build
export PYTHON=${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}
[ $check = 1 ] && PYTHON=/usr/bin/python3
log="$OUT/gpu-run.log"
: > "$log"

stage() { # stage NAME SECONDS CMD...: runs CMD under a time limit, its output to the log and the terminal
  local name=$1 limit=$2
  shift 2
  echo "== $name: $*" | tee -a "$log"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | grep -v '^Warning: maxDynamic' | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$log"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo 'no nvidia-smi'; } | tee "$OUT/device.txt"
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tee -a "$OUT/device.txt"

if [ $check = 1 ]; then
  stage kernels 600 node bench/kernels.js --quick --filter 'matmul 256|binary add|batchnorm forward' --json "$OUT/kernels.json"
  stage resnet32 600 node bench/train-step.js --model resnet8 --batch 8 --steps 1 --warmup 1 --kernels --peer torch --peer-device auto --json "$OUT/train-resnet32.json"
  stage resnet50 600 node bench/train-step.js --model resnet50 --batch 1 --size 64 --steps 1 --warmup 0 --peer torch --peer-device auto --json "$OUT/train-resnet50.json"
else
  stage kernels 240 node bench/kernels.js --json "$OUT/kernels.json"
  stage resnet32 120 node bench/train-step.js --model resnet32 --batch 128 --steps 20 --warmup 5 --kernels --peer torch --peer-device cuda --json "$OUT/train-resnet32.json"
  stage resnet50 200 node bench/train-step.js --model resnet50 --batch 64 --size 224 --steps 10 --warmup 3 --kernels --peer torch --peer-device cuda --json "$OUT/train-resnet50.json"
fi

# the summary: the issue's targets beside what was measured (a missing file: that stage failed, see the log)
OUT="$OUT" node --input-type=module -e '
import { readFileSync, writeFileSync, existsSync } from "node:fs";
const out = process.env.OUT;
const load = (f) => (existsSync(`${out}/${f}`) ? JSON.parse(readFileSync(`${out}/${f}`, "utf8")) : null);
const lines = ["| measure | ours | peer | ratio (peer / ours) | target |", "| --- | --- | --- | --- | --- |"];
const kernels = load("kernels.json");
if (kernels) {
  for (const r of kernels.filter((r) => /^matmul \d+$/.test(r.name))) {
    const tf = r.tfjs_ms ? (r.gflops * r.ms) / r.tfjs_ms : undefined;
    lines.push(`| ${r.name} f32 | ${(r.gflops / 1000).toFixed(2)} TFLOP/s | tfjs ${tf === undefined ? "-" : (tf / 1000).toFixed(2) + " TFLOP/s"} | ${r.ratio?.toFixed(2) ?? "-"} | ${r.name === "matmul 4096" ? ">= 35 TFLOP/s (PyTorch f32: 51.3)" : ""} |`);
  }
} else lines.push("| kernel benchmark | failed | | | |");
for (const [file, label, target] of [["train-resnet32.json", "ResNet-32 b128 step", "<= 2x PyTorch eager (11.3 ms)"], ["train-resnet50.json", "ResNet-50 b64 224 px step", "<= 2x PyTorch f32 (68.3 ms)"]]) {
  const r = load(file)?.[0];
  if (!r) { lines.push(`| ${label} | failed | | | ${target} |`); continue; }
  const p = r.peer && !r.peer.skipped ? r.peer : null;
  lines.push(`| ${label} (${r.model} b${r.batch} ${r.size}px) | ${r.ms_per_step.toFixed(1)} ms | ${p ? `${p.peer}: ${p.ms_per_step.toFixed(1)} ms` : `skipped: ${r.peer?.skipped ?? "no peer"}`} | ${p ? p.ratio.toFixed(3) : "-"} | ${target} |`);
}
const md = lines.join("\n");
writeFileSync(`${out}/summary.md`, md + "\n");
console.log("\n" + md);
' 2>&1 | tee -a "$log"
ls -l "$OUT"
