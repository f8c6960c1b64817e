#!/usr/bin/env bash
# The one command to run on the GPU machine (../shared/DEVICE.md), from the repository root:
# sets the library paths of the Python venv's NCCL/cuDNN/CUDA, keeps NVLink multicast off, finds a
# ztrain built with CUDA (a carried build-pack/, else --build-dir if its ztrain runs, else builds
# it there with -DZT_CUDA=ON and all cores), runs `ctest -L gpu` (log and JUnit XML in $OUT), then
# bench/run_gpu.py (reports in $OUT/bench). Every stage is bounded by the --budget deadline.
# Invariant: a failing stage is reported and the next one still runs (the bench needs a binary);
# nothing outside the repository copy, $OUT and the scratch folder is written, except symbolic
# links that make a carried build's absolute paths valid (only where those paths do not exist).
#
#   scripts/device-run.sh [--tests-only | --bench-only | --build-only] [--build-dir DIR]
#                         [--budget SECONDS] [--test-timeout SECONDS] [run_gpu.py options...]
#       run_gpu.py options pass through: --cases a,b,c  --quick  --steps N  --only ztrain ...
#   scripts/device-run.sh --pack BUILD_DIR      (here, on the build machine) makes build-pack/:
#       stripped ztrain and GPU test binaries, their CTest files, and the shared libraries the
#       GPU machine may lack (gloo, openblas, ...); carry it: run(carry=["build-pack"], ...).
#       PACK_EXTRA="tests/helper ..." adds more executables of BUILD_DIR.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
S=/opt/torch/.venv/lib/python3.12/site-packages
PY=${BENCH_PYTHON:-/opt/torch/.venv/bin/python}  # BENCH_PYTHON: another interpreter (tests here)
[ -x "$PY" ] || PY=$(command -v python3)
BUILD=$ROOT/build-device
BUDGET=570
TEST_TIMEOUT=300
STAGE=all
PACK_FROM=""
NEED_CUDA=1
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tests-only) STAGE=tests ;;
    --bench-only) STAGE=bench ;;
    --build-only) STAGE=build ;;
    --build-dir) BUILD=$(realpath -m "$2"); shift ;;
    --budget) BUDGET=$2; shift ;;
    --test-timeout) TEST_TIMEOUT=$2; shift ;;
    --pack) PACK_FROM=$2; shift ;;
    --smoke) NEED_CUDA=0; PASS+=("$1") ;;  # bench --smoke: a CPU-only ztrain will do
    *) PASS+=("$1") ;;
  esac
  shift
done
T0=$(date +%s)
DEADLINE=$((T0 + BUDGET))
left() { local l=$((DEADLINE - $(date +%s))); [ $l -lt 10 ] && l=10; echo $l; }  # never 0: timeout 0 waits forever
say() { echo "[device-run +$(($(date +%s) - T0))s] $*"; }

# --- pack (on the build machine) ------------------------------------------------------------------
pack() {
  local B P exe rel
  B=$(cd "$1" && pwd) || { echo "no build dir $1"; return 1; }
  [ -x "$B/ztrain" ] || { echo "$B/ztrain missing: build it first"; return 1; }
  P=$(mktemp -d)  # staged here, then packed into build-pack/pack.tar.gz (carried as one file)
  mkdir -p "$P/build" "$P/lib"
  echo "$B" >"$P/orig_build"
  sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$B/CMakeCache.txt" >"$P/orig_source"
  local exes=("$B/ztrain")
  while IFS= read -r exe; do [ -n "$exe" ] && exes+=("$exe"); done < <(
    ctest --test-dir "$B" -N -L gpu --show-only=json-v1 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for t in d.get("tests", []):
    c = t.get("command") or []
    if c: print(c[0])' | sort -u)
  for exe in ${PACK_EXTRA:-}; do exes+=("$B/$exe"); done  # helpers GPU tests run (paths in BUILD_DIR)
  for exe in "${exes[@]}"; do
    rel=${exe#"$B"/}
    mkdir -p "$P/build/$(dirname "$rel")"
    cp "$exe" "$P/build/$rel" && strip --strip-debug "$P/build/$rel"
  done
  (cd "$B" && find . \( -name CTestTestfile.cmake -o -name '*_include.cmake' -o -name '*_tests.cmake' \
     -o -name DartConfiguration.tcl \) -exec cp --parents {} "$P/build/" \;)
  # Shared libraries outside glibc/libstdc++ and outside CUDA/cuDNN/NCCL (the venv has those).
  for exe in "${exes[@]}"; do ldd "$exe"; done | awk '/=> \//{print $3}' | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) ;;
      libcu*|libnccl*|libnv*) ;;
      *) cp -L "$lib" "$P/lib/" ;;
    esac
  done
  echo "build-pack: ${#exes[@]} binaries, libs: $(ls "$P/lib" | tr '\n' ' ')"
  rm -rf "$ROOT/build-pack" && mkdir -p "$ROOT/build-pack"
  tar czf "$ROOT/build-pack/pack.tar.gz" -C "$P" . && rm -rf "$P"
  du -sh "$ROOT/build-pack/pack.tar.gz"
  echo "carry it: run(carry=[\"build-pack\"], command=\"scripts/device-run.sh ...\")"
}
if [ -n "$PACK_FROM" ]; then pack "$PACK_FROM"; exit $?; fi

