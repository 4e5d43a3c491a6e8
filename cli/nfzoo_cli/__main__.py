"""`python -m nfzoo_cli ARGS` is the `nfzoo` command; torchrun relaunches commands this way (--nproc)."""
from .app import main

if __name__ == "__main__":
    main()
