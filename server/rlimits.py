"""Raise this process's open-files limit: every recorded stream holds two sockets (RTP, RTCP) and
every call a voice file, so 1,000 calls need ~5,000 descriptors, and Debian's default soft limit
is 1,024. The soft limit goes up to the hard one (no privilege needed); what was possible is
logged, so a refused call for lack of descriptors is explained in the log."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

WANTED_OPEN_FILES = 65536


def raise_open_files_limit(wanted: int = WANTED_OPEN_FILES) -> int | None:
    """Raise RLIMIT_NOFILE's soft limit towards ``wanted`` (capped by the hard limit); return the
    soft limit now in force, or None where the platform has no such limit (Windows)."""
    try:
        import resource
    except ImportError:  # Windows: no rlimits, and no 1,024 default either
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, target, exc)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "open-files limit is %d (hard %d): about %d concurrent recorded calls at most",
            soft,
            hard,
            soft // 5,
        )
    return soft
