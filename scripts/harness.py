"""What the Python check scripts share (attack, exactly-once, replica-loss, ui-check): a printed
check that counts failures, a free loopback port, a JSON call to a server with a key, and
stopping a process that may not stop. Imported from the scripts' own folder."""
import json, os, signal, socket, subprocess, urllib.error, urllib.request

failures = []


def check(ok, what):
    print(("  ok   " if ok else "  FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def stop(process, grace=10, group=False):
    """SIGTERM, then SIGKILL after `grace` seconds: a server or browser slow to shut down on a
    loaded machine must not fail, nor hang, a run whose checks held. With `group` (a process
    started in its own session, as chromium is) its whole process group gets each signal, and
    what is left of the group is killed at the end: chromium's renderer and GPU children
    outlived a SIGKILL sent to the browser alone."""
    def signal_all(sig):
        try:
            os.killpg(process.pid, sig) if group else process.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass
    if process is None:
        return
    if process.poll() is None:
        signal_all(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            signal_all(signal.SIGKILL)
            process.wait()
    if group:
        signal_all(signal.SIGKILL)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call_json(base, key, path, method="GET", body=None, timeout=15):
    """(status, parsed JSON answer) of one request; HTTP errors are answers, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
