set -u
bash scripts/device-session.sh > /dev/null 2>&1   # unpack
S=/opt/torch/.venv/lib/python3.12/site-packages
export LD_LIBRARY_PATH="$S/nvidia/nccl/lib:$S/nvidia/cudnn/lib:$S/nvidia/cu13/lib:/tmp/zt-pack/lib" NCCL_NVLS_ENABLE=0
timeout 120 /tmp/zt-pack/build/tests/test_cuda --gtest_filter='Worlds/*:CudaExecutor*' > $OUT/multi_gpu_tests.log 2>&1; echo "multi-gpu tests rc=$?"
grep -E "^\[  FAILED|^\[  PASSED|^\[       OK|tests ran" $OUT/multi_gpu_tests.log | head -24
bash scripts/device-run.sh --bench-only --cases b,c --only ztrain --steps 12 --budget 360 2>&1 | grep -E "^\| ztrain|device-run \+" | head -30
mkdir -p /tmp/r && tar xzf $OUT/bench/runs.tar.gz -C /tmp/r 2>/dev/null
for f in $(find /tmp/r -name metrics.jsonl | sort); do python3 -c "
import json
r=[json.loads(l) for l in open('$f')]
print('$f'.split('/')[4], [round(x['loss'],5) for x in r if 'loss' in x][:6], [round(x['grad_norm'],4) for x in r if 'loss' in x][:3])"; done
