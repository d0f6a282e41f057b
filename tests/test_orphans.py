"""Stored files nothing refers to are swept after a day; shared and fresh ones stay."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from core.attachments import Storage
from core.models import IdentityKind
from core.orphans import GRACE_SECONDS, sweep_orphans
from core.raw import RawOriginal, raw_storage
from core.services import tickets
from core.services.tickets import Identity
from core.state import loket


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_orphan_files_are_swept_after_a_day_and_used_ones_stay(ctx: Any) -> None:
    storage = Storage(loket().config["attachments_path"])
    used = storage.save_bytes(b"%PDF-1.4 a statement", "statement.pdf", max_bytes=10_000,
                              allowed_types=["application/pdf"])
    orphan = storage.save_bytes(b"%PDF-1.4 refused submission", "x.pdf", max_bytes=10_000,
                                allowed_types=["application/pdf"])
    fresh = storage.save_bytes(b"%PDF-1.4 being submitted now", "y.pdf", max_bytes=10_000,
                               allowed_types=["application/pdf"])
    result = tickets.receive_message(
        channel="email", identity=Identity(IdentityKind.EMAIL, "a@example.test"), text="see pdf",
        external_id="<m1@example.test>", attachments=[used],
        raw=RawOriginal(b"From: a@example.test\r\n\r\nsee pdf", "message/rfc822"))
    stray_raw = raw_storage().put(b"a webhook body whose message was refused")
    kept_raw = result.message.raw_path
    for sha in (used.sha256, orphan.sha256):
        _age(storage.path_for(sha), GRACE_SECONDS + 60)
    for sha in (stray_raw, kept_raw):
        _age(raw_storage().path_for(sha), GRACE_SECONDS + 60)

    assert sweep_orphans() == {"attachments": 1, "raw": 1}
    assert storage.path_for(used.sha256).exists()
    assert not storage.path_for(orphan.sha256).exists()
    assert storage.path_for(fresh.sha256).exists()  # younger than a day: maybe in flight
    assert raw_storage().path_for(kept_raw).exists()
    assert not raw_storage().path_for(stray_raw).exists()
    assert sweep_orphans() == {"attachments": 0, "raw": 0}


def test_a_file_uploaded_again_is_fresh_again(ctx: Any) -> None:
    storage = Storage(loket().config["attachments_path"])
    first = storage.save_bytes(b"%PDF-1.4 same bytes", "a.pdf", max_bytes=10_000,
                               allowed_types=["application/pdf"])
    _age(storage.path_for(first.sha256), GRACE_SECONDS + 60)
    storage.save_bytes(b"%PDF-1.4 same bytes", "b.pdf", max_bytes=10_000,
                       allowed_types=["application/pdf"])
    assert sweep_orphans()["attachments"] == 0
    assert storage.path_for(first.sha256).exists()
