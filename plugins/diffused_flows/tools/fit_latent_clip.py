"""Set `latent_clip` of a Diffused-Flows model directory from its training split (what training does at its
end since the clip was added; for runs trained before it):

    python plugins/diffused_flows/tools/fit_latent_clip.py RUN_DIR --dataset mnist5k

Rewrites RUN_DIR/config.json (atomically); the weights are unchanged.
"""
import argparse

import nfzoo
from nfzoo.data import load_dataset
from nfzoo.flows.model import CONFIG_NAME
from nfzoo.safeio import atomic_write_json
from nfzoo_diffused_flows.models import fit_latent_clip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--dataset", required=True)
    a = ap.parse_args(argv)
    m = nfzoo.load(a.run)
    c = fit_latent_clip(m, load_dataset(a.dataset, "train"))
    m.config["latent_clip"] = c
    atomic_write_json(f"{a.run}/{CONFIG_NAME}", m.config_document())
    print(f"{a.run}: latent_clip = {c}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
