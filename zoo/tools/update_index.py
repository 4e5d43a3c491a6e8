"""Add or update a model of the zoo from a training run, and recompute the sha256 pins of the index.

    python zoo/tools/update_index.py NAME --from RUN_DIR [--dataset DS] [--metrics JSON] [--default] ...
    python zoo/tools/update_index.py NAME --revision SHA        # after `nfzoo push`: pin the Hub commit
    python zoo/tools/update_index.py NAME --no-embed            # keep the pins, drop the weights

--from copies config.json and model.safetensors from RUN_DIR (a `nfzoo train` run or a save_pretrained
folder) into zoo/nfzoo_zoo/models/NAME/ and takes architecture, config, dataset and test bpd from it;
new weights reset the revision to null (unpublished) unless --revision is given. A README.md model card
is written when the folder has none, or when the one there was generated (it carries the
`nfzoo:generated-card` line); --card FILE copies a hand-written one. Every write is atomic.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nfzoo.constants import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME
from nfzoo.hub.names import is_commit
from nfzoo.hub.publish import GENERATED_MARK, check_safetensors, model_card, run_info
from nfzoo.safeio import atomic_write_bytes, atomic_write_json, sha256_file

ZOO = Path(__file__).resolve().parent.parent / "nfzoo_zoo"
FIELDS = ("kind", "architecture", "config", "dataset", "metrics", "repo_id", "revision", "files", "license", "paper",
          "recipe",
          "description", "default", "status")


def pin_files(folder: Path, files=None, names=(CONFIG_NAME, WEIGHTS_NAME, CARD_NAME)) -> dict:
    """The sha256 pins of a zoo entry: `files` (the entry's pins, name -> sha256) with every one of `names`
    that exists in `folder` hashed again, sorted by name. zoo/tools/render_docs.py refreshes a card's pin
    with it."""
    pins = dict(files or {})
    for name in names:
        if (folder / name).is_file():
            pins[name] = sha256_file(folder / name)
    return dict(sorted(pins.items()))


def main(argv=None) -> int:
    """The command line above; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", help="pretrained model name, <arch>-<dataset> (e.g. glow-mnist5k)")
    ap.add_argument("--from", dest="run", type=Path,
                    help="run directory with config.json + model.safetensors")
    ap.add_argument("--dataset")
    ap.add_argument("--metrics", help='JSON object, e.g. \'{"test_bpd": 1.05}\' (merged over the run\'s)')
    ap.add_argument("--architecture")
    ap.add_argument("--repo-id", help="Hub repo [default: nfzoo/NAME]")
    ap.add_argument("--revision", help="the Hub commit sha the files are published at")
    ap.add_argument("--license")
    ap.add_argument("--paper")
    ap.add_argument("--description")
    ap.add_argument("--default", action="store_true", help="make it the default model of its architecture")
    ap.add_argument("--no-embed", action="store_true", help="remove model.safetensors from the package "
                    "(too big to ship); its pin stays, the weights come from the Hub")
    ap.add_argument("--card", type=Path, help="a README.md model card to use")
    ap.add_argument("--zoo", type=Path, default=ZOO, help="the nfzoo_zoo package folder [default: this zoo]")
    a = ap.parse_args(argv)

    index_path = a.zoo / "index.json"
    index = json.loads(index_path.read_text())
    models = index.setdefault("models", {})
    if a.name not in models and a.run is None:
        ap.error(f"{a.name} is not in {index_path}: add it with --from RUN_DIR")
    entry = dict(models.get(a.name, {}))
    folder = a.zoo / "models" / a.name
    folder.mkdir(parents=True, exist_ok=True)

    info = {k: entry.get(k) for k in ("architecture", "config", "dataset", "metrics", "license", "paper",
                                      "description", "kind")}
    if a.run is not None:
        run = run_info(a.run)
        check_safetensors(a.run / WEIGHTS_NAME)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            atomic_write_bytes(folder / name, (a.run / name).read_bytes())
        info.update({k: run[k] for k in ("architecture", "config", "kind")})
        info["dataset"] = run["dataset"] or info.get("dataset")
        info["metrics"] = {**(info.get("metrics") or {}), **run["metrics"]}
        if a.revision is None:
            entry["revision"] = None  # new weights are not published yet
    if a.metrics:
        info["metrics"] = {**(info.get("metrics") or {}), **json.loads(a.metrics)}
    for k in ("dataset", "architecture", "license", "paper", "description"):
        if getattr(a, k) is not None:
            info[k] = getattr(a, k)
    info["license"] = info.get("license") or "mit"
    info["metrics"] = info.get("metrics") or {}
    if not info.get("architecture") or not isinstance(info.get("config"), dict):
        ap.error("the architecture and config are unknown: pass --from RUN_DIR")
    if a.revision is not None:
        if not is_commit(a.revision):
            ap.error(f"--revision must be a 40-hex commit sha (what `nfzoo push` prints), got {a.revision!r}")
        entry["revision"] = a.revision
    repo_id = a.repo_id or entry.get("repo_id") or f"nfzoo/{a.name}"

    card = folder / CARD_NAME
    if a.card is not None:
        atomic_write_bytes(card, a.card.read_bytes())
    elif not card.is_file() or GENERATED_MARK in card.read_text():
        atomic_write_bytes(card, model_card(a.name, info, repo_id, zoo_name=a.name).encode())

    files = pin_files(folder, entry.get("files"))
    if WEIGHTS_NAME not in files:
        ap.error(f"no {WEIGHTS_NAME} for {a.name}: pass --from RUN_DIR")
    if a.no_embed and (folder / WEIGHTS_NAME).is_file():
        (folder / WEIGHTS_NAME).unlink()
    embedded = (folder / WEIGHTS_NAME).is_file()

    entry.update(info)
    entry.update(repo_id=repo_id, files=files, revision=entry.get("revision"),
                 paper=info.get("paper"), default=bool(entry.get("default")) or a.default,
                 status="embedded" if embedded else ("hub" if entry.get("revision") else "unpublished"))
    if a.default:
        for other, e in models.items():
            if other != a.name and e.get("architecture") == entry["architecture"]:
                e["default"] = False
    models[a.name] = {k: entry.get(k) for k in FIELDS}
    index["models"] = dict(sorted(models.items()))
    atomic_write_json(index_path, index)
    print(f"{a.name}: {models[a.name]['status']}, revision {models[a.name]['revision']}, "
          + ", ".join(f"{k} {v[:12]}" for k, v in models[a.name]["files"].items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
