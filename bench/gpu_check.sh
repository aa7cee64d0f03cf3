#!/usr/bin/env bash
# GPU check, run on a lent GPU host from the repo root (see bench/RESULTS.md, "GPU").
# Needs: python3 with torch (CUDA) and transformers; .gpu/model (Gemma 3 270M config and
# tokenizer, no weights) and .gpu/corpus (text) carried from the dev machine; $OUT for results.
#   1. the tiny-model exactness, intervention and training tests with every tensor on CUDA;
#   2. a Gemma-3-270M-shaped model with random weights (the real weights do not travel):
#      trainer throughput, a short CLI training run with eval, and trace timings on CUDA.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 GLASSBOX_HOME=/tmp/gbhome OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi -L
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"

GLASSBOX_TEST_DEVICE=cuda timeout "${TEST_S:-150}" python3 -m pytest -q -p no:cacheprovider -o addopts= \
  tests/test_attribution.py tests/test_interventions.py tests/test_training.py > "$OUT/tests.log" 2>&1
echo "tests rc=$?"; tail -25 "$OUT/tests.log"

python3 - <<'PY'
import shutil, torch
from transformers import AutoConfig, AutoModelForCausalLM
cfg = AutoConfig.from_pretrained(".gpu/model")
torch.manual_seed(0)
m = AutoModelForCausalLM.from_config(cfg).to(torch.bfloat16)
m.save_pretrained("/tmp/g270")
for f in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]:
    shutil.copy(f".gpu/model/{f}", "/tmp/g270/")
print("random Gemma-3-270M-shaped model saved")
PY

for bs in 64; do
  timeout 120 python3 bench/train_bench.py --model /tmp/g270 --corpus .gpu/corpus --device cuda \
    --batch-size $bs --steps 5 --warmup 2 --json "$OUT/train_bench_bs$bs.json" 2>&1 | grep -v Loading
done

timeout "${TRAIN_S:-120}" python3 -m glassbox transcoders train -m /tmp/g270 -c .gpu/corpus -o /tmp/tc \
  --tokens 400k --batch-size 64 --device cuda --quiet > "$OUT/train.log" 2>&1
echo "train rc=$?"; tail -30 "$OUT/train.log"; cp /tmp/tc/metrics.json "$OUT/" 2>/dev/null

for cfg in "64 1000" "64 null" "256 1000"; do
  set -- $cfg
  timeout 90 python3 bench/trace_bench.py --one "{\"model\": \"/tmp/g270\", \"transcoders\": \"/tmp/tc\", \"device\": \"cuda\", \"dtype\": \"float32\", \"n_tokens\": $1, \"max_feature_nodes\": $2}" 2>&1 | tail -1
done
