# Everything this project checks on a GPU, in one go (the device time of a loan is short):
# the CUDA tests, then `nfzoo bench cinc|sampling|scaling --device cuda`, JSON into OUTDIR.
# Run from the repository root on a CUDA machine: bash docs/results/gpu/check_all.sh OUTDIR
OUT=${1:-${OUT:-gpu-out}}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
source docs/results/gpu/setup_device.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.txt"
python3 -m pytest -q -p no:cacheprovider plugins/cinc/tests/test_cinc.py plugins/inverse_flow/tests/test_inverse_flow.py \
    -k cuda 2>&1 | tee "$OUT/pytest-cuda.log" | tail -6
for b in cinc sampling scaling; do
    timeout 200 nfzoo bench $b --device cuda --json > "$OUT/bench-$b-cuda.json" 2> "$OUT/bench-$b-cuda.log"
    echo "bench $b rc=$?"; tail -12 "$OUT/bench-$b-cuda.log"
done
