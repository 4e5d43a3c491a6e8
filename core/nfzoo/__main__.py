"""`python -m nfzoo ...` is the `nfzoo` command (torchrun launches it this way)."""
from nfzoo_cli.app import main

if __name__ == "__main__":
    main()
