#!/bin/bash
# One call on a lent GPU machine (the device tool): install the carried wheels (.whl/, py3.12:
# jsonschema, ptlflow and what they need beside the image's torch), then run the GPU benchmarks and
# write their logs under $OUT. Usage there: bash benchmarks/gpu_session.sh
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    > "$OUT/pip.log" 2>&1 || { cat "$OUT/pip.log"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi -L
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name())"
cd benchmarks
echo "== annotation networks, speed"
timeout 150 python3 annotation_speed.py --device cuda --frames 8 2>&1 | grep -v Warning | tee "$OUT/annotation_speed.log" | tail -40
echo "== annotators trained on synthcity (GPU)"
timeout 240 python3 annotation_quality.py --device cuda --train 16 --val 4 --seg-minutes 1.2 --inst-minutes 1.3 \
    --workdir /tmp/aq 2>&1 | grep -v "step/s\|seq/s\|it/s" | tee "$OUT/annotation_quality.log" | tail -40
cp results/annotation_quality.json "$OUT/" 2>/dev/null
echo "== vid2vid trainer speed"
timeout 130 python3 train_speed.py --repeats 5 --cases "512x256 fp32" "512x256 bf16+cl b4" "1024x512 bf16+cl b4" 2>&1 \
    | tee "$OUT/train_speed.log" | tail -20
