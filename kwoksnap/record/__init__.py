"""Live event streams in, a recording out: ``kwoksnap record``.

Why this package exists: ``convert`` turns audit logs someone kept into a recording; during an incident (or a test
run) the changes can be recorded as they happen instead, into the same .kws recording that ``replay`` reads. The
sources: an API server's audit log file as it grows (``audit-file``), the batches of its audit webhook backend
(``webhook``), and the API server's watch of the objects themselves (``watch``). Every source hands the same
:class:`~kwoksnap.audit.AuditEvent`s to one pipeline (:mod:`kwoksnap.record.pipeline`): put in time order within a
window, filtered as ``convert`` filters, Secrets redacted, written. Recording stops when asked (a stop event: the
CLI sets it on Ctrl-C, SIGTERM or ``--duration``), and the file is then closed whole.
"""
