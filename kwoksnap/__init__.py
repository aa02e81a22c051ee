"""kwoksnap: capture a Kubernetes incident (cluster state + API audit log) and replay it, faster, in KWOK.

Package layout, one stage per sub-package (lower layers never import higher ones; see .importlinter):
``cli`` (the only click code) > ``capture`` / ``audit`` / ``restore`` / ``replay`` / ``cluster`` >
``store`` (the .kws file format) / ``kube`` (the only API-server code) > ``errors`` / ``clock`` / ``objects``.
Importing this package is cheap on purpose: ``kwoksnap --help`` must start fast.
"""

__version__ = "0.1.0"
