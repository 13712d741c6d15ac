"""The web client (gateway/web/) in a real browser: two headless Chromium sessions, each with
its own fresh profile, open the page through HAProxy, sign in with the page's own form (which
fetches /dev/token), join one new room through the sidebar's form, and one of them sends a
message with the composer's Send button. Both pages must show it exactly once, as text (markup
in a message must not become elements), and neither browser may log a Content-Security-Policy
violation or a JavaScript error.

A second test stops the gateway one browser is connected to, while both keep writing: the page
reconnects through HAProxy to the other gateway, rejoins its room and sends what was written
meanwhile, and both pages end with every message exactly once, in id order, with no gap.

Two more cover the v2 features of the page: the member list (presence) and a direct
conversation started from it, with its unread badge; and typing, receipts, read state shared by
a person's devices and the sidebar of a new device (the rooms frame).

Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver) and the
selenium package: scripts/deps.sh installs all three. On a failure a screenshot of each browser
is saved in the cluster's data directory (kept after a failed run) and named in the message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import pytest

from chat_e2e import unique, wait_readyz

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

try:
    from selenium import webdriver
    from selenium.common.exceptions import (StaleElementReferenceException, TimeoutException,
                                            WebDriverException)
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # reported by the test itself, so the rest of the suite still runs
    webdriver = None

WAIT = 15  # seconds for any one thing to show up on a page

# Installed before any of the page's own scripts run (through DevTools, which the page's CSP
# does not govern): records CSP violations and uncaught errors, in case the console log ever
# words them differently from what _console_problems looks for.
WATCH_JS = """
window.__e2eProblems = [];
document.addEventListener('securitypolicyviolation', (e) => window.__e2eProblems.push(
  'CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || '?') +
  ' (' + (e.sourceFile || '') + ':' + (e.lineNumber || 0) + ')'));
window.addEventListener('error', (e) => window.__e2eProblems.push(
  'error: ' + e.message + ' (' + (e.filename || '') + ':' + (e.lineno || 0) + ')'));
window.addEventListener('unhandledrejection', (e) => window.__e2eProblems.push(
  'unhandled rejection: ' + String(e.reason)));
