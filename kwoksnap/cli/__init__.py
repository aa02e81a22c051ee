"""The command line: the only package that imports click.

Each command lives in its own module, validates its options, builds a settings object and calls one library
function. Options used by several commands are defined once in :mod:`kwoksnap.cli.options`. Errors are turned
into messages and exit codes in exactly one place, :func:`kwoksnap.cli.main.main`.
"""
