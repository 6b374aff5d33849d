#!/usr/bin/env bash
# Prepares the GPU run of issue #11 (benchmarks/device/run.sh) on a machine that reaches the
# package registries. The GPU machine reaches nothing, so everything it lacks goes to .device/,
# which git ignores (this script adds it to .git/info/exclude) and the device call carries:
#   .device/official/{ml-flextok,WavTokenizer}  the code and configs of your official checkouts
#   .device/wheels                              pure-Python wheels of what its image lacks: tok's
#                                               diffusers and vector-quantize-pytorch (with their
#                                               own needs), the official FlexTok's hydra stack
#
#   benchmarks/device/prepare.sh ~/src/ml-flextok ~/src/WavTokenizer
#
# The versions are those the CPU environment resolved on 2026-12-08. The image holds torch 2.11.0, torchaudio,
# numpy, pillow, safetensors, einops, scipy, huggingface_hub >= 1.32, pyyaml, pandas and seaborn
# (see the device notes); only what it lacks travels (about 7 MB).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 FLEXTOK_CHECKOUT WAVTOKENIZER_CHECKOUT" >&2; exit 2; }
[ -d "$1/flextok" ] || { echo "$1: no flextok/ folder; not a checkout of apple/ml-flextok" >&2; exit 1; }
[ -d "$2/decoder" ] && [ -d "$2/encoder" ] || { echo "$2: no encoder/ and decoder/ folders; not a checkout of jishengpeng/WavTokenizer" >&2; exit 1; }
flextok=$(cd "$1" && pwd)
wavtokenizer=$(cd "$2" && pwd)
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}

grep -qxF '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
rm -rf .device
mkdir -p .device/official/ml-flextok .device/official/WavTokenizer .device/wheels
copy_code() {  # source folder, destination: the .py and .yaml files only (no notebooks, audio or images)
    (cd "$1" && find . -path ./.git -prune -o -type f \( -name '*.py' -o -name '*.yaml' \) -print | tar -cf - -T -) | tar -xf - -C "$2"
}
copy_code "$flextok" .device/official/ml-flextok
copy_code "$wavtokenizer" .device/official/WavTokenizer

# All pure Python (py3-none-any), so they install on the image's Python 3.12 whatever builds them.
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .device/wheels \
    diffusers==0.42.1 vector-quantize-pytorch==1.32.0 einx==0.4.3 frozendict==2.5.1 loguru==0.8.0 \
    torch-einops-utils==0.2.9 importlib-metadata==10.2.0 hydra-core==1.3.8 omegaconf==2.4.0
# Published as source only: built here into pure wheels.
"$python" -m pip wheel --quiet --no-deps -w .device/wheels mup==1.0.0 antlr4-python3-runtime==4.9.3
if ls .device/wheels/*.whl | grep -v -- '-py3-none-any.whl$'; then
    echo "the wheels above are not pure Python; they may not install on the GPU machine's Python 3.12" >&2
    exit 1
fi
du -sh .device .device/wheels .device/official
echo "next: the device run with carry [\".device\"] and the command: bash benchmarks/device/run.sh"