"""


class Browser:
    """One headless Chromium with its own fresh profile, driven through chromedriver."""

    def __init__(self, name: str, data_dir: Path, flags: tuple = ()):
        self.name = name
        self.profile = tempfile.mkdtemp(prefix=f"chat-e2e-chromium-{name}-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = str(CHROMIUM)
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-proxy-server",
                     f"--user-data-dir={self.profile}", "--window-size=1200,800", *flags):
            opts.add_argument(flag)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # An explicit driver path: Selenium Manager (which would download one) is never run.
        service = Service(executable_path=str(CHROMEDRIVER),
                          log_output=str(data_dir / "logs" / f"chromedriver-{name}.log"))
        try:
            self.driver = webdriver.Chrome(options=opts, service=service)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(WAIT)
        self.driver.set_script_timeout(WAIT)
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_JS})
        self.console: list[dict] = []  # every browser log entry read so far
        self.problems: list[str] = []  # what WATCH_JS recorded, collected before each reload

    # ---- observing --------------------------------------------------------------------------

    def wait(self, what: str, cond, timeout: float = WAIT):
        """Waits for cond(driver) to be truthy; fails naming what was awaited and what the page
        shows instead. An element the page redrew while cond looked at it (the room list is
        rebuilt on every change) only means: look again."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(cond)
        except TimeoutException:
            raise AssertionError(f"{self.name}: no {what} within {timeout}s; page state: "
                                 f"{self.page_state()}") from None

    def shown(self, css: str):
        """The first element matching css if it is displayed, else None."""
        for e in self.driver.find_elements(By.CSS_SELECTOR, css):
            if e.is_displayed():
                return e
        return None

    def text(self, css: str) -> str:
        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""

    def page_state(self) -> str:
        try:
            return json.dumps({
                "conn": self.text("#conn-text"),
                "whoami": self.text("#whoami-user"),
                "name_error": self.text("#name-error"),
                "join_error": self.text("#join-error"),
                "rooms": self.text("#room-list"),
                "room": self.text("#room-title"),
                "notices": self.text("#notices"),
                "send_disabled": self.driver.find_element(By.ID, "send-button")
                .get_attribute("disabled"),
            })
        except WebDriverException as e:
            return f"<unreadable: {e.msg}>"

    def gateway(self) -> str:
        m = re.fullmatch(r"Connected to (\S+)", self.text("#conn-text").strip())
        assert m, f"{self.name}: connection status {self.text('#conn-text')!r}"
        return m.group(1)

    def collect_problems(self) -> None:
        """Drains the console log and what WATCH_JS recorded on the current page."""
        self.console.extend(self.driver.get_log("browser"))
        got = self.driver.execute_script(
            "const p = window.__e2eProblems; window.__e2eProblems = []; return p || null")
        if got is None:
            self.problems.append("the page watcher was not installed (WATCH_JS)")
        else:
            self.problems.extend(got)

    # ---- acting -----------------------------------------------------------------------------

    def sign_in(self, url: str, display_name: str) -> None:
        self.driver.get(url)
        name = self.wait("sign-in form", lambda d: self.shown("#name-input"))
        name.clear()
        name.send_keys(display_name)
        self.driver.find_element(By.ID, "name-submit").click()
        self.wait_connected()
        self.wait("own name in the top bar",
                  lambda d: self.text("#whoami-user") == display_name)

    def wait_connected(self) -> None:
        self.wait("chat view", lambda d: self.shown("#chat"))
        self.wait("'Connected to gw-N'",
                  lambda d: re.fullmatch(r"Connected to \S+", self.text("#conn-text").strip()))

    def reload(self) -> None:
        """Reloads the page as a person would (the session lives in sessionStorage)."""
        self.collect_problems()
        self.driver.refresh()
        self.wait_connected()

    def join(self, room: str) -> None:
        box = self.wait("room name input", lambda d: self.shown("#join-input"))
        box.send_keys(room)
        self.driver.find_element(By.CSS_SELECTOR, "#join-form button[type=submit]").click()
        self.wait(f"room {room} open and joined", lambda d: self._joined(room))

    def _joined(self, room: str) -> bool:
        if self.text("#room-title") != f"# {room}":
            return False
        for item in self.driver.find_elements(By.CSS_SELECTOR, "#room-list li.current"):
            if (item.find_element(By.CSS_SELECTOR, ".room-name").text == f"# {room}"
                    and not item.find_elements(By.CSS_SELECTOR, ".room-status")):
                return True
        return False

    def send(self, text: str) -> None:
        box = self.driver.find_element(By.ID, "message-input")
        box.send_keys(text)
        button = self.driver.find_element(By.ID, "send-button")
        self.wait("enabled Send button", lambda d: button.is_enabled())
        button.click()

    def room_list_css(self, room: str) -> str:
        """The confirmed messages of a room (not the list of messages still being sent)."""
        return f'section.room-view[aria-label="Messages in {room}"] ol.messages:not(.pending-list)'

    def confirmed(self, room: str) -> list[dict]:
        """Every confirmed message of the room as the page shows it (not the markers of
        missing messages between them)."""
        return self.driver.execute_script(
            """
            const list = document.querySelector(arguments[0]);
            if (!list) return null;
            return [...list.querySelectorAll(':scope > li.msg')].map((li) => ({
              id: li.dataset.id || '',
              from: li.querySelector('.msg-from').textContent,
              text: li.querySelector('.msg-text').textContent,
              html: li.querySelector('.msg-text').innerHTML,
              elements: li.querySelector('.msg-text').children.length,
              visible: li.querySelector('.msg-text').offsetParent !== null,
            }));
            """, self.room_list_css(room)) or []

    def screenshot(self, where: Path, tag: str) -> str:
        path = where / f"browser-{tag}-{self.name}.png"
        try:
            self.driver.save_screenshot(str(path))
            return str(path)
        except Exception as e:  # noqa: BLE001
            return f"<no screenshot of {self.name}: {e!r}>"

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


