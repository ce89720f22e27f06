#!/bin/bash
# One call on a lent GPU machine (the device tool): install the carried wheels (.whl/, py3.12:
# jsonschema, ptlflow and what they need beside the image's torch), time the annotation networks,
# then train the annotators on synthcity side by side on the one GPU: the segmenter with the
# schema's recipe (batch 8), with batch 32 and with batch 64, and the Mask R-CNN, each for $MINUTES.
# Logs and JSON results go to $OUT/gpu_session.tgz (the device tool brings back at most 8 files).
# Usage there: bash benchmarks/gpu_session.sh
#   MINUTES (3.5)  TRAIN / VAL sequences (96 / 4)  DEVICE (cuda)  SPEED (1: run annotation_speed)
#   TRAIN_SPEED (0; 1: the vid2vid trainer's speed too, train_speed.py)
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_out}
MINUTES=${MINUTES:-3.5}
TRAIN=${TRAIN:-96}
VAL=${VAL:-4}
DEVICE=${DEVICE:-cuda}
SPEED=${SPEED:-1}
WORK=${WORK:-/tmp/aq}
LOGS=$WORK/logs
mkdir -p "$OUT" "$LOGS"
trap 'tar czf "$OUT/gpu_session.tgz" -C "$LOGS" .' EXIT
WHEELS=${WHEELS:-.whl}
if [ -d "$WHEELS" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
        > "$LOGS/pip.log" 2>&1 || { cat "$LOGS/pip.log"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
nvidia-smi -L 2>/dev/null
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__,
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
cd benchmarks
if [ "$SPEED" = 1 ]; then
    echo "== annotation networks, speed ($(date +%T))"
    timeout 150 python3 annotation_speed.py --device "$DEVICE" --frames 8 2>&1 | grep -v Warning \
        | tee "$LOGS/annotation_speed.log" | tail -40
fi
echo "== synthcity for the annotators: $TRAIN + $VAL sequences ($(date +%T))"
common=(--device "$DEVICE" --train "$TRAIN" --val "$VAL" --seg-minutes "$MINUTES" --inst-minutes "$MINUTES")
python3 annotation_quality.py "${common[@]}" --skip-segmenter --skip-instances --workdir "$WORK/data" \
    --results "$WORK/build.json" > "$LOGS/build.log" 2>&1 || { tail -20 "$LOGS/build.log"; exit 1; }
for run in b8 b32 b64 maskrcnn; do rm -rf "${WORK:?}/$run"; cp -al "$WORK/data" "$WORK/$run"; done
echo "== four trainings side by side, $MINUTES minutes each ($(date +%T))"
export OMP_NUM_THREADS=$(( ($(nproc) + 3) / 4 )) TQDM_DISABLE=1  # progress bars: the INFO lines say it
run() {  # name, arguments
    local name=$1; shift
    python3 annotation_quality.py "${common[@]}" --workdir "$WORK/$name" --results "$LOGS/quality_$name.json" "$@" \
        2>&1 | grep -v "step/s\|seq/s\|it/s" > "$LOGS/quality_$name.log"
}
run b8 --skip-instances &
run b32 --skip-instances --seg-batch 32 --seg-lr 0.004 &
run b64 --skip-instances --seg-batch 64 --seg-lr 0.004 &
run maskrcnn --skip-segmenter &
wait
echo "== done ($(date +%T))"
for run in b8 b32 b64 maskrcnn; do echo "-- $run"; grep -v "^\s*$" "$LOGS/quality_$run.log" | tail -30; done
if [ "${TRAIN_SPEED:-0}" = 1 ]; then
    echo "== vid2vid trainer speed ($(date +%T))"
    timeout 130 python3 train_speed.py --repeats 5 --cases "512x256 fp32" "512x256 bf16+cl b4" "1024x512 bf16+cl b4" 2>&1 \
        | tee "$LOGS/train_speed.log" | tail -20
fi
