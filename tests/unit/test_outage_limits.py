"""Issue 12: a server down 5 minutes → everything uploaded after. Nothing on the upload path may
expire within such an outage. The recorder's side retries for ever, at most RETRY_CAP apart
(tests/unit/test_segment_uploader.py); its token lives for days (recorder_token_ttl_days, a paired
token 7 days past the login). The server's side: the partial upload it holds must still be there when
the recorder comes back, whatever the administrator configured — so the expiry has a floor."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recorder_service.upload_rules import RETRY_CAP
from server.calls.segment_uploads import SegmentUploads
from server.errors import ConfigError
from server.settings import load_settings
from server.store.storage import LocalStorage
from tests.unit.segment_upload_world import declaration, upload_db

OUTAGE = 300.0


def test_an_upload_expiry_under_an_hour_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "tandem.toml"
    cfg.write_text("segment_upload_expiry_hours = 0.05\n")  # 3 minutes: shorter than the outage
    with pytest.raises(ConfigError, match="segment_upload_expiry_hours"):
        load_settings(cfg)
    cfg.write_text("segment_upload_expiry_hours = 1\n")
    assert load_settings(cfg).segment_upload_expiry_hours == 1.0


def test_the_shortest_expiry_keeps_a_partial_through_the_outage_and_one_retry(tmp_path: Path) -> None:
    cfg = tmp_path / "tandem.toml"
    cfg.write_text("segment_upload_expiry_hours = 1\n")
    expiry = load_settings(cfg).segment_upload_expiry_hours * 3600
    with upload_db(tmp_path) as sessions:
        now = [time.time()]
        uploads = SegmentUploads(
            sessions,
            LocalStorage(tmp_path / "s"),
            tmp_path / "up",
            expiry_seconds=expiry,
            clock=lambda: now[0],
        )
        upload, _ = uploads.create("i1", 1, None, declaration(b"x" * 100))
        now[0] += OUTAGE + 1.25 * RETRY_CAP  # the last byte before the cut .. the recorder's next try
        assert uploads.expire() == 0 and uploads.get(upload.id) is not None