def _console_problems(b: Browser) -> list[str]:
    """CSP violations and JavaScript errors among the browser's console entries and what the
    page watcher recorded. Every SEVERE entry counts: a page that works logs none."""
    out = [f"{b.name} watcher: {p}" for p in b.problems]
    for e in b.console:
        msg = str(e.get("message", ""))
        if (e.get("level") == "SEVERE" or "Content Security Policy" in msg
                or "Content-Security-Policy" in msg or "Uncaught" in msg):
            out.append(f"{b.name} console {e.get('level')}: {msg}")
    return out


def _require_browser() -> None:
    if webdriver is None:
        pytest.fail("the selenium package is missing from the venv: run scripts/deps.sh")
    for p in (CHROMIUM, CHROMEDRIVER):
        if not p.is_file():
            pytest.fail(f"{p} is missing: run scripts/deps.sh (Debian chromium, chromium-driver)")


def _trust_flags(cluster) -> tuple:
    """Chromium flags that make it accept the local cluster's HAProxy certificate: the hash of
    its public key (a fresh headless profile has no trust store to add the CA to)."""
    crt = cluster.data_dir / "tls" / "server.crt"
    pub = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-pubkey"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, check=True,
                         capture_output=True).stdout
    return (f"--ignore-certificate-errors-spki-list="
            f"{base64.b64encode(hashlib.sha256(der).digest()).decode()}",)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_two_browsers_chat_through_haproxy(cluster, scheme):
    """Over http:// on CHAT_PUBLIC_PORT, and over https:// on CHAT_TLS_PORT, where the page must
    open wss:// (and its CSP and the gateways' origin check must allow that)."""
    _require_browser()

    if scheme == "https":
        url = f"https://127.0.0.1:{cluster.tls_port}/"
        flags = _trust_flags(cluster)
    else:
        url = f"http://127.0.0.1:{cluster.public_port}/"
        flags = ()
    room = unique("browser")
    alice_name, bob_name = unique("alice"), unique("bob")
    # Markup and an ampersand: must appear literally, never as a <b> element or an entity.
    text = f"<b>x</b> & {unique('hello')}"
    t0 = time.monotonic()
    browsers: list[Browser] = []
    console_reported = False
    try:
        alice = Browser("alice", cluster.data_dir, flags)
        browsers.append(alice)
        bob = Browser("bob", cluster.data_dir, flags)
        browsers.append(bob)

        alice.sign_in(url, alice_name)
        bob.sign_in(url, bob_name)
        for b in browsers:  # both land in the default room first
            b.wait("room general joined", lambda d, b=b: b._joined("general"))

        # HAProxy balances /ws with leastconn, so bob's connection normally lands on the other
        # gateway than alice's. Connections another test has not fully closed yet can tip the
        # balance: then bob reloads the page (a few times at most), which reconnects him.
        for _ in range(3):
            if bob.gateway() != alice.gateway():
                break
            bob.reload()
        gw_a, gw_b = alice.gateway(), bob.gateway()
        if gw_a == gw_b:
            # Accepted: the page's behaviour is the same; only the cross-gateway fan-out is then
            # not exercised by this test (test_messaging covers it without a browser).
            warnings.warn(f"both browsers stayed on {gw_a} (leastconn); the message did not "
                          f"cross gateways in this run")

        alice.join(room)
        bob.join(room)
        alice.send(text)

        # The room is new and only alice writes to it: the first confirmed entry on each page
        # is her message (on her page it moves there from the "being sent" list once acked).
        pending_css = (f'section.room-view[aria-label="Messages in {room}"] '
                       f'ol.pending-list > li')
        for b in (alice, bob):
            b.wait(f"a confirmed message in {room} (sent {text!r})",
                   lambda d, b=b: (any(m["id"] for m in b.confirmed(room))
                                   and not d.find_elements(By.CSS_SELECTOR, pending_css)))

        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        seen = {}
        for b in (alice, bob):
            msgs = b.confirmed(room)
            assert len(msgs) == 1, f"{b.name}: {len(msgs)} messages in {room}, expected 1: {msgs}"
            m = seen[b.name] = msgs[0]
            assert m["text"] == text, \
                f"{b.name}: the message reads {m['text']!r} (innerHTML {m['html']!r}), sent {text!r}"
            assert m["elements"] == 0 and m["html"] == escaped, \
                f"{b.name}: message text became markup: innerHTML {m['html']!r}"
            bolds = b.driver.find_elements(By.CSS_SELECTOR, b.room_list_css(room) + " b")
            assert not bolds, f"{b.name}: {len(bolds)} <b> element(s) in the message list"
            assert m["visible"], f"{b.name}: the message is in the list but not displayed"
            shown = b.driver.find_element(
                By.CSS_SELECTOR, b.room_list_css(room) + " li .msg-text").text
            assert shown == text, f"{b.name}: rendered text {shown!r}, sent {text!r}"
        assert seen["alice"]["id"] == seen["bob"]["id"], f"ids differ: {seen}"
        assert seen["alice"]["from"] == f"{alice_name} (you)", seen["alice"]
        assert seen["bob"]["from"] == alice_name, seen["bob"]

        for b in browsers:
            b.collect_problems()
        problems = [p for b in browsers for p in _console_problems(b)]
        console_reported = True
        assert not problems, "browser console:\n  " + "\n  ".join(problems)
        print(f"browsers on {gw_a} and {gw_b}; {time.monotonic() - t0:.1f}s")
    except (AssertionError, WebDriverException) as e:
        shots = [b.screenshot(cluster.data_dir, "failure") for b in browsers]
        for b in browsers:
            try:
                b.collect_problems()
            except Exception:  # noqa: BLE001
                pass
        problems = [] if console_reported else [p for b in browsers for p in _console_problems(b)]
        raise AssertionError(f"{e}\nscreenshots: {', '.join(shots) or 'none'}"
                             + ("\nbrowser console:\n  " + "\n  ".join(problems)
                                if problems else "")) from None
    finally:
        for b in browsers:
            try:
                b.quit()
            except Exception:  # noqa: BLE001
                pass


