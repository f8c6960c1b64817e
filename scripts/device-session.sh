#!/usr/bin/env bash
# One GPU-machine session step beside scripts/device-run.sh: unpacks the carried build-pack/,
# sets the library paths (../shared/DEVICE.md), then runs the named stages, each bounded:
#   tests      the GPU test binary once (all single-GPU cases; multi-GPU cases where GPUs allow;
#              TEST_FILTER / TEST_TIMEOUT narrow it and bound it, default * and 560 s: the whole binary takes about 390 s on an H200)
#   multigpu   only the multi-GPU cases (NCCL, ZeRO on 2 and 4 GPUs) and the executor tests
#   smoke      tiny GPT-2 on the GPU, CUDA graphs on and off (exit status and crash stacks)
#   profile    GPT-2 124M bf16 mb16 x 1024 with ZT_PROFILE=1 (per-op table; profile-fusion0.log
#              when run with ZT_FUSION=0)
#   ckpt       checkpoint benchmarks on this machine's disk: bench/ckpt/step_overhead.py (GPT-2 124M
#              bf16, intervals 1/10/50 x C 1/2) and ckpt_write_bench (pack it: PACK_EXTRA=ckpt_write_bench)
# Output under $OUT. Usage: scripts/device-session.sh tests smoke profile (multigpu on 2+ GPUs)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
S=/opt/torch/.venv/lib/python3.12/site-packages
OUT=${OUT:-$ROOT/out/device}
mkdir -p "$OUT"
P=/tmp/zt-pack
rm -rf "$P" && mkdir -p "$P" && tar xzf "$ROOT/build-pack/pack.tar.gz" -C "$P" || exit 1
export LD_LIBRARY_PATH="$S/nvidia/nccl/lib:$S/nvidia/cudnn/lib:$S/nvidia/cu13/lib:$P/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NCCL_NVLS_ENABLE=0
B=$P/build
Z=$B/ztrain
nvidia-smi -L
D=/tmp/zt-data
mkdir -p "$D"

gpt2_config() {  # $1 output dir, $2 steps, $3 micro batch, $4 seq, $5 precision key, $6 zero stage
  cat <<JSON
{"train_micro_batch_size_per_gpu": $3, "gradient_accumulation_steps": 1, "gradient_clipping": 1.0,
 "$5": {"enabled": true},
 "optimizer": {"type": "AdamW", "params": {"lr": 6e-4, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1}},
 "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 10, "total_num_steps": 1000}},
 "zero_optimization": {"stage": $6},
 "steps_per_print": 5,
 "model": {"config": "$ROOT/configs/gpt2-124m.json"},
 "data": {"train": "$D/gpt2.bin", "seq_len": $4},
 "run": {"steps": $2, "seed": 1, "output_dir": "$1"}}
JSON
}

for stage in "$@"; do
  case $stage in
    tests)
      timeout "${TEST_TIMEOUT:-560}" "$B/tests/test_cuda" --gtest_filter="${TEST_FILTER:-*}" \
        --gtest_output=xml:"$OUT/test_cuda.xml" >"$OUT/test_cuda.log" 2>&1
      echo "test_cuda rc=$?" | tee -a "$OUT/test_cuda.log"
      grep -E "^\[  FAILED|^\[  PASSED|^\[==========\]|tests, listed" "$OUT/test_cuda.log" | head -40 ;;
    multigpu)
      timeout 150 "$B/tests/test_cuda" --gtest_filter='Worlds/*:CudaExecutor*' >"$OUT/multi_gpu_tests.log" 2>&1
      echo "multi-gpu tests rc=$?"
      grep -E "^\[  FAILED|^\[  PASSED|^\[       OK|tests ran" "$OUT/multi_gpu_tests.log" | head -24 ;;
    smoke)
      mkdir -p "$ROOT/out/data"
      [ -f "$ROOT/out/data/markov-train.bin" ] || "$Z" data synth --out "$ROOT/out/data/markov-train.bin" --vocab 64 \
        --tokens 2000000 --branching 2 --seed 1 --eval-out "$ROOT/out/data/markov-eval.bin" --eval-tokens 65536 >/dev/null
      for graphs in 1 0; do
        ZT_CUDA_GRAPHS=$graphs timeout 120 "$Z" train --config "$ROOT/configs/tiny-run.json" --no-progress \
          >"$OUT/smoke-graphs$graphs.log" 2>&1
        echo "tiny run graphs=$graphs rc=$?"; tail -6 "$OUT/smoke-graphs$graphs.log"
      done ;;
    profile)
      [ -f "$D/gpt2.bin" ] || "$Z" data synth --out "$D/gpt2.bin" --vocab 50257 --tokens 4000000 >/dev/null
      gpt2_config /tmp/zt-prof 8 16 1024 bf16 0 >"$D/prof.json"
      log="$OUT/profile${ZT_FUSION:+-fusion$ZT_FUSION}.log"  # ZT_FUSION=0 profiles the unfused step
      ZT_PROFILE=1 timeout 200 "$Z" train --config "$D/prof.json" --no-progress --no-export >"$log" 2>&1
      echo "profile rc=$?"; tail -36 "$log" ;;
    ckpt)
      timeout 170 /usr/bin/env python3 "$ROOT/bench/ckpt/step_overhead.py" --ztrain "$Z" --model gpt2-124m \
        --steps 30 --warmup 5 --intervals 1,10,50 --concurrency 1,2 --out /tmp/zt-ckpt \
        --json "$OUT/step_overhead.json" >"$OUT/step_overhead.md" 2>"$OUT/step_overhead.err"
      echo "step_overhead rc=$?"; cat "$OUT/step_overhead.md"; tail -5 "$OUT/step_overhead.err"
      if [ -x "$B/ckpt_write_bench" ]; then
        mkdir -p /tmp/zt-ckb
        timeout 90 "$B/ckpt_write_bench" --dir /tmp/zt-ckb --gb 2 --repeats 3 --io-threads 4,8 --chunk-mb 8 \
          --concurrency 1,2 --json "$OUT/ckpt_write_bench.json" >"$OUT/ckpt_write_bench.md" 2>&1
        echo "ckpt_write_bench rc=$?"; cat "$OUT/ckpt_write_bench.md"
      fi ;;
    *) echo "unknown stage $stage" ;;
  esac
done
