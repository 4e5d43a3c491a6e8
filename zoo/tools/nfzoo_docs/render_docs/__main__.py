"""`python -m nfzoo_docs.render_docs [--check] [--root DIR]`: the same command as zoo/tools/render_docs.py."""
import sys

from nfzoo_docs.render_docs import main

if __name__ == "__main__":
    sys.exit(main())
