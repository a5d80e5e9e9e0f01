"""The page's "Analyse a photo" section and its "require a live face" switch, in the real headless Chromium."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait
from test_analysis import usable  # tests/ is on the path (its conftest.py)
from test_page import wait_for_text

from facesift.analysis.data import held_out_subjects, read_liveness


def test_analyse_a_photo_and_refuse_a_printed_face(browser, service, faces):
    browser.get(service.url + "/")
    browser.find_element(By.ID, "key").send_keys(service.admin_key)
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 30).until(ready.visibility_of_element_located((By.ID, "app")))

    browser.find_element(By.CSS_SELECTOR, "#analyze-drop input").send_keys(str(faces / "wild" / "_multi_face" / "obama_and_biden.jpg"))
    browser.find_element(By.ID, "analyze-btn").click()
    summary = wait_for_text(browser, "#analyze-summary", "analysed")
    lines = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "li.analyze-face")]
    assert summary == f"{len(lines)} face(s) analysed." and len(lines) >= 2 and all("age about" in line and "(" in line for line in lines)
    assert browser.execute_script("return document.querySelector('#analyze-drop canvas').width") > 300

    # a printed photo of a held-out NUAA subject, enrolled with the switch on, is refused in words
    browser.find_element(By.ID, "new-gallery-name").send_keys("liveness-page")
    browser.find_element(By.ID, "new-gallery-btn").click()
    wait_for_text(browser, "#gallery-info", "templates only")
    samples = read_liveness(faces / "nuaa-dev")
    subject = sorted(held_out_subjects(samples))[0]
    spoof = usable([s.path for s in samples if s.group == subject and s.live == 0][::5], 1)[0]
    browser.find_element(By.ID, "enrol-person").send_keys("printed")
    browser.find_element(By.ID, "enrol-files").send_keys(str(spoof))
    browser.find_element(By.ID, "enrol-live").click()
    browser.find_element(By.ID, "enrol-btn").click()
    wait_for_text(browser, "#enrol-summary", "0 of 1 photo(s) enrolled")
    assert "not a live face" in browser.find_element(By.ID, "enrol-result").text
