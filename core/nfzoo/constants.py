"""The file names, prefixes and defaults that the zoo, the Hub code and the model I/O share; torch-free.

A pretrained model is a folder (or a Hub repo) holding `CONFIG_NAME` and `WEIGHTS_NAME` (`REQUIRED`), and
usually a `CARD_NAME` model card. Importing this module imports nothing else.
"""
from __future__ import annotations

HF_PREFIX = "hf-hub:"                  # `hf-hub:ORG/NAME[@REV]` names a Hub repo directly
CONFIG_NAME = "config.json"            # architecture + config: what rebuilds the model
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"                # the Hub's model card
REQUIRED = (CONFIG_NAME, WEIGHTS_NAME)
DEFAULT_ENDPOINT = "https://huggingface.co"
ZOO_KEYS = ("repo_id", "status", "files", "path")   # a pretrained entry with any of these pins Hub files
TIMEOUT_ENV = "NFZOO_HUB_TIMEOUT"
DEFAULT_TIMEOUT = 30.0                 # seconds, when TIMEOUT_ENV is unset
MAX_REVISION_LENGTH = 255
GRID_MAX = 1024                        # the most images one PNG grid holds (sample --out FILE.png, a folder's grid.png)
