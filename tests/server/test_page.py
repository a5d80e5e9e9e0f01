"""The web page in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

# what a user's drag and drop delivers: a drop event carrying an image file (here: the first photo, as PNG)
DROP_CANVAS_A_ON_B = """
document.querySelector('#compare-a canvas').toBlob((blob) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([blob], 'dropped.png', {type: 'image/png'}));
  document.querySelector('#compare-b').dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
}, 'image/png');
"""


def wait_for_text(driver, selector: str, text: str, timeout: float = 60) -> str:
    try:
        WebDriverWait(driver, timeout).until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text))
    except TimeoutException:
        shown = {
            f"#{e.get_attribute('id')}": e.text for e in driver.find_elements(By.CSS_SELECTOR, "[id$='-result'], [id$='-error']") if e.text
        }
        console = [entry["message"] for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
        raise AssertionError(f"{text!r} never appeared in {selector}; the page shows {shown}; the console says {console}") from None
    return driver.find_element(By.CSS_SELECTOR, selector).text


def region(screenshot: np.ndarray, driver, selector: str) -> np.ndarray:
    """The pixels of the screenshot where ``selector`` is drawn (device pixels = CSS pixels here)."""
    rect = driver.find_element(By.CSS_SELECTOR, selector).rect
    x, y, w, h = (round(rect[k]) for k in ("x", "y", "width", "height"))
    return screenshot[y : y + h, x : x + w]


def enrol_on_page(driver, person: str, photos) -> None:
    """Type a person id, choose their photos, press Enrol."""
    field = driver.find_element(By.ID, "enrol-person")
    field.clear()
    field.send_keys(person)
    driver.find_element(By.ID, "enrol-files").send_keys("\n".join(str(p) for p in photos))
    driver.find_element(By.ID, "enrol-btn").click()


def drawn(driver, selector: str, path: Path) -> np.ndarray:
    """The pixels of ``selector`` wherever it is on the page: scrolled into view, then a screenshot of the window."""
    rect = driver.execute_script(
        "const e = document.querySelector(arguments[0]); e.scrollIntoView({block: 'center'}); return e.getBoundingClientRect().toJSON()",
        selector,
    )
    assert driver.save_screenshot(str(path))
    x, y, w, h = (round(rect[k]) for k in ("x", "y", "width", "height"))
    return np.asarray(Image.open(path).convert("RGB"))[y : y + h, x : x + w]


def colour_share(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 40) -> float:
    return float((np.abs(pixels[..., :3].astype(int) - rgb).max(axis=-1) <= tolerance).mean())


def test_sign_in_compare_enrol_search_and_check(browser, service, faces, tmp_path):
    wild = faces / "wild"
    obama = [wild / "barack_obama" / name for name in ("obama.jpg", "obama1.jpg", "obama2.jpg", "obama3.jpg")]
    biden = wild / "joe_biden" / "biden.jpg"
    browser.get(service.url + "/")

    # a wrong key is refused in words; the right one opens the app
    browser.find_element(By.ID, "key").send_keys("fsk_000000000000_wrongwrongwrongwrongwrong")
    browser.find_element(By.ID, "signin").click()
    assert "refused" in wait_for_text(browser, "#signin-error", "refused")
    key_box = browser.find_element(By.ID, "key")
    key_box.clear()
    key_box.send_keys(service.admin_key)
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 30).until(ready.visibility_of_element_located((By.ID, "app")))
    assert "admin" in wait_for_text(browser, "#who", "Signed in")

    # compare: a photo dropped on the other side (a real drop event), the same person, two different people
    browser.find_element(By.CSS_SELECTOR, "#compare-a input").send_keys(str(obama[0]))
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.querySelector('#compare-a canvas').width > 300"))
    browser.execute_script(DROP_CANVAS_A_ON_B)
    WebDriverWait(browser, 30).until(lambda d: not d.find_element(By.ID, "compare-btn").get_attribute("disabled"))
    browser.find_element(By.ID, "compare-btn").click()
    assert wait_for_text(browser, "#verdict", "Same person") == "Same person"
    assert "similarity 1.00" in browser.find_element(By.ID, "compare-result").text
    browser.find_element(By.CSS_SELECTOR, "#compare-b input").send_keys(str(obama[1]))
    browser.find_element(By.ID, "compare-btn").click()
    assert wait_for_text(browser, "#verdict", "Same person") == "Same person"
    assert "same person" in browser.find_element(By.ID, "compare-result").text
    browser.find_element(By.CSS_SELECTOR, "#compare-b input").send_keys(str(biden))
    browser.find_element(By.ID, "compare-btn").click()
    assert wait_for_text(browser, "#verdict", "Different people") == "Different people"
    result = browser.find_element(By.ID, "compare-result").text
    assert "two different people" in result and "threshold 0.38" in result

    # a gallery that keeps photos, two people enrolled
    browser.find_element(By.ID, "new-gallery-name").send_keys("web")
    browser.find_element(By.ID, "new-gallery-keep").click()
    browser.find_element(By.ID, "new-gallery-btn").click()
    wait_for_text(browser, "#gallery-info", "keeps enrolled photos")
    for person, photos in (("obama", obama[:3]), ("biden", [biden])):
        enrol_on_page(browser, person, photos)
        wait_for_text(browser, "#enrol-summary", f"{len(photos)} of {len(photos)} photo(s) enrolled for {person}")

    # search: obama's fourth photo finds obama, shown with his enrolled photo
    browser.find_element(By.ID, "search-file").send_keys(str(obama[3]))
    browser.find_element(By.ID, "search-btn").click()
    assert wait_for_text(browser, "#search-summary", "Best match: obama").startswith("Best match: obama")
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("const i = document.querySelector('ol.candidates img'); return i && i.complete && i.naturalWidth > 0")
    )

    # the profile check: biden's photo offered as obama's
    browser.find_element(By.ID, "check-person").send_keys("obama")
    browser.find_element(By.ID, "check-file").send_keys(str(biden))
    browser.find_element(By.ID, "check-btn").click()
    assert "someone else enrolled (biden)" in wait_for_text(browser, "#check-summary", "biden")

    # the screenshot: drawn, with the photos, the face boxes and the verdict where the DOM says they are
    browser.execute_script("window.scrollTo(0, 0)")
    shot_path = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot_path))
    if os.environ.get("FACESIFT_SCREENSHOT"):
        shutil.copy(shot_path, os.environ["FACESIFT_SCREENSHOT"])
    shot = np.asarray(Image.open(shot_path).convert("RGB"))
    assert shot.std() > 20  # not a blank page
    photo_a = region(shot, browser, "#compare-a canvas")
    assert photo_a.size and photo_a.std() > 30  # the photo is drawn
    assert colour_share(photo_a, (0x2E, 0xCC, 0x71)) > 0.002  # and the green face box on it
    verdict = region(shot, browser, "#verdict")
    assert colour_share(verdict, (0xB3, 0x26, 0x1E), tolerance=60) > 0.01  # "Different people", in red
    candidates = drawn(browser, "ol.candidates", tmp_path / "candidates.png")  # further down the page
    assert candidates.size and candidates.std() > 20

    # the API docs page draws its operations from the local swagger-ui-bundle
    browser.get(service.url + "/docs")
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 10)
    assert "/v1/verify" in browser.find_element(By.ID, "swagger-ui").text

    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    errors = [message for message in errors if "status of 401" not in message]  # the wrong key, on purpose
    assert errors == [], errors  # no script errors, no CSP violations, no failed loads
