"""The block registry: every generated block's id -> the function that renders it, filled by the block modules'
`@block(ID)` decorators when the package is imported (nfzoo_docs.render_docs imports every BLOCK_MODULES
module). A marker names a block as `ID` or `ID:MODEL`; a block registered with needs_model=True must have its
MODEL. A block function takes (the Results, the MODEL or None, the index's "models") and returns its lines."""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, Optional, Set

from .results import RenderError, Results

BlockFn = Callable[[Results, Optional[str], Dict[str, Any]], List[str]]
BLOCKS: Dict[str, BlockFn] = {}
NEEDS_MODEL: Set[str] = set()
# the modules that register blocks, one per family (the README's zoo tables and the cards' blocks, sample
# quality, model studies, the heads, speed, the papers)
BLOCK_MODULES = ("blocks_zoo", "blocks_samples", "blocks_glem", "blocks_diffusion", "blocks_heads", "blocks_speed",
                 "blocks_papers")


def block(block_id: str, needs_model: bool = False) -> Callable[[BlockFn], BlockFn]:
    """Register the decorated function as the renderer of block `block_id`. An id has one function: another
    function for it is an error (the same one again, from its module executed a second time, keeps the first)."""
    def register(fn: BlockFn) -> BlockFn:
        old = BLOCKS.get(block_id)
        if old is not None:
            if (old.__code__.co_filename, old.__qualname__) != (fn.__code__.co_filename, fn.__qualname__):
                raise ValueError(f"block {block_id!r} is registered twice: {old.__module__}.{old.__qualname__} "
                                 f"and {fn.__module__}.{fn.__qualname__}")
            return fn
        BLOCKS[block_id] = fn
        if needs_model:
            NEEDS_MODEL.add(block_id)
        return fn
    return register


def load_blocks() -> Dict[str, BlockFn]:
    """Import every block module (registering its blocks); the registry."""
    for name in BLOCK_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    return BLOCKS


def render_block(res: Results, block_id: str, where: str, index: Dict[str, Any]) -> List[str]:
    """The lines of one block (`ID` or `ID:MODEL`)."""
    name, _, arg = block_id.partition(":")
    if name not in BLOCKS:
        raise RenderError(f"{where}: unknown generated block {block_id!r} (known: {', '.join(sorted(BLOCKS))})")
    if name in NEEDS_MODEL and not arg:
        raise RenderError(f"{where}: block {name!r} needs a model: {name}:MODEL")
    return BLOCKS[name](res, arg or None, index)
