#!/bin/bash
# The three diffused-flows objectives on one budget (digits, 40 epochs each); see README.md beside this script
cd "$(dirname "$0")/../../.."   # the repository root
NF=.venv/bin/nfzoo
mkdir -p runs/objectives
export OMP_NUM_THREADS=1
[ -f runs/objectives/oracle-digits/config.json ] || $NF train-oracle --dataset digits --epochs 20 --out runs/objectives/oracle-digits --json > runs/objectives/oracle.json
for obj in elbo two-stage paper; do
  [ -f runs/objectives/$obj/history.json ] && [ "$(python3 -c "import json;print(len(json.load(open('runs/objectives/$obj/history.json'))))")" = 40 ] && continue
  $NF train diffused-flows --dataset digits --epochs 40 --batch-size 64 --lr 1e-3 --lr-schedule cosine --grad-clip 1 \
     --set objective=$obj --set levels=2 --set steps=4 --set hidden=32 --set unet_channels='[16,32]' --seed 0 \
     --out runs/objectives/$obj > runs/objectives/$obj.log 2>&1 || echo "$obj stopped: see runs/objectives/$obj.log"   # paper: NaN at step 79
done
for obj in elbo two-stage; do .venv/bin/python plugins/diffused_flows/tools/fit_latent_clip.py runs/objectives/$obj --dataset digits; done
for obj in elbo two-stage paper; do
  $NF eval runs/objectives/$obj --dataset digits --samples 360 --sampler ddim --steps 50 --oracle runs/objectives/oracle-digits --json > runs/objectives/$obj-eval.json
done