def _connected_to(b: Browser) -> str | None:
    m = re.fullmatch(r"Connected to (\S+)", b.text("#conn-text").strip())
    return m.group(1) if m else None


def test_browser_keeps_chatting_through_a_gateway_restart(cluster):
    _require_browser()

    url = f"http://127.0.0.1:{cluster.public_port}/"
    room = unique("restart")
    texts = [unique("one"), unique("two"), unique("three")]
    browsers: list[Browser] = []
    stopped = None
    try:
        alice = Browser("alice", cluster.data_dir)
        browsers.append(alice)
        bob = Browser("bob", cluster.data_dir)
        browsers.append(bob)
        alice.sign_in(url, unique("alice"))
        bob.sign_in(url, unique("bob"))
        for _ in range(3):  # different gateways if leastconn allows (see the test above)
            if bob.gateway() != alice.gateway():
                break
            bob.reload()
        for b in browsers:
            b.join(room)
        alice.send(texts[0])
        for b in browsers:
            b.wait(f"{texts[0]!r} confirmed", lambda d, b=b: len(b.confirmed(room)) == 1)

        gw = alice.gateway()  # gw-N runs as cluster.sh's gateway-N
        n = int(gw.rsplit("-", 1)[1])
        stopped = f"gateway-{n}"
        cluster.script("stop", stopped, timeout=60)
        # both write while alice's page may still be reconnecting: hers waits in its outbox
        bob.send(texts[1])
        alice.send(texts[2])
        alice.wait(f"a connection to a gateway other than {gw}",
                   lambda d: _connected_to(alice) not in (None, gw), timeout=40)

        pending_css = f'section.room-view[aria-label="Messages in {room}"] ol.pending-list > li'
        for b in browsers:
            b.wait(f"all three messages confirmed in {room}",
                   lambda d, b=b: (len(b.confirmed(room)) >= 3
                                   and not d.find_elements(By.CSS_SELECTOR, pending_css)),
                   timeout=40)
        time.sleep(1)  # a duplicate arriving late would show up now
        shown = {}
        for b in browsers:
            msgs = b.confirmed(room)
            got = [m["text"] for m in msgs]
            assert sorted(got) == sorted(texts), f"{b.name}: {got}, sent {texts}"
            ids = [m["id"] for m in msgs]
            assert ids == sorted(ids) and len(set(ids)) == 3, f"{b.name}: ids {ids}"
            gaps = b.driver.find_elements(By.CSS_SELECTOR, b.room_list_css(room) + " > li.gap")
            assert not gaps, f"{b.name}: a gap marker: {[g.text for g in gaps]}"
            shown[b.name] = ids
        assert shown["alice"] == shown["bob"], shown

        for b in browsers:
            b.collect_problems()
        # a reconnect attempt that meets the stopping gateway may log a failed WebSocket
        # handshake; that is the network, not the page
        problems = [p for b in browsers for p in _console_problems(b)
                    if "WebSocket connection to" not in p]
        assert not problems, "browser console:\n  " + "\n  ".join(problems)
    except (AssertionError, WebDriverException) as e:
        shots = [b.screenshot(cluster.data_dir, "restart-failure") for b in browsers]
        raise AssertionError(f"{e}\nscreenshots: {', '.join(shots) or 'none'}") from None
    finally:
        for b in browsers:
            try:
                b.quit()
            except Exception:  # noqa: BLE001
                pass
        if stopped:
            cluster.script("start", stopped, timeout=120)
            wait_readyz(cluster.gateway_ports[int(stopped.rsplit("-", 1)[1]) - 1], 200, 60)


