"""Headless Chromium through Selenium for the console's browser tests: the
system's chromium and chromedriver (Debian packages; .ci/run installs them),
never a browser a tool downloads."""
import os
import shutil
import tempfile
from typing import Dict, Iterator, List

import pytest

CHROMIUM = os.environ.get("KMS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("KMS_CHROMEDRIVER", "/usr/bin/chromedriver")
# Without the background-networking flags Chromium keeps calling hosts this
# sandboxed network refuses; --no-sandbox because CI runs as root.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--disable-features=Translate,MediaRouter,OptimizationHints",
         "--window-size=1280,900", "--force-device-scale-factor=1", "--lang=en-US"]


def missing() -> List[str]:
    return [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]


def new_driver(profile_dir: str):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile_dir}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The sanitizer pass preloads ASan into every process it starts: the
    # server under test needs it, the browser must not get it.
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, env=env), options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def chrome() -> Iterator:  # type: ignore[type-arg]
    absent = missing()
    if absent:
        message = f"browser tests need {', '.join(absent)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them: their absence is a failure there
        pytest.skip(message)
    profile = tempfile.mkdtemp(prefix="kms-chromium-")
    driver = new_driver(profile)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Console:
    """The console's stable test contract (data-action forms, inputs named
    after parameters, role=status/alert, data-field), driven in a browser."""

    def __init__(self, driver, base: str) -> None:  # type: ignore[no-untyped-def]
        self.driver = driver
        self.base = base.rstrip("/")

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def form(self, action: str, containing: str = ""):  # type: ignore[no-untyped-def]
        """The form of `action` (the first one holding a field named
        `containing`, when a page has several, as sign-in has)."""
        from selenium.webdriver.common.by import By
        forms = self.driver.find_elements(By.CSS_SELECTOR, f'form[data-action="{action}"]')
        for form in forms:
            if not containing or form.find_elements(By.CSS_SELECTOR, f'[name="{containing}"]'):
                return form
        raise AssertionError(f"no {action} form with a {containing or 'any'} field at {self.driver.current_url}")

    def submit(self, action: str, confirm: bool = True, **fields: str) -> None:
        """Fill the form of `action` (text, selects; NAME_file=a path for
        the file input of NAME) and submit it; confirmation dialogs are
        accepted (or dismissed)."""
        from selenium.webdriver.common.by import By

        form = self._fill(action, fields)
        old = self.driver.find_element(By.TAG_NAME, "html")
        form.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
        self._answer_dialog(confirm)
        from selenium.webdriver.support.ui import WebDriverWait
        wait = WebDriverWait(self.driver, 20)
        wait.until(lambda d: _stale(old))
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def _fill(self, action: str, fields: Dict[str, str]):  # type: ignore[no-untyped-def]
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        first = next(iter(fields), "")
        form = self.form(action, first[:-len("_file")] if first.endswith("_file") else first)
        for name, value in fields.items():
            if name.endswith("_file"):
                name = name[:-len("_file")]
                element = form.find_element(By.CSS_SELECTOR, f'input[type="file"][name="{name}"]')
            else:
                element = form.find_element(By.CSS_SELECTOR, f'[name="{name}"]:not([type="file"])')
            if element.tag_name == "select":
                Select(element).select_by_value(value)
            elif element.get_attribute("type") == "checkbox":
                if element.is_selected() != bool(value):
                    element.click()
            elif element.get_attribute("type") == "file":
                element.send_keys(value)
            elif element.get_attribute("type") == "date":
                # Typed keys go through the locale's date widget; the value is the contract.
                self.driver.execute_script("arguments[0].value = arguments[1]", element, value)
            else:
                element.clear()
                element.send_keys(value)
        return form

    def _answer_dialog(self, confirm: bool) -> None:
        from selenium.common.exceptions import NoAlertPresentException
        try:
            dialog = self.driver.switch_to.alert
        except NoAlertPresentException:
            return
        dialog.accept() if confirm else dialog.dismiss()

    def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def texts(self, css: str) -> List[str]:
        from selenium.webdriver.common.by import By
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css)]

    def field(self, name: str) -> str:
        """A data-field's shown value (a textarea's or input's value)."""
        from selenium.webdriver.common.by import By
        element = self.driver.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]')
        if element.tag_name in ("textarea", "input"):
            return element.get_attribute("value") or ""
        return element.text

    def value(self, name: str) -> str:
        """A data-field's machine value (data-value), e.g. an epoch time."""
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').get_attribute("data-value") or ""

    def status(self) -> str:
        if not self.has('[role="status"]'):
            shown = self.alert() if self.has('[role="alert"]') else "no status and no alert"
            raise AssertionError(f"no success shown at {self.driver.current_url}: {shown}")
        return self.text('[role="status"]')

    def alert(self) -> str:
        return self.text('[role="alert"]')

    def has(self, css: str) -> bool:
        from selenium.webdriver.common.by import By
        return bool(self.driver.find_elements(By.CSS_SELECTOR, css))

    def screenshot(self, name: str, directory: str) -> str:
        """A full-height screenshot of the page into directory/name.png."""
        width = self.driver.execute_script("return document.documentElement.clientWidth")
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        size = self.driver.get_window_size()
        self.driver.set_window_size(size["width"], min(max(height + 140, 600), 4000))
        path = os.path.join(directory, name + ".png")
        self.driver.save_screenshot(path)
        self.driver.set_window_size(size["width"], size["height"])
        assert width > 0
        return path

    def console_errors(self) -> List[str]:
        """Messages of severity SEVERE in the browser console since the last
        call: Content-Security-Policy violations, script errors, loads that
        failed. A page answered with a refusal status (a 4xx the test asked
        for) is logged too, and is not an error of the page."""
        return [entry["message"] for entry in self.driver.get_log("browser")
                if entry["level"] == "SEVERE"
                and "Failed to load resource: the server responded with a status of 4" not in entry["message"]]


def _stale(element) -> bool:  # type: ignore[no-untyped-def]
    """Whether the page holding element has gone. Chromium reports a node of
    a page being replaced as not belonging to the document instead of stale."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    try:
        element.tag_name
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
