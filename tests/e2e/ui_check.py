"""Drives Herald's status page in headless Chromium (tests/e2e/ui.rs runs it).

Usage: ui_check.py API_URL TOKEN ROLLOUT_ID SCREENSHOT

Loads /ui/, enters the token once, checks that a reload keeps it (session storage), prints
one JSON line of what the page shows (zones, secondaries, rollouts and the node table), takes
a screenshot, presses the rollout's Pause button, waits until the page shows it paused, and
prints a second JSON line. The Rust test compares both with the API.
"""

import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    # As root in CI, on a machine without a network: no sandbox, and none of Chromium's own
    # background connections.
    for flag in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1100",
    ]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def shown(driver):
    """What the page shows. It re-renders every five seconds (and after a button), which
    can replace an element while it is read: then it is read again."""
    for _ in range(20):
        try:
            return read(driver)
        except StaleElementReferenceException:
            continue
    return read(driver)


def read(driver):
    """What the page shows, read from its tables and rollout cards."""
    text = lambda root, sel: root.find_element(By.CSS_SELECTOR, sel).text
    zones = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "#zones tbody tr"):
        zones[row.get_attribute("data-zone")] = {
            k: int(text(row, "." + k))
            for k in ["serial", "nodes", "current", "behind", "failed", "silent"]
        }
    rollouts = {}
    for card in driver.find_elements(By.CSS_SELECTOR, "#rollouts .rollout"):
        waves = []
        for w in card.find_elements(By.CSS_SELECTOR, ".wave"):
            waves.append(
                {
                    "label": text(w, ".label"),
                    **{
                        k: int(w.get_attribute("data-" + k))
                        for k in ["nodes", "published", "applied", "failed"]
                    },
                    "counts": text(w, ".counts"),
                }
            )
        rollouts[card.get_attribute("data-id")] = {
            "state": text(card, ".state"),
            "waves": waves,
            "buttons": [b.text for b in card.find_elements(By.CSS_SELECTOR, "button")],
        }
    nodes = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "#nodes tbody tr"):
        nodes[row.get_attribute("data-node")] = {
            "commit": row.find_element(By.CSS_SELECTOR, ".commit").get_attribute("title"),
            "seq": int(text(row, ".seq")),
            "status": text(row, ".status"),
            "applied_seq": text(row, ".applied-seq"),
        }
    secondaries = [
        r.get_attribute("data-address")
        for r in driver.find_elements(By.CSS_SELECTOR, "#secondaries tbody tr[data-address]")
    ]
    return {"zones": zones, "rollouts": rollouts, "nodes": nodes, "secondaries": secondaries}


def main():
    api, token, rollout, screenshot = sys.argv[1:5]
    driver = browser()
    wait = WebDriverWait(driver, 20, ignored_exceptions=[StaleElementReferenceException])
    loaded = lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "true"
    try:
        driver.get(api + "/ui/")
        wait.until(ec.visibility_of_element_located((By.ID, "token")))
        assert not driver.find_element(By.ID, "status").is_displayed()
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
        wait.until(loaded)
        # Entered once: a reload finds it in session storage and asks no more.
        driver.refresh()
        wait.until(loaded)
        assert not driver.find_element(By.ID, "login").is_displayed()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'.rollout[data-id="{rollout}"]'))
        print(json.dumps(shown(driver)), flush=True)
        driver.save_screenshot(screenshot)
        driver.find_element(By.CSS_SELECTOR, f'.rollout[data-id="{rollout}"] button.pause').click()
        wait.until(
            lambda d: d.find_element(
                By.CSS_SELECTOR, f'.rollout[data-id="{rollout}"]'
            ).get_attribute("data-state")
            == "paused"
        )
        print(json.dumps(shown(driver)), flush=True)
        # The node search: a prefix narrows the table.
        driver.find_element(By.ID, "prefix").send_keys("n0")
        driver.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
        wait.until(
            lambda d: all(
                r.get_attribute("data-node").startswith("n0")
                for r in d.find_elements(By.CSS_SELECTOR, "#nodes tbody tr")
            )
        )
        print(json.dumps(shown(driver)["nodes"]), flush=True)
        errors = [
            e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
        ] if hasattr(driver, "get_log") else []
        assert not errors, errors
    finally:
        driver.quit()


main()