# --- environment (DEVICE.md) ---------------------------------------------------------------------
export LD_LIBRARY_PATH="$S/nvidia/nccl/lib:$S/nvidia/cudnn/lib:$S/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
export PATH="$PATH:/opt/torch/.venv/bin"  # cmake, ctest and ninja may live there
OUT=${OUT:-$ROOT/out/device}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SCRATCH=${TMPDIR:-/tmp}/ztrain-device-run
mkdir -p "$SCRATCH"
say "root $ROOT, out $OUT, python $PY, budget ${BUDGET}s"
if command -v nvidia-smi >/dev/null; then nvidia-smi -L; else say "no nvidia-smi: no GPU here"; fi

usable() {  # a ztrain that starts, with CUDA linked in
  [ -x "$1/ztrain" ] || return 1
  if ldd "$1/ztrain" | grep -q "not found"; then
    say "$1/ztrain misses libraries:"; ldd "$1/ztrain" | grep "not found"; return 1
  fi
  "$1/ztrain" --help >/dev/null 2>&1 || { say "$1/ztrain --help fails"; return 1; }
  if [ $NEED_CUDA = 1 ] && ! ldd "$1/ztrain" | grep -qE "libcudart|libcublas"; then
    say "$1/ztrain was built without CUDA"; return 1
  fi
}

