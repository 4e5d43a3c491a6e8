"""Re-measure the DDIM rows of `nfzoo bench diffusion` after DDIM began re-deriving its noise from the
clipped z0 (same models, seed, sample counts and code path as the bench; FID and Coverage only: the number
of U-Net calls, hence the time per sample, did not change). Writes ddim-rerun.json beside this file.

    python docs/results/diffused-flows-glow-latent/ddim_rerun.py

Historical (e26c138, 2026-11-26): it ran on the zoo's diffused-flows-mnist5k of that time, the glow-latent model of
this folder; the zoo's model of that name has since been replaced (b017ba1), so running it now measures
the new one.
"""
import json
from pathlib import Path

from nfzoo.data import load_dataset
from nfzoo.evaluation.metrics import coverage_density, dataset_features, fid, get_feature_extractor
from nfzoo.evaluation.oracle import find_oracle
from nfzoo.safeio import atomic_write_json
from nfzoo_diffused_flows import bench


def main() -> None:
    models = bench._models(False)
    test = load_dataset("mnist5k", "test")
    net, _ = find_oracle(None, "mnist5k")
    extractor, described = get_feature_extractor("oracle", net, "cpu")
    real = dataset_features(extractor, test)
    rows = []
    for case in bench._cases(models, False):
        if case.get("sampler") is None or case["full"]:
            continue
        feats, s100, bad = bench._run_case(case, models[case["model"]], extractor, bench.N, bench.BATCH)
        r = {"case": case["label"], "n_samples": bench.N, "nonfinite": bad, "fid": fid(real, feats),
             "fid_common": fid(real, feats[:bench.FULL_N]), **coverage_density(real, feats, 5),
             "s_per_100_this_run": s100}
        print(json.dumps(r), flush=True)
        rows.append(r)
    atomic_write_json(Path(__file__).with_name("ddim-rerun.json"), {"features": described, "rows": rows})


if __name__ == "__main__":
    main()
