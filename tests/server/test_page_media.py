"""The page's video and photo-grouping sections in the real headless Chromium (the browser of test_page.py)."""

from __future__ import annotations

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait
from test_page import wait_for_text


def test_video_timeline_and_photo_groups(browser, service, faces, first_second_clip):
    made = requests.post(service.url + "/v1/galleries", headers=service.auth(), json={"name": "page-media"}, timeout=30)
    assert made.status_code in (201, 409)
    photo = faces / "video" / "lin-manuel-miranda.png"
    requests.post(f"{service.url}/v1/galleries/page-media/persons/lin-manuel-miranda/samples", headers=service.auth(),
                  files=[("images", (photo.name, photo.read_bytes(), "image/png"))], timeout=120)
    browser.get(service.url + "/")
    browser.execute_script("sessionStorage.setItem('facesift-key', arguments[0])", service.admin_key)
    browser.get(service.url + "/")
    WebDriverWait(browser, 60).until(ready.visibility_of_element_located((By.ID, "video")))
    WebDriverWait(browser, 30).until(lambda d: "page-media" in d.find_element(By.ID, "gallery-select").text)
    Select(browser.find_element(By.ID, "gallery-select")).select_by_value("page-media")

    browser.find_element(By.ID, "video-file").send_keys(str(first_second_clip))
    browser.find_element(By.ID, "video-btn").click()
    assert "tracks in" in wait_for_text(browser, "#video-summary", "tracks in", timeout=600)
    known = browser.find_elements(By.CSS_SELECTOR, "#video-result li.known")
    assert known and "lin-manuel-miranda" in known[0].text
    assert browser.execute_script("return [...document.querySelectorAll('#video-result img')].every(i => i.complete && i.naturalWidth > 0)")

    johns = sorted((faces / "johns").iterdir())[:2]
    photos = [str(p) for person in johns for p in sorted(person.iterdir())[:3]]
    browser.find_element(By.ID, "cluster-name").clear()
    browser.find_element(By.ID, "cluster-name").send_keys("page-photos")
    browser.find_element(By.ID, "cluster-files").send_keys("\n".join(photos))
    browser.find_element(By.ID, "cluster-add").click()
    assert "6 faces in 2 groups" in wait_for_text(browser, "#cluster-summary", "groups", timeout=300)
    for box in browser.find_elements(By.CSS_SELECTOR, "#cluster-result .cluster input[type=checkbox]"):
        box.click()
    browser.find_element(By.ID, "cluster-merge").click()
    assert "6 faces in 1 groups" in wait_for_text(browser, "#cluster-summary", "1 groups")
    browser.find_element(By.CSS_SELECTOR, "#cluster-result .cluster input[placeholder]").send_keys("johns")
    browser.find_element(By.XPATH, "//div[@id='cluster-result']//button[text()='Confirm']").click()
    WebDriverWait(browser, 60).until(lambda d: "johns ✓" in d.find_element(By.ID, "cluster-result").text)
    browser.find_element(By.ID, "cluster-enrol").click()
    assert "johns (6 new)" in wait_for_text(browser, "#cluster-enrolled", "Enrolled")