def _members(b: Browser) -> dict:
    """The member list the page shows for its current room: its heading, note and entries."""
    return b.driver.execute_script(
        """
        const panel = document.getElementById('members-panel');
        return {
          shown: !panel.hidden,
          title: document.getElementById('members-title').textContent,
          note: document.getElementById('members-note').hidden ? ''
            : document.getElementById('members-note').textContent,
          users: [...document.querySelectorAll('#member-list > li')].map((li) => ({
            user: li.dataset.user, text: li.textContent,
            button: !!li.querySelector('button.member-open'),
          })),
        };
        """)


def _sidebar_item(b: Browser, room: str) -> dict | None:
    """The sidebar entry of a room or direct conversation: which list, label, badge, state."""
    return b.driver.execute_script(
        """
        for (const list of ['room-list', 'dm-list']) {
          for (const li of document.querySelectorAll('#' + list + ' > li')) {
            const name = li.querySelector('.room-name');
            if (name.dataset.room !== arguments[0]) continue;
            const badge = li.querySelector('.badge');
            return { list, label: name.textContent, badge: badge ? badge.textContent : '',
                     current: li.classList.contains('current'),
                     status: li.querySelector('.room-status') ? 'joining' : '' };
          }
        }
        return null;
        """, room)


def _messages_in(b: Browser, room: str) -> list[str]:
    return b.driver.execute_script(
        """
        const v = [...document.querySelectorAll('section.room-view')]
          .find((s) => s.dataset.room === arguments[0]);
        if (!v) return [];
        return [...v.querySelectorAll('ol.messages:not(.pending-list) > li.msg .msg-text')]
          .map((p) => p.textContent);
        """, room)


def _seen(b: Browser, room: str) -> list[str]:
    """The texts of the messages marked "Seen" in a room."""
    return b.driver.execute_script(
        """
        const v = [...document.querySelectorAll('section.room-view')]
          .find((s) => s.dataset.room === arguments[0]);
        if (!v) return [];
        return [...v.querySelectorAll('li.msg.seen')]
          .filter((li) => li.querySelector('.msg-state').textContent === 'Seen')
          .map((li) => li.querySelector('.msg-text').textContent);
        """, room)


def _open_item(b: Browser, list_id: str, room: str) -> None:
    """Clicks a room's or conversation's entry in the sidebar (#room-list or #dm-list)."""
    b.driver.find_element(
        By.XPATH, f'//ul[@id="{list_id}"]//span[@data-room="{room}"]/ancestor::button').click()


def _two_people(cluster, browsers: list) -> tuple:
    """Alice and bob signed in, on different gateways if leastconn allows (see the first test),
    with their names and their direct room."""
    url = f"http://127.0.0.1:{cluster.public_port}/"
    alice_name, bob_name = unique("alice"), unique("bob")
    alice = Browser("alice", cluster.data_dir)
    browsers.append(alice)
    bob = Browser("bob", cluster.data_dir)
    browsers.append(bob)
    alice.sign_in(url, alice_name)
    bob.sign_in(url, bob_name)
    for _ in range(3):
        if bob.gateway() != alice.gateway():
            break
        bob.reload()
    # the direct room's ids in byte order: these names are ASCII, so str order is byte order
    dm = f"dm:{min(alice_name, bob_name)}:{max(alice_name, bob_name)}"
    return url, alice, bob, alice_name, bob_name, dm


