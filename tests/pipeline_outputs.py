"""The images (and eval's sample metrics) that `nfzoo sample`, `nfzoo eval --samples` and the gallery give for
fixed settings: what tests/test_sampling_pipeline.py compares with pipeline_references.safetensors / .json,
stored before the sampling pipeline moved into the library (issue 36: the images must stay bit-identical).

    OMP_NUM_THREADS=1 python tests/pipeline_outputs.py      # rewrites the references (only before a change!)
"""
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).parent
IMAGES = HERE / "pipeline_references.safetensors"
NUMBERS = HERE / "pipeline_references.json"

SAMPLE_CASES = {        # name -> `nfzoo sample` arguments (a grid, or a folder)
    "inverse-flow-default": ["--model", "inverse-flow", "-n", "16", "--seed", "3"],
    "glow-t0.5": ["--model", "glow-mnist5k", "-n", "8", "--temperature", "0.5", "--seed", "1"],
    "glem-per-class": ["--model", "glem-mnist5k", "-n", "2", "--per-class", "--seed", "0"],
    "glem-label": ["--model", "glem-mnist5k", "-n", "4", "--label", "7", "--seed", "5"],
    "ddpm-ddim4": ["--model", "ddpm-mnist5k", "--sampler", "ddim", "--steps", "4", "-n", "4", "--seed", "2"],
    "tarflow-cond": ["--model", "tarflow-mnist5k-cond", "-n", "4", "--seed", "0"],
    "realnvp-dir": ["--model", "realnvp-mnist5k", "-n", "6", "--seed", "4", "DIR"],
}
GALLERY_CASES = {
    "gallery-inverse-flow": {"model": "inverse-flow-mnist5k", "n": 16, "seed": 3},
    "gallery-glem-per-class": {"model": "glem-mnist5k", "n": 2, "per_class": "true", "seed": 0},
    "gallery-ddpm-ddim4": {"model": "ddpm-mnist5k", "sampler": "ddim", "steps": 4, "n": 4, "seed": 2},
}
EVAL_ARGS = ["eval", "inverse-flow-mnist5k", "--dataset", "mnist5k", "--samples", "100", "--seed", "1", "--json"]


def png_pixels(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(io.BytesIO(data))).copy())


def sample_outputs() -> dict:
    from typer.testing import CliRunner

    from nfzoo_cli.app import build_app

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in SAMPLE_CASES.items():
            args = list(args)
            if args[-1] == "DIR":
                target = Path(tmp) / name
                args = args[:-1] + ["--out", str(target)]
            else:
                target = Path(tmp) / f"{name}.png"
                args = args + ["--out", str(target)]
            res = CliRunner().invoke(build_app(), ["sample", *args])
            assert res.exit_code == 0, (name, res.output)
            if target.is_dir():
                for i, p in enumerate(sorted(target.glob("0*.png"))):
                    out[f"{name}-{i}"] = png_pixels(p.read_bytes())
                out[f"{name}-grid"] = png_pixels((target / "grid.png").read_bytes())
            else:
                out[name] = png_pixels(target.read_bytes())
    return out


def gallery_outputs() -> dict:
    import base64

    from fastapi.testclient import TestClient

    from nfzoo_gallery import create_app

    out = {}
    with TestClient(create_app(capacity=3)) as c:
        for name, form in GALLERY_CASES.items():
            r = c.post("/api/sample", data=form)
            assert r.status_code == 200, r.text
            out[name] = png_pixels(base64.b64decode(r.json()["image"].split(",", 1)[1]))
    return out


def eval_numbers() -> dict:
    from typer.testing import CliRunner

    from nfzoo_cli.app import build_app

    res = CliRunner().invoke(build_app(), EVAL_ARGS)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout[res.stdout.index("{"):])
    return {k: v for k, v in doc.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and "second" not in k and not k.endswith("_s")}


if __name__ == "__main__":
    from safetensors.torch import save_file

    images = {**sample_outputs(), **gallery_outputs()}
    save_file({k: v.contiguous() for k, v in images.items()}, str(IMAGES))
    NUMBERS.write_text(json.dumps({"eval": eval_numbers(), "eval_args": EVAL_ARGS}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {IMAGES.name} ({len(images)} images) and {NUMBERS.name}", file=sys.stderr)
