# Diffused-Flows / DDPM trainings that a 2-core CPU cannot afford, run in parallel on one GPU within a
# short device lease. From the repository root on a CUDA machine, with runs/e1/glow-1x2 carried (the
# shallow glow, trained on the CPU by `nfzoo train glow --dataset mnist5k --epochs 20 --lr 1e-3
# --lr-schedule cosine --grad-clip 1 --set levels=1 --set steps=2 --set hidden=32 --seed 0`):
#   bash docs/results/diffused-flows-gpu/run.sh OUTDIR [SECONDS]
# Each training stops at SECONDS (SIGTERM: nfzoo writes a checkpoint); one tar per run comes back.
OUT=${1:-${OUT:-gpu-out}}
LIMIT=${2:-170}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
source docs/results/gpu/setup_device.sh
C="--dataset mnist5k --lr 1e-3 --lr-schedule cosine --grad-clip 1 --device cuda --seed 0"
# g1: the thesis's flow as near as 28x28 allows, end to end (glow 2 levels x 8 steps, hidden 64, 2 resnet
# blocks, T = 500; the thesis had 3 levels, which needs sides divisible by 8)
timeout $LIMIT nfzoo train diffused-flows $C --epochs 100 --batch-size 128 --set levels=2 --set steps=8 \
    --set hidden=64 --set blocks=2 --set timesteps=500 --out /tmp/g1 > "$OUT/g1.log" 2>&1 &
# g3: the shallow two-stage model (runs/e1 on the CPU: 60 epochs) for 200 epochs
timeout $LIMIT nfzoo train diffused-flows $C --epochs 200 --set objective=two-stage --set init_flow=runs/e1/glow-1x2 \
    --set levels=1 --set steps=2 --set hidden=32 --set timesteps=1000 --out /tmp/g3 > "$OUT/g3.log" 2>&1 &
# g4: ddpm with the zoo recipe, 200 epochs (g3's baseline at the same budget)
timeout $LIMIT nfzoo train ddpm $C --epochs 200 --out /tmp/g4 > "$OUT/g4.log" 2>&1 &
wait
for r in g1 g3 g4; do
    ck=$(ls -d /tmp/$r/checkpoints/step-* 2>/dev/null | tail -1)
    tar -cf "$OUT/$r.tar" -C /tmp $(cd /tmp && ls $r/*.json $r/model.safetensors 2>/dev/null) \
        $( [ -n "$ck" ] && echo "${ck#/tmp/}/model.safetensors" )
    tail -c 400 "$OUT/$r.log" | tr '\r' '\n' | tail -3
done
ls -la "$OUT"
