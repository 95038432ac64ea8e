"""What the Python check scripts share (attack, exactly-once, replica-loss, ui-check): a printed
check that counts failures, a free loopback port, a JSON call to a server with a key, and
stopping a process that may not stop. Imported from the scripts' own folder."""
import json, socket, subprocess, urllib.error, urllib.request

failures = []


def check(ok, what):
    print(("  ok   " if ok else "  FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def stop(process, grace=10):
    """SIGTERM, then SIGKILL after `grace` seconds: a server or browser slow to shut down on a
    loaded machine must not fail, nor hang, a run whose checks held."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
