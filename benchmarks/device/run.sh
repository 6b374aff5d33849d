#!/usr/bin/env bash
# The GPU run of issue #11, as one device call (the step limits add up to 7.3 minutes; prepare .device/ first
# with benchmarks/device/prepare.sh):
#   run(command="bash benchmarks/device/run.sh", carry=[".device"], timeout_s=480)
# Each step has its own time limit and a failed step does not stop the next; the whole output is
# also written to $OUT/run.log (or ./run.log without $OUT). BATCHES, REPEATS and DEVICE override
# the defaults, e.g. `DEVICE=cpu BATCHES=1 REPEATS=1` for a dry run of the script on a CPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-.}
batches=${BATCHES:-1,64}
repeats=${REPEATS:-5}
device=${DEVICE:-cuda}
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
[ -d .device/wheels ] && [ -d .device/official ] || { echo ".device/ is missing: run benchmarks/device/prepare.sh and carry .device" >&2; exit 1; }

{
site=${SITE:-/tmp/tok-site}
"$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" .device/wheels/*.whl || exit 1
export PYTHONPATH="$PWD/src:$site${PYTHONPATH:+:$PYTHONPATH}"
step() {  # seconds, title, command...
    local limit=$1 title=$2; shift 2
    echo; echo "=== $title ($(date -u +%H:%M:%S), limit ${limit}s)"
    timeout "$limit" "$@"; local rc=$?
    [ $rc -eq 0 ] || echo "=== $title: exit $rc$([ $rc -eq 124 ] && echo ' (time limit)')"
}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"

# tok's own GPU path end to end: the bundled model, bf16 autocast on the trunks.
step 45 "tok encode/decode on $device" "$python" -c "
import sys; from tok.cli.main import main
sys.argv = ['tok', 'encode', 'tests/data/photo.jpg', '-m', 'flextok-small', '-o', '/tmp/photo.tok', '--device', '$device']
try: main()
except SystemExit as e: assert not e.code, e.code
sys.argv = ['tok', 'decode', '/tmp/photo.tok', '-o', '/tmp/photo.png', '--device', '$device']
try: main()
except SystemExit as e: assert not e.code, e.code
"
# Against the official code in bf16 (each harness checks parity first), with tok's achieved TFLOP/s
# and its share of a measured dense bf16 product.
step 180 "FlexTok d12-d12 vs official, bf16, batches $batches" "$python" benchmarks/vs_official.py \
    --official-src .device/official/ml-flextok --model flextok-d12-d12 --device "$device" --dtype bfloat16 \
    --batches "$batches" --repeats "$repeats" --peak-tflops auto
step 90 "WavTokenizer-75 vs official, bf16, batches $batches" "$python" benchmarks/vs_official.py \
    --official-src .device/official/WavTokenizer --model wavtokenizer-75 --device "$device" --dtype bfloat16 \
    --batches "$batches" --repeats "$repeats"
# Small batches are launch-bound on a GPU: CUDA graphs through torch.compile (its compilation is
# paid in the warm-up, outside the timing).
step 120 "FlexTok d12-d12, tok compiled (reduce-overhead), batch 1" "$python" benchmarks/vs_official.py \
    --official-src .device/official/ml-flextok --model flextok-d12-d12 --device "$device" --dtype bfloat16 \
    --batches 1 --repeats "$repeats" --ours-compile reduce-overhead --ops "enc trunk,dec pass,guided step"
} 2>&1 | tee "$out/run.log"
