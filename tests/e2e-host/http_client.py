#!/usr/bin/env python3
"""The appliance through Python's http.client (the standard library only), from this machine,
through the loopback ports forwarded to it (XENECHO_HTTP_URL, XENECHO_METRICS_URL): a GET echoed
as its own head, a POST's body echoed byte for byte, the JSON description read with the json
module, two requests on one kept-alive connection, and the metrics. Prints "PASS: what" or
"FAIL: what (why)" for each; exits 1 if any failed. Run by tests/e2e-host/run.sh."""

import hashlib
import http.client
import json
import os
import sys
import urllib.parse

HTTP = urllib.parse.urlsplit(os.environ.get("XENECHO_HTTP_URL", "http://127.0.0.1:8080/"))
METRICS = urllib.parse.urlsplit(os.environ.get("XENECHO_METRICS_URL", "http://127.0.0.1:8081/metrics"))
TIMEOUT = 60


def connect(url=HTTP):
    return http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT)


def exchange(connection, method, target, body=None, headers=None):
    """One request on `connection`; returns the response and its whole body."""
    connection.request(method, target, body=body, headers=headers or {})
    response = connection.getresponse()
    return response, response.read()


def get_echo():
    response, body = exchange(connect(), "GET", "/python/get?x=1", headers={"X-Python": "yes"})
    assert response.status == 200, f"status {response.status}"
    assert response.getheader("Content-Type") == "text/plain", response.getheader("Content-Type")
    assert body.startswith(b"GET /python/get?x=1 HTTP/1.1\r\n"), body[:80]
    assert b"\r\nX-Python: yes\r\n" in body, body
    assert body.endswith(b"\r\n\r\n"), body[-20:]


def post_echo():
    sent = os.urandom(100_000)
    headers = {"Content-Type": "application/x-python"}
    response, body = exchange(connect(), "POST", "/python/post", body=sent, headers=headers)
    assert response.status == 200, f"status {response.status}"
    assert response.getheader("Content-Type") == "application/x-python", response.getheader("Content-Type")
    assert body == sent, f"{len(body)} bytes back, sha256 {hashlib.sha256(body).hexdigest()[:16]}"


def json_description():
    sent = b"a body of some bytes"
    headers = {"Accept": "application/json", "X-Python": 'say "hi"', "Content-Type": "text/plain"}
    response, body = exchange(connect(), "POST", "/python/json?y=%22", body=sent, headers=headers)
    assert response.status == 200, f"status {response.status}"
    assert response.getheader("Content-Type") == "application/json", response.getheader("Content-Type")
    described = json.loads(body)
    assert described["method"] == "POST" and described["target"] == "/python/json?y=%22", described
    assert described["path"] == "/python/json" and described["query"] == "y=%22", described
    fields = [(field["name"], field["value"]) for field in described["headers"]]
    assert ("X-Python", 'say "hi"') in fields, fields
    assert fields[0][0] == "Host", fields
    assert described["body"]["length"] == len(sent), described["body"]
    assert described["body"]["sha256"] == hashlib.sha256(sent).hexdigest(), described["body"]
    assert described["instance"]["name"], described["instance"]


def keep_alive():
    connection = connect()
    ports = []
    for number in (1, 2):
        response, body = exchange(connection, "GET", f"/python/keep-alive/{number}?format=json")
        assert response.status == 200, f"request {number}: status {response.status}"
        assert (response.getheader("Connection") or "").lower() != "close", "the appliance closed"
        ports.append(json.loads(body)["client"]["port"])
        if number == 1:
            first_socket = connection.sock
    # http.client keeps its socket when the connection stays open; the appliance saw one client
    # port, so one connection reached it (the forwarding opens one per connection from here).
    assert connection.sock is first_socket and first_socket is not None, "http.client reconnected"
    assert ports[0] == ports[1], f"the appliance saw client ports {ports}"


def metrics():
    response, body = exchange(connect(METRICS), "GET", METRICS.path or "/metrics")
    assert response.status == 200, f"status {response.status}"
    assert b"# TYPE xenecho_http_requests_total counter" in body, body[:200]


CHECKS = [
    ("GET: its own head echoed as text/plain", get_echo),
    ("POST of 100 000 random bytes: echoed byte for byte with its Content-Type", post_echo),
    ("Accept: application/json: the json module reads the request and its body's SHA-256", json_description),
    ("keep-alive: two requests on one connection (one client port at the appliance)", keep_alive),
    ("metrics: Prometheus text through the forwarded metrics port", metrics),
]


def main():
    failed = 0
    for what, check in CHECKS:
        try:
            check()
            print(f"PASS: python http.client: {what}", flush=True)
        except Exception as error:  # a failed assertion, a refused connection, bad JSON: all a FAIL
            failed += 1
            print(f"FAIL: python http.client: {what} ({type(error).__name__}: {error})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
