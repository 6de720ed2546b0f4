#!/usr/bin/env bash
# Everything a session with a CUDA GPU should check, as one run that fits a 10-minute call (worst case
# 10 min, about 6 expected on an H200), most important first:
#   1. training speed at 256² beside the official code (auto256, the official README table's config, and
#      paper256), after building the official CUDA plugins;
#   2. the device-generic tests on the GPU (ops, networks against float64, fp16 blocks, Adam, fp16 phases);
#   3. a short real training run on CUDA (fp16, ADA), stopped by its kimg limit, resumed, then sampled.
#
#   bash benchmarks/gpu_check.sh [OFFICIAL_CLONE]      # default: .official, if it exists
#
# Each step writes its own log to $OUT (the folder the device tool brings back) or ./gpu-check, so a run
# cut short keeps what it finished. Our package runs from this source tree (PYTHONPATH): nothing is
# installed; the machine needs a CUDA build of torch, click, tqdm, Pillow, safetensors, scipy and
# scikit-learn. For the device tool: copy the official clone's dnnlib, torch_utils and training folders
# to .official/ (git-ignored) and name .official in `carry`. DEVICE=cpu tries the script out (slowly).
set -u
out=${OUT:-gpu-check}
official=${1:-.official}
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
mkdir -p "$out"
work=$(mktemp -d)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export TORCH_EXTENSIONS_DIR="$work/torch_extensions"  # where the official plugins are built and found
[ -d "$official/training" ] || official=""

$py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
           torch.cuda.get_device_name() if torch.cuda.is_available() else "(no GPU)")' 2>&1 | tee "$out/env.txt"

if [ -n "$official" ]; then  # the official code compiles its CUDA plugins on first use
    if ! (cd "$official" && timeout 130 $py -c 'from torch_utils.ops import bias_act, upfirdn2d
print("official CUDA plugins built:", bias_act._init(), upfirdn2d._init())') > "$out/official.txt" 2>&1; then
        # A killed build leaves a lock that would make the next one wait for ever: fail fast instead, so
        # the official code falls back to its reference ops (and say so).
        echo "official plugin build did not finish: the official code runs its reference ops" >> "$out/official.txt"
        export TORCH_EXTENSIONS_DIR=/dev/null/none
    fi
    tail -n 2 "$out/official.txt"
fi

for preset in auto256 paper256; do
    timeout $([ $preset = auto256 ] && echo 120 || echo 150) $py benchmarks/training_speed.py --preset "$preset" \
        --device "$device" --repeats 5 ${official:+--official "$official"} 2>&1 | grep -v -i "warn" > "$out/speed-$preset.txt"
    cat "$out/speed-$preset.txt"
done

timeout 90 $py -m pytest -q -p no:cacheprovider --device "$device" tests/ops tests/networks \
    tests/training/test_fp16_step.py tests/training/test_optimizer.py tests/training/test_cuda_settings.py \
    2>&1 | tail -n 60 > "$out/tests.txt"
tail -n 3 "$out/tests.txt"

export py device
timeout 110 bash -ec '
    cd "$1"
    $py -m stylegan dataset --source sklearn-digits --dest digits32.zip --resolution 32x32 --quiet
    $py -m stylegan train --data digits32.zip --outdir runs --cond --kimg 2 --batch 32 --cbase 4096 --cmax 128 \
        --tick 1 --snap 1 --workers 2 --device "$device" --quiet
    $py -m stylegan train --outdir runs --resume latest --kimg 3 --device "$device" --quiet
    grep -h "^tick" runs/*/log.txt
    snap=$(ls runs/*/network-snapshot-*.safetensors | tail -n 1)
    $py -m stylegan generate --network "$snap" --seeds 0-7 --class 3 --grid --outdir gen --device "$device" --quiet
    ls gen
' _ "$work" > "$out/train.txt" 2>&1
echo "training run: exit $? (log: train.txt)"
