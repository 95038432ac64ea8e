"""What the Python check scripts share (attack, exactly-once, ui-check): a printed check that
counts failures, and a free loopback port. Imported from the scripts' own folder."""
import socket

failures = []


def check(ok, what):
    print(("  ok   " if ok else "  FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
