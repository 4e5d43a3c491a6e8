"""`python -m nfzoo` is not the command line: the core does not know the CLI (a package of its own).
It says where the command is and exits 2."""
import sys

if __name__ == "__main__":
    sys.stderr.write("error: nfzoo is the library; run the `nfzoo` command, or `python -m nfzoo_cli`\n")
    sys.exit(2)
