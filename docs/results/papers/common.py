"""The paper-table scripts' shared code moved to nfzoo_docs.papers (zoo/tools/nfzoo_docs/papers/: importable
without sys.path edits, by a script run as `python docs/results/papers/SCRIPT` and by a test alike); the
scripts import it as `from nfzoo_docs import papers as C`. This module re-exports it, for code that imports
`common` from this folder."""
from nfzoo_docs.papers import *  # noqa: F401,F403
from nfzoo_docs.papers import __all__  # noqa: F401
