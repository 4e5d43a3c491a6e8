# The Triton kernel compiled on a GPU: the CUDA tests, then `nfzoo bench cinc` and `nfzoo bench sampling`
# on the GPU. Run from the repository root on a CUDA machine: bash docs/results/gpu/check_kernels.sh OUTDIR
OUT=${1:-${OUT:-gpu-out}}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
source docs/results/gpu/setup_device.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.txt"
python3 -m pytest -q -p no:cacheprovider plugins/cinc/tests/test_cinc.py plugins/inverse_flow/tests/test_inverse_flow.py \
    -k cuda 2>&1 | tee "$OUT/pytest-cuda.log" | tail -15
timeout 240 nfzoo bench cinc --device cuda --json > "$OUT/bench-cinc-cuda.json" 2> "$OUT/bench-cinc-cuda.log"; echo "bench cinc rc=$?"
tail -25 "$OUT/bench-cinc-cuda.log"
timeout 150 nfzoo bench sampling --device cuda --json > "$OUT/bench-sampling-cuda.json" 2> "$OUT/bench-sampling-cuda.log"; echo "bench sampling rc=$?"
tail -20 "$OUT/bench-sampling-cuda.log"
