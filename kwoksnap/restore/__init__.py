"""Recreate a snapshot in a target cluster (``restore``) so that it *is* the snapshot, and stays it.

The mechanism (docs/design.md, "Restore"): controlled objects are created bottom-up without their controller
ownerReference and adopted by the target's own controllers; restored pods are marked ``kwoksnap.io/frozen`` so
kwok never resets their status; unscheduled pods carry a scheduling gate; other owner references are relinked
through an old->new UID map after their owners exist.
"""
