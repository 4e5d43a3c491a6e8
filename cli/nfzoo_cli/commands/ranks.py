"""Multi-process commands (sample, train, eval): `--nproc N` relaunches the running command on N
processes through torchrun (`python -m nfzoo_cli ...`), and each process finds its process group."""
from __future__ import annotations

from typing import Any, List, Optional

from ..toolkit import err, fail

MODULE = "nfzoo_cli"       # what torchrun runs: `python -m nfzoo_cli ARGS` is the `nfzoo` command


def command_argv(ctx: Any, drop=("nproc",), extra: Optional[dict] = None) -> List[str]:
    """The running command's arguments, rebuilt from click's parsed parameters (for torchrun to start
    the same command on N processes): those given on the command line, less `drop`, with `extra` values."""
    argv: List[str] = [ctx.info_name]
    extra = extra or {}
    for p in ctx.command.params:
        if p.name in drop:
            continue
        v = extra.get(p.name, ctx.params.get(p.name))
        src = ctx.get_parameter_source(p.name)
        if p.name not in extra and src is not None and src.name == "DEFAULT":
            continue
        if p.param_type_name == "argument":
            argv.append(str(v))
        elif getattr(p, "is_flag", False):
            if v:
                argv.append(p.opts[0])
        elif isinstance(v, (list, tuple)):
            for item in v:
                argv += [p.opts[0], str(item)]
        elif v is not None:
            argv += [p.opts[0], str(v)]
    return argv


def launch_ranks(nproc: int, argv: List[str]) -> None:
    """`--nproc N`: run the same command on N processes of this host through torchrun."""
    from nfzoo.distributed import env_world, launch

    if nproc < 1:
        fail(f"--nproc must be >= 1, got {nproc}")
    if env_world() > 1:
        fail("--nproc launches torchrun: do not pass it to a process torchrun started")
    err.print(f"launching {nproc} processes with torchrun", highlight=False)
    rc = launch(argv, nproc, module=MODULE)
    if rc == 143:
        fail("SIGTERM: the processes wrote a checkpoint and stopped; continue with the same command and "
             "--resume", 143)
    if rc != 0:
        fail(f"torchrun exited with status {rc} (the processes' messages are above)", 1)


def rank_context(device: str) -> Any:
    """This process's group (a nfzoo.distributed.DistContext) under torchrun, None on one process."""
    from nfzoo.distributed import context, env_world

    return context("cuda" if device.startswith("cuda") else "cpu") if env_world() > 1 else None
