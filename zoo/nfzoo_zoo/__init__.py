"""nfzoo's model zoo: one folder per pretrained model under models/ (config.json, README.md model card,
model.safetensors when small enough to embed) and index.json, which pins each model's Hub repo, revision
and the sha256 of every file. `plugin.py` registers the entries with nfzoo (json only, no torch)."""

__version__ = "0.2.0"
