"""``python -m kwoksnap``: the same entry point as the ``kwoksnap`` console script."""

from kwoksnap.cli.main import entry

entry()
