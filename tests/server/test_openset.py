"""Open-set identification over HTTP and on the page: every face of a group photo, each named, and the operating
point (FPIR, gallery size, threshold) every search states."""

from __future__ import annotations

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from test_api import post_files, upload
from test_page import wait_for_text


def test_search_every_face_and_the_operating_point(service, faces):
    wild, auth = faces / "wild", service.auth()
    url = service.url + "/v1/galleries"
    assert requests.post(url, headers=auth, json={"name": "tagging"}, timeout=30).status_code == 201
    for name, photo in (("obama", wild / "barack_obama/obama.jpg"), ("biden", wild / "joe_biden/biden.jpg")):
        assert post_files(service, f"/v1/galleries/tagging/persons/{name}/samples", [upload(photo, "images")]).json()["added"] == 1
    group = post_files(
        service, "/v1/galleries/tagging/search", [upload(wild / "_multi_face/obama_and_biden.jpg")], data={"faces": "all"}
    ).json()
    named = {face["candidates"][0]["person_id"] for face in group["faces"] if face["decision"] == "match"}
    assert named == {"obama", "biden"} and all(len(face["face"]["box"]) == 4 for face in group["faces"])
    point = group["operating_point"]
    assert (point["gallery_size"], point["fpir"], point["source"]) == (2, 0.01, "default")
    one = post_files(service, "/v1/galleries/tagging/search", [upload(wild / "barack_obama/obama1.jpg")], data={"fpir": "0.001"}).json()
    assert (
        one["decision"] == "match" and one["operating_point"]["fpir"] == 0.001 and one["operating_point"]["threshold"] > point["threshold"]
    )
    bad = post_files(
        service, "/v1/galleries/tagging/search", [upload(wild / "barack_obama/obama1.jpg")], data={"fpir": "0.01", "threshold": "0.5"}
    )
    assert bad.status_code == 422 and "at most one" in bad.json()["detail"]
    now = requests.get(url + "/tagging/operating-point", headers=auth, params={"fpir": 0.05}, timeout=30).json()
    assert now["gallery_size"] == 2 and now["fpir"] == 0.05
    duplicates = requests.get(url + "/tagging/duplicates", headers=auth, timeout=30).json()
    assert duplicates["pairs"] == [] and duplicates["operating_point"]["gallery_size"] == 1


def test_page_names_every_face_of_a_group_photo(browser, service, faces):
    wild = faces / "wild"
    browser.get(service.url + "/")
    browser.find_element(By.ID, "key").send_keys(service.admin_key)
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "app").is_displayed())
    browser.find_element(By.ID, "new-gallery-name").send_keys("groups")
    browser.find_element(By.ID, "new-gallery-btn").click()
    wait_for_text(browser, "#gallery-info", "templates only")
    for person, photo in (("obama", wild / "barack_obama/obama.jpg"), ("biden", wild / "joe_biden/biden.jpg")):
        field = browser.find_element(By.ID, "enrol-person")
        field.clear()
        field.send_keys(person)
        browser.find_element(By.ID, "enrol-files").send_keys(str(photo))
        browser.find_element(By.ID, "enrol-btn").click()
        wait_for_text(browser, "#enrol-summary", f"1 of 1 photo(s) enrolled for {person}")
    browser.find_element(By.ID, "search-file").send_keys(str(wild / "_multi_face/obama_and_biden.jpg"))
    browser.find_element(By.ID, "search-all-faces").click()
    browser.find_element(By.ID, "search-btn").click()
    assert "2 recognised" in wait_for_text(browser, "#search-summary", "recognised")
    names = browser.execute_script("return document.querySelector('#search-canvas').dataset.names").split(",")
    assert set(names) >= {"obama", "biden"}
    assert "2 people enrolled" in browser.find_element(By.ID, "search-point").text
