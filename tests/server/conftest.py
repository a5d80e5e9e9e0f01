"""The service most API and page tests share, and the real headless Chromium the page tests drive."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_service import LiveService, run_service
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService

from facesift.server import load_config

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def service(tmp_path_factory) -> Iterator[LiveService]:
    """The service most tests share: small limits so the 413 cases need no huge files."""
    config = load_config(
        data_dir=tmp_path_factory.mktemp("service"), max_upload_bytes=6_000_000, max_pixels=10_000_000,
        workers=2, queue_size=8, max_images=6,
    )
    with run_service(config) as live:
        yield live


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[webdriver.Chrome]:
    """Debian's chromium through its chromedriver (no driver downloads), one per test module."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} missing: apt-get install chromium chromium-driver (scripts/test.sh does)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium must never try to download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1280,2400",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
