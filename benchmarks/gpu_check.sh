#!/usr/bin/env bash
# Everything a session with a CUDA GPU should check, as one run of about 6-8 minutes (an H200's budget):
#   1. the device-generic tests on the GPU (ops, networks against float64, fp16 blocks, Adam, fp16 phases);
#   2. a short real training run on CUDA (fp16, ADA), killed by its kimg limit, resumed, then sampled;
#   3. training speed at 256² (auto256, the official README table's config, and paper256), beside the
#      official code when a clone of NVlabs/stylegan2-ada-pytorch is given.
#
#   bash benchmarks/gpu_check.sh [OFFICIAL_CLONE]      # default: .official, if it exists
#
# Logs go to $OUT (the folder the device tool brings back) or ./gpu-check. Our package runs from this
# source tree (PYTHONPATH), so nothing is installed; the machine needs a CUDA build of torch, click, tqdm,
# Pillow, safetensors, scipy and scikit-learn. For the device tool: copy the official clone's dnnlib,
# torch_utils and training folders to .official/ (git-ignored) and name .official in `carry`.
set -u
out=${OUT:-gpu-check}
official=${1:-.official}
py=${PYTHON:-python3}
device=${DEVICE:-cuda}  # DEVICE=cpu tries the script out on a machine without a GPU (slowly)
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
[ -d "$official/training" ] || official=""

$py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
           torch.cuda.get_device_name() if torch.cuda.is_available() else "(no GPU)")' \
    2>&1 | tee "$out/env.txt"

timeout 240 $py -m pytest -q -p no:cacheprovider --device "$device" tests/ops tests/networks \
    tests/training/test_fp16_step.py tests/training/test_optimizer.py tests/training/test_cuda_settings.py \
    2>&1 | tail -n 60 > "$out/tests.txt"
tail -n 3 "$out/tests.txt"

run=$(mktemp -d)
(
    set -e
    cd "$run"
    $py -m stylegan dataset --source sklearn-digits --dest digits32.zip --resolution 32x32 --quiet
    $py -m stylegan train --data digits32.zip --outdir runs --cond --kimg 2 --batch 32 --cbase 4096 --cmax 128 \
        --tick 1 --snap 1 --workers 2 --device "$device" --quiet
    $py -m stylegan train --outdir runs --resume latest --kimg 3 --device "$device" --quiet
    grep -h "^tick" runs/*/log.txt
    snap=$(ls runs/*/network-snapshot-*.safetensors | tail -n 1)
    $py -m stylegan generate --network "$snap" --seeds 0-7 --class 3 --grid --outdir gen --device "$device" --quiet
    ls gen
) > "$out/train.txt" 2>&1
echo "training run: exit $? (log: train.txt)"

if [ -n "$official" ]; then  # its CUDA plugins compile on first use (or fall back to its reference ops)
    (cd "$official" && timeout 240 $py -c 'from torch_utils.ops import bias_act, upfirdn2d
print("official CUDA plugins built:", bias_act._init(), upfirdn2d._init())') 2>&1 | tail -n 4 | tee "$out/official.txt"
fi

for preset in auto256 paper256; do
    timeout 200 $py benchmarks/training_speed.py --preset "$preset" --device "$device" --repeats 5 \
        ${official:+--official "$official"} 2>&1 | grep -v -i "warn" > "$out/speed-$preset.txt"
    cat "$out/speed-$preset.txt"
done