def _no_console_problems(browsers: list) -> None:
    for b in browsers:
        b.collect_problems()
    problems = [p for b in browsers for p in _console_problems(b)]
    assert not problems, "browser console:\n  " + "\n  ".join(problems)


def _quit_all(browsers: list) -> None:
    for b in browsers:
        try:
            b.quit()
        except Exception:  # noqa: BLE001
            pass


def test_browser_member_list_and_direct_message(cluster):
    """Two people in one room see each other in its member list (the snapshot of the join, and
    the presence diff of the later joiner), alice starts a direct conversation from bob's name,
    bob's page lists it under direct messages with an unread badge (and a count in the tab
    title) while he is in the room, the badge and the count clear when he opens it, and bob
    leaving the room takes him off alice's member list."""
    _require_browser()
    room = unique("members")
    hello = unique("hi-bob")
    browsers: list[Browser] = []
    try:
        url, alice, bob, alice_name, bob_name, dm = _two_people(cluster, browsers)

        # members: alice is first (bob arrives as a presence diff), bob gets the snapshot
        alice.join(room)
        bob.join(room)
        for me, other_name in ((alice, bob_name), (bob, alice_name)):
            me.wait(f"{other_name} in the member list of {room}",
                    lambda d, me=me, n=other_name: any(
                        u["user"] == n and u["button"] for u in _members(me)["users"]))
            m = _members(me)
            assert m["shown"], f"{me.name}: the member list is not shown at 1200 px: {m}"
            assert m["title"] == "Members (2)", f"{me.name}: {m}"
            assert m["note"] == "", f"{me.name}: a truncation note for 2 members: {m}"
            assert sorted(u["user"] for u in m["users"]) == sorted([alice_name, bob_name]), m
            own = [u for u in m["users"] if u["user"] != other_name][0]
            assert own["text"].endswith("(you)") and not own["button"], m

        # alice starts the direct conversation from bob's name in the member list
        alice.driver.find_element(
            By.CSS_SELECTOR, f'#member-list li[data-user="{bob_name}"] button.member-open').click()
        alice.wait("the direct conversation open and joined",
                   lambda d: (alice.text("#room-title") == f"@ {bob_name}"
                              and (_sidebar_item(alice, dm) or {}).get("current")
                              and not _sidebar_item(alice, dm)["status"]))
        assert _sidebar_item(alice, dm)["list"] == "dm-list", _sidebar_item(alice, dm)
        alice.send(hello)
        alice.wait("her direct message confirmed", lambda d: _messages_in(alice, dm) == [hello])

        # bob is still in the room: the conversation appears, unread, and the title counts it
        bob.wait("the new conversation with an unread badge in the sidebar",
                 lambda d: (_sidebar_item(bob, dm) or {}).get("badge") == "1")
        item = _sidebar_item(bob, dm)
        assert item["list"] == "dm-list" and item["label"] == f"@ {alice_name}", item
        assert bob.driver.title == "(1) Chat", bob.driver.title
        assert bob.text("#room-title") == f"# {room}"

        # opening it shows the message and clears the badge and the title's count
        _open_item(bob, "dm-list", dm)
        bob.wait("alice's message in the conversation", lambda d: _messages_in(bob, dm) == [hello])
        bob.wait("the unread badge cleared",
                 lambda d: (_sidebar_item(bob, dm) or {}).get("badge") == ""
                 and bob.driver.title == "Chat")

        # bob leaves the room: alice's member list of it loses him (presence diff)
        _open_item(alice, "room-list", room)
        alice.wait(f"# {room} shown", lambda d: alice.text("#room-title") == f"# {room}")
        bob.driver.find_element(
            By.CSS_SELECTOR, f'#room-list button.room-leave[aria-label="Leave {room}"]').click()
        alice.wait(f"{bob_name} gone from the member list",
                   lambda d: [u["user"] for u in _members(alice)["users"]] == [alice_name]
                   and _members(alice)["title"] == "Members (1)")
        _no_console_problems(browsers)
    except (AssertionError, WebDriverException) as e:
        shots = [b.screenshot(cluster.data_dir, "members-failure") for b in browsers]
        raise AssertionError(f"{e}\nscreenshots: {', '.join(shots) or 'none'}") from None
    finally:
        _quit_all(browsers)


