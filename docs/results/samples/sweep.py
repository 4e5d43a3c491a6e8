"""The sample-quality sweep of the zoo: every embedded zoo model, every registered sampler that applies to
it, at temperatures 0.5, 0.7 and 1.0, measured by `nfzoo eval --samples N --seeds S --out FILE`:

    python docs/results/samples/sweep.py [--models a,b] [--samples 2000] [--seeds 5]   # measure
    python docs/results/samples/sweep.py --choose                                      # pick defaults

Each measurement is one file docs/results/samples/MODEL/SAMPLER-tT.json written by the nfzoo command that
measured it (its command line, date and commit inside): FID, Coverage, Density, the recognisable share and
the label reliability as mean +- sd over the seeds, the test bpd, and the non-finite samples counted over
all N x S samples. Flows draw 2000 samples x 5 seeds (10,000 per model, sampler and temperature).
Diffusion samplers sample at temperature 1 only, and on this CPU with 20 steps (DDIM with eta 1, and
DPM-Solver++) and 1000 samples x 2 seeds; their 1000-step ancestral sampler (about 200 s per 100 samples
here) is left out of the sweep. A class-conditional model whose sampler takes classifier-free guidance
(TarFlow) is also measured with the guidance weights of GUIDANCE (files SAMPLER-tT-guidanceW.json).

--choose reads the files and writes each model's default sampler, temperature and sampler options (the
lowest mean FID among the settings with no non-finite sample; for the diffusion models that is one of the
20-step settings, since the 1000-step ancestral one is not measured) into its config.json ("sampling", with
the file it came from), then refreshes the zoo index pins. `nfzoo info MODEL` shows the choice.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
TEMPERATURES = (0.5, 0.7, 1.0)
DIFFUSION_OPTIONS = {"ddim": ["--steps", "20", "--eta", "1"], "dpm-solver++": ["--steps", "20"]}
# class-conditional models of a sampler with classifier-free guidance: these guidance weights besides none,
# at these temperatures only (each setting costs 2 passes per step)
GUIDANCE = {"tarflow": {"weights": (1.0,), "temperatures": (0.8, 1.0)}}


def zoo_models():
    """Names of the embedded zoo flows (oracles left out)."""
    import nfzoo  # noqa: F401
    from nfzoo.registry.plugins import get_registry
    from nfzoo.loading.pretrained import resolve_pretrained

    return [e.name for e in get_registry().list("pretrained")
            if e.metadata.get("kind", "flow") == "flow" and resolve_pretrained(e.name).path]


def settings(name):
    """(sampler, temperature, extra CLI options) of every sampler that applies to the model."""
    import nfzoo
    from nfzoo.errors import UsageError
    from nfzoo.registry.plugins import get_registry

    m = nfzoo.load(name)
    out = []
    diffusion = m.architecture in ("ddpm", "diffused-flows")
    for entry in get_registry().list("samplers"):
        if diffusion and entry.name in ("ddpm-ancestral", "ancestral"):
            continue                      # 1000 U-Net steps per sample: out of this CPU's budget
        extra = DIFFUSION_OPTIONS.get(entry.name, [])
        for t in TEMPERATURES:
            try:
                opts = {"steps": 20} if extra else {}
                nfzoo.create_sampler(entry.name).check(m, temperature=t, **opts)
            except UsageError:
                continue
            out.append((entry.name, t, extra))
        guided = GUIDANCE.get(entry.name)
        if guided and m.num_classes is not None:
            for t in guided["temperatures"]:
                for w in guided["weights"]:
                    out.append((entry.name, t, ["--sampler-option", f"guidance={w:g}"]))
    return out


def path_of(name, sampler, t, extra=()):
    """docs/results/samples/NAME/SAMPLER-tT.json; a guided setting adds -guidanceW."""
    tag = "".join(f"-{o.replace('=', '')}" for o in extra[1::2]) if extra[:1] == ["--sampler-option"] else ""
    return HERE / name / f"{sampler}-t{t:g}{tag}.json"


def measure(names, samples, seeds, force, samplers=None):
    for name in names:
        for sampler, t, extra in settings(name):
            if samplers and sampler not in samplers:
                continue
            target = path_of(name, sampler, t, extra)
            if target.exists() and not force:
                print(f"have {target.relative_to(ROOT)}", flush=True)
                continue
            diffusion = sampler in DIFFUSION_OPTIONS
            n, s = (1000, 2) if diffusion else (samples, seeds)
            cmd = ["nfzoo", "eval", name, "--dataset", "mnist5k", "--samples", str(n), "--seeds", str(s),
                   "--temperature", f"{t:g}", "--sampler", sampler, *extra,
                   "--out", str(target.relative_to(ROOT))]
            print(" ".join(cmd), flush=True)
            exe = Path(sys.executable).with_name("nfzoo")
            subprocess.run([str(exe), *cmd[1:]], cwd=ROOT, check=True)


def choose(names):
    """Each model's best measured (sampler, temperature, options): lowest mean FID with zero non-finite
    samples."""
    from nfzoo.evaluation.results import measured_sampler_options
    from nfzoo.safeio import atomic_write_json

    zoo = ROOT / "zoo" / "nfzoo_zoo" / "models"
    for name in names:
        best = None
        for f in sorted((HERE / name).glob("*.json")):
            doc = json.loads(f.read_text())
            if doc["nonfinite_samples"]:
                continue
            options = measured_sampler_options(doc)
            fid = doc["summary"]["fid"]["mean"] if "summary" in doc else doc["fid"]
            if best is None or fid < best[0]:
                best = (fid, doc["sampler"], doc["temperature"], f.relative_to(ROOT).as_posix(), options)
        if best is None:
            print(f"{name}: no measurement without non-finite samples; nothing chosen", file=sys.stderr)
            continue
        cfg_path = zoo / name / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["sampling"] = {"sampler": best[1], "temperature": best[2], **({"options": best[4]} if best[4] else {}),
                           "source": best[3]}
        atomic_write_json(cfg_path, cfg)
        subprocess.run([sys.executable, str(ROOT / "zoo" / "tools" / "update_index.py"), name], cwd=ROOT,
                       check=True)
        print(f"{name}: {best[1]} {best[4] or ''} at T={best[2]:g} (FID {best[0]:.2f}; {best[3]})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", help="comma-separated zoo names [all embedded flows]")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--samplers", help="comma-separated sampler names [every one that applies]")
    ap.add_argument("--force", action="store_true", help="measure again where a file exists")
    ap.add_argument("--choose", action="store_true", help="write the measured defaults into the zoo configs")
    a = ap.parse_args(argv)
    names = a.models.split(",") if a.models else zoo_models()
    if a.choose:
        choose(names)
    else:
        measure(names, a.samples, a.seeds, a.force, a.samplers.split(",") if a.samplers else None)


if __name__ == "__main__":
    main()
