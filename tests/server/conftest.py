"""The service most API and page tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from live_service import LiveService, run_service

from facesift.server import load_config


@pytest.fixture(scope="session")
def service(tmp_path_factory) -> Iterator[LiveService]:
    """The service most tests share: small limits so the 413 cases need no huge files."""
    config = load_config(
        data_dir=tmp_path_factory.mktemp("service"), max_upload_bytes=6_000_000, max_pixels=10_000_000,
        workers=2, queue_size=8, max_images=6,
    )
    with run_service(config) as live:
        yield live