def test_browser_typing_receipts_and_read_state_across_devices(cluster):
    """In a direct conversation (opened from the sidebar's form by its name): bob opening it
    makes alice's page mark her message "Seen" (read, then receipt); alice sees "bob is
    typing…" while he writes and not once he sent. Bob then signs in on a new device (a fresh
    browser profile): its sidebar comes back from the server's rooms list with the
    conversation, read; alice's next message is unread on both of his devices until he reads
    it on one (read, to his other connections)."""
    _require_browser()
    hello, reply, again = unique("hi-bob"), unique("hi-alice"), unique("again")
    browsers: list[Browser] = []
    try:
        url, alice, bob, alice_name, bob_name, dm = _two_people(cluster, browsers)
        alice.wait("the room name input", lambda d: alice.shown("#join-input")).send_keys(dm)
        alice.driver.find_element(By.CSS_SELECTOR, "#join-form button[type=submit]").click()
        alice.wait("the direct conversation open and joined",
                   lambda d: ((_sidebar_item(alice, dm) or {}).get("current")
                              and not _sidebar_item(alice, dm)["status"]))
        alice.send(hello)
        bob.wait("the conversation, unread", lambda d: (_sidebar_item(bob, dm) or {}).get(
            "badge") == "1")
        _open_item(bob, "dm-list", dm)
        bob.wait("alice's message", lambda d: _messages_in(bob, dm) == [hello])
        # his page told the server (read), which told alice's (receipt)
        alice.wait("'Seen' under her message", lambda d: _seen(alice, dm) == [hello])

        # typing: alice sees bob's typing line while he writes, and not once he sent
        bob.driver.find_element(By.ID, "message-input").send_keys(reply)
        alice.wait(f"'{bob_name} is typing…'",
                   lambda d: alice.text("#typing-line") == f"{bob_name} is typing\u2026")
        assert bob.text("#typing-line") == "", "bob sees his own typing"
        bob.driver.find_element(By.ID, "send-button").click()
        alice.wait("bob's reply, and no typing line",
                   lambda d: _messages_in(alice, dm) == [hello, reply]
                   and alice.text("#typing-line") == "")

        # bob on a new device: the sidebar comes back from the server's rooms list, the
        # conversation under direct messages with nothing unread (he read it on the first one)
        bob2 = Browser("bob2", cluster.data_dir)
        browsers.append(bob2)
        bob2.sign_in(url, bob_name)
        bob2.wait("the conversation with alice restored, read",
                  lambda d: (_sidebar_item(bob2, dm) or {}).get("list") == "dm-list"
                  and _sidebar_item(bob2, dm)["label"] == f"@ {alice_name}"
                  and _sidebar_item(bob2, dm)["badge"] == "")
        # alice writes again while bob's first device shows another room: both of his devices
        # count it; reading it on the new one clears the first one's badge too
        _open_item(bob, "room-list", "general")
        bob.wait("# general shown", lambda d: bob.text("#room-title") == "# general")
        alice.send(again)
        for b in (bob, bob2):
            b.wait("the new message counted unread",
                   lambda d, b=b: (_sidebar_item(b, dm) or {}).get("badge") == "1")
        _open_item(bob2, "dm-list", dm)
        bob2.wait("the message on the new device", lambda d: again in _messages_in(bob2, dm))
        bob.wait("the badge cleared by the read on the other device",
                 lambda d: (_sidebar_item(bob, dm) or {}).get("badge") == ""
                 and bob.driver.title == "Chat")
        _no_console_problems(browsers)
    except (AssertionError, WebDriverException) as e:
        shots = [b.screenshot(cluster.data_dir, "read-failure") for b in browsers]
        raise AssertionError(f"{e}\nscreenshots: {', '.join(shots) or 'none'}") from None
    finally:
        _quit_all(browsers)
