"""The dashboard in headless Chromium against `shipyard serve` with a seeded record.

Sign-in goes through the fake Slack OpenID provider; screenshots of the main pages are kept under
artefacts/dashboard/ (or $SHIPYARD_ARTEFACTS) for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dashboard_seed import config, seed
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack
from tests.fakes.slack_oidc import FakeSlackOpenID
from tests.slackbot import SIGNING_SECRET, free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTEFACTS = Path(os.environ.get("SHIPYARD_ARTEFACTS", ROOT / "artefacts")) / "dashboard"

pytestmark = pytest.mark.e2e


@dataclass
class Served:
    url: str
    oidc: FakeSlackOpenID
    slack: FakeSlack
    env: dict[str, str]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def fetch(
    url: str, cookies: dict[str, str] | None = None, data: bytes | None = None
) -> tuple[int, dict[str, str], list[str], bytes]:
    """One request, no redirect followed; (status, headers, Set-Cookie lines, body)."""
    request = urllib.request.Request(url, data=data)
    if cookies:
        request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as answer:
            return (
                answer.status,
                {k.lower(): v for k, v in answer.headers.items()},
                answer.headers.get_all("Set-Cookie") or [],
                answer.read(),
            )
    except urllib.error.HTTPError as error:
        return (
            error.code,
            {k.lower(): v for k, v in error.headers.items()},
            error.headers.get_all("Set-Cookie") or [],
            error.read(),
        )


def cookie(lines: list[str], name: str) -> str:
    for line in lines:
        if line.startswith(name + "="):
            return line.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie in {lines}")


def shipyard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    database_url = f"sqlite:///{tmp_path / 'record.db'}"
    seed(database_url, tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with FakeSlack() as slack:
        oidc = slack.sign_in(FakeSlackOpenID(redirect_uris=[f"{url}/auth/callback"]))
        env = {
            **os.environ,
            "SHIPYARD_HOME": str(tmp_path / "home"),
            "SHIPYARD_CONFIG": str(config(tmp_path)),
            "SHIPYARD_DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": DEFAULT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "SLACK_CLIENT_ID": oidc.client_id,
            "SLACK_CLIENT_SECRET": oidc.client_secret,
            "SLACK_OIDC_AUTHORIZE_URL": slack.authorize_url,
            "SHIPYARD_SESSION_SECRET": "test-session-secret-0123456789",
            "SHIPYARD_HEALTH_EVERY": "1",
        }
        # One real environment (a running process), so the probe has something healthy to find.
        shipyard(
            env, "--as", "alice", "env", "create", "pr-live", "--type", "test", "--release", "1.1.0"
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if fetch(url + "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "shipyard serve did not start"
                time.sleep(0.2)
            yield Served(url, oidc, slack, env)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
            shipyard(env, "--as", "alice", "env", "destroy", "pr-live")


@pytest.fixture
def browser() -> Iterator[object]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CI") == "true":
            pytest.fail(
                "chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
            )
        pytest.skip("chromium and chromedriver are not installed")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


ACCESSIBILITY = """
const problems = [];
if (!document.documentElement.lang) problems.push("no lang on <html>");
for (const landmark of ["main", "header[role=banner]", "nav[aria-label=Main]", "footer"]) {
  if (document.querySelectorAll(landmark).length !== 1) problems.push("landmarks: " + landmark);
}
const navs = [...document.querySelectorAll("nav")].map((n) => n.getAttribute("aria-label"));
if (navs.some((l) => !l) || new Set(navs).size !== navs.length) problems.push("navs: " + navs);
for (const field of document.querySelectorAll("input:not([type=hidden]), select")) {
  if (!field.closest("label") && !field.labels.length) problems.push("unlabelled " + field.name);
}
for (const image of document.querySelectorAll("img")) {
  if (!image.alt) problems.push("image without alt: " + image.src);
}
for (const table of document.querySelectorAll("table")) {
  if (!table.querySelector("th[scope=col]")) problems.push("table without column headers");
}
if (document.querySelectorAll("h1").length !== 1) problems.push("not one h1");
return problems;
"""


def accessible(driver: object) -> list[str]:
    """Landmarks, labels, alt texts, table headers: what a screen reader needs on every page."""
    found: list[str] = driver.execute_script(ACCESSIBILITY)  # type: ignore[attr-defined]
    return found


def shot(driver: object, name: str) -> Path:
    assert accessible(driver) == [], name
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")  # type: ignore[attr-defined]
    width = driver.execute_script("return window.innerWidth")  # type: ignore[attr-defined]
    driver.set_window_size(max(width, 360), min(max(height + 120, 600), 4000))  # type: ignore[attr-defined]
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    return path


def wait_until(condition: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_sign_in_table_filter_environment_page_and_screenshots(
    served: Served, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    driver.get(served.url + "/")  # type: ignore[attr-defined]
    # Anonymous → sign-in → Slack (fake) → callback → back where we asked to go.
    assert driver.current_url == served.url + "/", driver.page_source  # type: ignore[attr-defined]
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("Environments")  # type: ignore[attr-defined]
    assert "Signed in as alice" in driver.find_element(By.CSS_SELECTOR, "header .who").text  # type: ignore[attr-defined]
    assert served.oidc.refusals == []

    def rows() -> dict[str, str]:
        found = driver.find_elements(By.CSS_SELECTOR, "table.envs tbody tr")  # type: ignore[attr-defined]
        return {r.find_element(By.CSS_SELECTOR, "th").text.split()[0]: r.text for r in found}

    def probed() -> bool:
        driver.refresh()  # type: ignore[attr-defined]
        table = rows()
        return "healthy" in table.get("pr-live", "") and "unhealthy" in table.get("pr-101", "")

    wait_until(probed, timeout=30)  # serve's health prober records both
    table = rows()
    assert set(table) == {"pr-101", "pr-102", "pr-live", "staging", "production"}
    assert "1.1.0" in table["staging"] and "carol" in table["staging"]
    assert "unhealthy" in table["pr-101"] and "in 4h" in table["pr-101"]
    reason = driver.find_element(By.CSS_SELECTOR, "table.envs .health.unhealthy").get_attribute(
        "title"
    )  # type: ignore[attr-defined]
    assert reason == "no processes"
    banner = driver.find_element(By.CSS_SELECTOR, ".banner").text  # type: ignore[attr-defined]
    assert "shipyard-pr-77" in banner and "shipyard-owner=mallory" in banner
    shot(driver, "environments")

    # Filtering: choosing a type applies at once (progressive enhancement), the form also works.
    Select(driver.find_element(By.NAME, "type")).select_by_value("staging")  # type: ignore[attr-defined]
    wait_until(lambda: "type=staging" in driver.current_url)  # type: ignore[attr-defined]
    assert set(rows()) == {"staging"}
    driver.get(served.url + "/?name=pr-&sort=name&order=desc")  # type: ignore[attr-defined]
    assert list(rows()) == ["pr-live", "pr-102", "pr-101"]

    driver.find_element(By.LINK_TEXT, "pr-101").click()  # type: ignore[attr-defined]
    wait_until(lambda: driver.current_url.endswith("/environments/pr-101"))  # type: ignore[attr-defined]
    history = driver.find_element(By.ID, "history").find_element(By.XPATH, "..").text  # type: ignore[attr-defined]
    assert "1.1.0" in history and "1.0.0" in history and "~GAME_MOTD" in history
    facts = driver.find_element(By.CSS_SELECTOR, "dl.facts").text  # type: ignore[attr-defined]
    assert "test — on-demand, isolated, short-lived" in facts  # the type's description
    run = driver.find_element(By.LINK_TEXT, "run")  # type: ignore[attr-defined]
    assert run.get_attribute("href").endswith("buildId=4242")
    images = driver.find_elements(By.CSS_SELECTOR, "figure.run img")  # type: ignore[attr-defined]
    assert len(images) == 2
    wait_until(
        lambda: all(
            driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i)  # type: ignore[attr-defined]
            for i in images
        )
    )
    page = driver.page_source  # type: ignore[attr-defined]
    assert (
        "@env(DB_PW)" not in page
        and "changed" not in page.split("Health history")[0].split("History")[0]
    )
    shot(driver, "environment")
    for path, name, expect in (
        ("/matrix", "matrix", "Which release runs where"),
        ("/approvals", "approvals", "Waiting for approval"),
        ("/loadtests", "loadtests", "Load-test trends"),
    ):
        driver.get(served.url + path)  # type: ignore[attr-defined]
        assert driver.find_element(By.TAG_NAME, "h1").text == expect  # type: ignore[attr-defined]
        shot(driver, name)
    assert "regressed" in driver.find_element(By.TAG_NAME, "main").text  # type: ignore[attr-defined]

    driver.set_window_size(390, 844)  # type: ignore[attr-defined]
    driver.get(served.url + "/")  # type: ignore[attr-defined]
    shot(driver, "environments-phone")

    # Signing out is a form with a CSRF token; afterwards the pages ask to sign in again.
    driver.set_window_size(1280, 1000)  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "header .who button").click()  # type: ignore[attr-defined]
    wait_until(lambda: driver.current_url.endswith("/auth/signed-out"))  # type: ignore[attr-defined]
    assert [c["name"] for c in driver.get_cookies()] == []  # type: ignore[attr-defined]


def test_anonymous_requests_go_to_sign_in_and_the_api_wants_a_token(served: Served) -> None:
    status, headers, _, _ = fetch(served.url + "/matrix")
    assert status == 303 and headers["location"] == "/auth/sign-in?next=%2Fmatrix"
    status, _, _, body = fetch(served.url + "/api/v1/environments")
    assert status == 401 and json.loads(body)["error"] == "a valid API token is needed"
    token = shipyard(served.env, "--as", "dave", "tokens", "create", "--scope", "read", "--json")
    plain = json.loads(token.stdout)["token"]
    request = urllib.request.Request(
        served.url + "/api/v1/environments?type=production",
        headers={"Authorization": f"Bearer {plain}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert [e["name"] for e in json.loads(answer.read())["environments"]] == ["production"]


def test_sign_in_is_strict_about_state_code_and_cookies(served: Served) -> None:
    status, headers, lines, _ = fetch(served.url + "/auth/sign-in?next=//evil.example/")
    assert status == 303
    state_cookie = cookie(lines, "shipyard_sign_in")
    flags = next(line for line in lines if line.startswith("shipyard_sign_in=")).lower()
    assert "secure" in flags and "httponly" in flags and "samesite=lax" in flags
    authorize = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(headers["location"]).query))
    assert authorize["team"] == "T0001" and authorize["scope"] == "openid profile email"
    status, slack_headers, _, _ = fetch(headers["location"])
    assert status == 302
    back = slack_headers["location"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))
    jar = {"shipyard_sign_in": state_cookie}
    forged = back.replace(query["state"], "forged")
    status, _, _, body = fetch(forged, jar)
    assert status == 400 and b"state does not match" in body
    status, headers, lines, _ = fetch(back, jar)
    assert status == 303 and headers["location"] == "/"  # never an open redirect
    session = next(line for line in lines if line.startswith("shipyard_session=")).lower()
    assert "secure" in session and "httponly" in session and "samesite=lax" in session
    status, _, _, body = fetch(back, jar)  # the same code again
    assert status == 400 and b"Slack refused the code" in body
    assert served.oidc.refusals == ["invalid_code"]
    jar = {"shipyard_session": cookie(lines, "shipyard_session")}
    assert fetch(served.url + "/approvals", jar)[0] == 200
    status, _, _, body = fetch(served.url + "/auth/sign-out", jar, data=b"csrf=wrong")
    assert status == 403
    bad = dict(authorize, redirect_uri="http://127.0.0.1:1/elsewhere")
    status, _, _, _ = fetch(served.slack.authorize_url + "?" + urllib.parse.urlencode(bad))
    assert status == 400 and served.oidc.refusals[-1] == "bad_redirect_uri"
