#!/usr/bin/env python3
"""The pages in a real browser: Debian's chromium, headless, driven over the DevTools protocol.

Loads the kata month into a fresh store, serves it, records a reconciliation, signs in through the
sign-in form's own endpoint (the session cookie goes into the browser like any other), then opens
the run's page, the index and the account page: checks the DOM for the kata's numbers, that a
reader of another account sees none of them, and takes a screenshot of the report.

usage: ui-check.py BIN SCREENSHOT.png
"""
import atexit, base64, json, os, re, shutil, subprocess, sys, tempfile, time, urllib.parse, urllib.request
import websocket  # websocket-client, installed by scripts/ui-check
from harness import check, failures, free_port, stop

BIN, SHOT = sys.argv[1], sys.argv[2]
ADMIN = "ui-check-admin"


work = tempfile.mkdtemp(prefix="ub-ui-")
db = os.path.join(work, "kata.db")
subprocess.run([BIN, "demo", "--data-only", "--db", db], check=True, stdout=subprocess.DEVNULL)
reader = subprocess.check_output([BIN, "keys", "create", "--db", db, "--account", "acct_42", "--role", "reader"], text=True).strip()
stranger = subprocess.check_output([BIN, "keys", "create", "--db", db, "--account", "acct_7", "--role", "reader"], text=True).strip()
port = free_port()
server = subprocess.Popen([BIN, "serve", "--db", db, "--port", str(port), "--log-level", "error"], env=dict(os.environ, USAGEBOX_KEY=ADMIN),
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
# On any exit, a step below raising included: the server stopped, then its folder removed.
atexit.register(shutil.rmtree, work, True)
atexit.register(stop, server)
server.stdout.readline()
base = f"http://127.0.0.1:{port}"
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "..", "Plugins", "Anthropic", "Examples", "cost_report_2026_05.json"), "rb") as f:
    body = f.read()
req = urllib.request.Request(f"{base}/v1/reconciliations?vendor=anthropic&from=2026-05-01&to=2026-06-01&account=acct_42", data=body, method="POST",
                             headers={"Authorization": f"Bearer {ADMIN}"})
run = json.load(urllib.request.urlopen(req, timeout=120))["id"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def session(secret):
    """Signs in as a browser would (the form's POST) and returns the session cookie's value."""
    opener = urllib.request.build_opener(NoRedirect)
    data = urllib.parse.urlencode({"key": secret, "next": "/ui/"}).encode()
    try:
        opener.open(urllib.request.Request(f"{base}/ui/login", data=data, method="POST"), timeout=30)
    except urllib.error.HTTPError as e:
        cookie = e.headers.get("Set-Cookie", "")
        m = re.match(r"ub_session=([0-9a-f]+);", cookie)
        if m and "HttpOnly" in cookie:
            return m.group(1)
    raise SystemExit("signing in did not set an HttpOnly session cookie")


def launch(attempt):
    """A headless chromium with a fresh profile, and the page it opened, waiting up to a minute for
    its debugging port; None when it exits or opens nothing (its last words are printed). Stop 54's
    CI failed this step without saying why: a slow start, a read of the previous page and a slow
    exit are the ways it could, each bounded here."""
    port, log = free_port(), os.path.join(work, f"chromium-{attempt}.log")
    with open(log, "wb") as out:
        browser = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                    f"--remote-debugging-port={port}", f"--user-data-dir={os.path.join(work, f'profile-{attempt}')}",
                                    "--window-size=1280,2000", "about:blank"], stdout=subprocess.DEVNULL, stderr=out,
                                   start_new_session=True)  # its own process group: stopped whole, children too
    atexit.register(stop, browser, 10, True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and browser.poll() is None:
        try:
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5))
            return browser, next(t for t in targets if t["type"] == "page")
        except Exception:
            time.sleep(0.2)
    stop(browser, 10, True)
    with open(log, errors="replace") as f:
        print(f"chromium (attempt {attempt}) opened no page to drive (exit status {browser.poll()}, waited up to 60 s):", *f.readlines()[-10:], sep="\n  ", file=sys.stderr)
    return None


chrome, page = launch(1) or launch(2) or sys.exit("chromium did not start twice; see its output above")
ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
counter = [0]


def cdp(method, **params):
    counter[0] += 1
    ws.send(json.dumps({"id": counter[0], "method": method, "params": params}))
    while True:
        msg = json.loads(ws.recv())
        if msg.get("id") == counter[0]:
            if "error" in msg:
                raise SystemExit(f"{method}: {msg['error']}")
            return msg.get("result", {})


def visit(path, cookie):
    cdp("Network.clearBrowserCookies")
    cdp("Network.setCookie", name="ub_session", value=cookie, url=base + "/ui/", httpOnly=True, sameSite="Strict")
    # The document being left is marked, so the wait below ends only in a new one: right after
    # navigating, the previous page can still be the one whose readyState is "complete", at the
    # very same URL when a page is visited again with another key's session.
    cdp("Runtime.evaluate", expression="window.ubLeaving = true")
    cdp("Page.navigate", url=base + path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = cdp("Runtime.evaluate", expression="location.href + ' ' + document.readyState + (window.ubLeaving ? ' (previous page)' : '')")["result"]["value"]
        if state == f"{base}{path} complete":
            break
        time.sleep(0.05)
    else:
        raise SystemExit(f"{path} did not load within 30 s (last state: {state})")
    return cdp("Runtime.evaluate", expression="document.documentElement.outerHTML")["result"]["value"]


cdp("Network.enable")
cdp("Page.enable")
mine = session(reader)
dom = visit(f"/ui/reconciliations/{run}", mine)
check("Conclusive: 1 correction(s) proposed" in dom, "the verdict comes first on the report page")
check("+6,520,000" in dom and "+520,000" in dom and "191,400,000" in dom, "the kata's numbers are in the DOM (gap +6,520,000; correction +520,000)")
check("<svg" in dom and "metering gap since 2026-05-17" in dom, "inline SVG charts, the day the gap began marked")
check("<script" not in dom.lower(), "no script in the page")
shot = cdp("Page.captureScreenshot", format="png", captureBeyondViewport=True)
with open(SHOT, "wb") as f:
    f.write(base64.b64decode(shot["data"]))
check(os.path.getsize(SHOT) > 20_000, f"a screenshot of the report ({os.path.getsize(SHOT)} bytes, {SHOT})")
index = visit("/ui/", mine)
check(run in index, "the index lists the run")
account = visit("/ui/accounts?account=acct_42&month=2026-05", mine)
check("No drift" in account and "2026-05-31" in account, "the account's daily drift watch")
theirs = session(stranger)
other = visit(f"/ui/reconciliations/{run}", theirs)
check("520,000" not in other and "may not see" in other, "another account's reader sees none of it")
other_index = visit("/ui/", theirs)
check(run not in other_index and "acct_42" not in other_index, "nor in the index")
ws.close()
if failures:
    print(f"{len(failures)} page check(s) failed", file=sys.stderr)
    sys.exit(1)
print("every page check held")
