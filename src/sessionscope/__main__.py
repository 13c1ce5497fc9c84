"""``python -m sessionscope``: the same as the ``sessionscope`` command."""

from sessionscope.cli import main

main()
