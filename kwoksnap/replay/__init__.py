"""Re-drive recorded changes (audit logs or recordings) into a KWOK cluster on a faster clock.

``actions`` turns one audit event into one request (pure), ``timing`` owns speed, gaps, deadlines and lag,
``engine`` dispatches and reports, ``checks`` judges the target, ``recording`` stores parsed streams.
"""