use_pack() {  # the carried build-pack/: unpack, make its recorded absolute paths valid here
  local P=$SCRATCH/pack src ob lib n
  rm -rf "$P" && mkdir -p "$P" && tar xzf "$ROOT/build-pack/pack.tar.gz" -C "$P" || return 1
  src=$(cat "$P/orig_source"); ob=$(cat "$P/orig_build")
  if [ -n "$src" ] && [ "$src" != "$ROOT" ] && [ ! -e "$src" ]; then
    mkdir -p "$(dirname "$src")" && ln -s "$ROOT" "$src" && say "linked $src -> $ROOT"
  fi
  if [ ! -e "$ob/ztrain" ] && { [ -L "$ob" ] || [ ! -e "$ob" ]; }; then
    rm -f "$ob"; mkdir -p "$(dirname "$ob")" && ln -s "$P/build" "$ob" && say "linked $ob -> $P/build"
  fi
  mkdir -p "$SCRATCH/libs"
  for lib in "$P"/lib/*; do
    [ -e "$lib" ] || continue
    n=$(basename "$lib")
    ldconfig -p | grep -q "^[[:space:]]$n " || ln -sf "$lib" "$SCRATCH/libs/$n"
  done
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$SCRATCH/libs"
  if [ -e "$ob/ztrain" ]; then BUILD=$ob; else BUILD=$P/build; fi
}

build_here() {
  local cudnn nccl flags log=$SCRATCH/build.log testing=ON
  cudnn=$(ls "$S"/nvidia/cudnn/lib/libcudnn.so "$S"/nvidia/cudnn/lib/libcudnn.so.[0-9]* 2>/dev/null | head -1)
  nccl=$(ls "$S"/nvidia/nccl/lib/libnccl.so "$S"/nvidia/nccl/lib/libnccl.so.[0-9]* 2>/dev/null | head -1)
  flags="-isystem $S/nvidia/cudnn/include -isystem $S/nvidia/nccl/include"
  say "configuring $BUILD (cuDNN ${cudnn:-?}, NCCL ${nccl:-?})"
  : >"$log"
  for testing in ON OFF; do  # without GTest on the machine: no tests, still the binary
    timeout "$(left)" cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZT_CUDA=ON \
      -DBUILD_TESTING=$testing ${cudnn:+-DZT_CUDNN_LIB=$cudnn} ${nccl:+-DZT_NCCL_LIB=$nccl} \
      "-DCMAKE_CXX_FLAGS=$flags" "-DCMAKE_CUDA_FLAGS=$flags" >>"$log" 2>&1 && break
    [ $testing = OFF ] && { cp "$log" "$OUT/build.log"; tail -30 "$log"; return 1; }
    say "configure with tests failed; trying -DBUILD_TESTING=OFF"; rm -f "$BUILD/CMakeCache.txt"
  done
  local targets=(ztrain)
  ninja -C "$BUILD" -t query test_cuda >/dev/null 2>&1 && targets+=(test_cuda)
  say "building ${targets[*]} with $(nproc) jobs"
  if ! timeout "$(left)" cmake --build "$BUILD" -j "$(nproc)" --target "${targets[@]}" >>"$log" 2>&1; then
    cp "$log" "$OUT/build.log"; tail -40 "$log"; return 1
  fi
  tail -2 "$log"
}

HAVE_ZTRAIN=0
if [ -f "$ROOT/build-pack/pack.tar.gz" ]; then use_pack; fi
if usable "$BUILD"; then
  HAVE_ZTRAIN=1; say "using $BUILD/ztrain"
else
  build_here && usable "$BUILD" && HAVE_ZTRAIN=1
fi
[ $HAVE_ZTRAIN = 1 ] || say "NO usable ztrain: GPU tests skipped; the bench records ztrain runs as failed"
[ "$STAGE" = build ] && exit $((1 - HAVE_ZTRAIN))

# --- GPU tests -----------------------------------------------------------------------------------
TESTS_RC=skipped
if [ "$STAGE" = all ] || [ "$STAGE" = tests ]; then
  if [ $HAVE_ZTRAIN = 1 ] && command -v nvidia-smi >/dev/null && [ -f "$BUILD/CTestTestfile.cmake" ]; then
    junit=()
    ctest --help 2>/dev/null | grep -q -- --output-junit && junit=(--output-junit "$OUT/gpu-tests.xml")
    say "ctest -L gpu (timeout ${TEST_TIMEOUT}s per test, $(left)s left)"
    (cd "$BUILD" && timeout "$(( $(left) > 60 ? $(left) - 30 : 30 ))" ctest -L gpu --output-on-failure \
      --timeout "$TEST_TIMEOUT" "${junit[@]}") >"$OUT/gpu-tests.log" 2>&1
    TESTS_RC=$?
    grep -q "No tests were found" "$OUT/gpu-tests.log" && say "ctest found NO tests labelled gpu in $BUILD"
    grep -E "tests passed|\*\*\*Failed|\*\*\*Timeout|Not Run|Exception|Total Test time" "$OUT/gpu-tests.log" | tail -40
  else
    say "GPU tests not run (no usable ztrain build with CTest files, or no GPU)"
  fi
fi

# --- benchmarks ----------------------------------------------------------------------------------
BENCH_RC=skipped
if [ "$STAGE" = all ] || [ "$STAGE" = bench ]; then
  say "bench/run_gpu.py ${PASS[*]} ($(left)s left)"
  timeout "$(( $(left) > 20 ? $(left) : 20 ))" "$PY" "$ROOT/bench/run_gpu.py" --ztrain "$BUILD/ztrain" \
    --peer-python "$PY" --out "$OUT/bench" --deadline-unix "$((DEADLINE - 15))" "${PASS[@]}"
  BENCH_RC=$?
fi
say "done: ztrain $([ $HAVE_ZTRAIN = 1 ] && echo ok || echo MISSING), gpu tests rc $TESTS_RC, bench rc $BENCH_RC"
ls -la "$OUT" "$OUT/bench" 2>/dev/null
[ $HAVE_ZTRAIN = 1 ] && [ "$BENCH_RC" != 1 ] && [ "$TESTS_RC" = 0 -o "$TESTS_RC" = skipped ]
