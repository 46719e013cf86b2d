"""The limit for Python on this machine: sign and POST in a tight loop, nothing else.

Each process signs (Standard Webhooks, delivery.signing) a fixed body and POSTs
it over one keep-alive requests.Session to the bench receiver, for a fixed
time; `fresh=True` makes a new session (a new TLS connection) per POST.
No database, no broker: what is left is the HTTP client, TLS and the receiver.
"""

import multiprocessing
import time
import uuid

BODY = b'{"id":"evt_raw","type":"lot.created","timestamp":"2026-01-01T00:00:00.000Z","organisation":"bench",' \
       b'"data":{"lot_id":"LOT-1","weight_grams":5000.0,"strain":"Blue Dream"}}'


def _loop(url: str, secret: str, ca_path: str, seconds: float, fresh: bool, start_at: float, out) -> None:
    import requests

    from delivery.signing import signed_headers

    session = None if fresh else requests.Session()
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < deadline:
        headers = signed_headers(secret=secret, msg_id=f"raw_{uuid.uuid4().hex}", timestamp=int(time.time()), body=BODY)
        headers["Content-Type"] = "application/json"
        if fresh:
            with requests.Session() as s:
                response = s.post(url, data=BODY, headers=headers, verify=ca_path, timeout=10)
        else:
            response = session.post(url, data=BODY, headers=headers, verify=ca_path, timeout=10)
        response.raise_for_status()
        sent += 1
    out.put(sent)


def raw_limit(*, url: str, secret: str, ca_path: str, processes: int, seconds: float, fresh: bool = False) -> float:
    """Return POSTs per second over `processes` processes in parallel for `seconds`."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 1.5  # every process imported and waiting before the clock starts
    procs = [ctx.Process(target=_loop, args=(url, secret, ca_path, seconds, fresh, start_at, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join(timeout=10)
    return total / seconds


def client_cpu(*, url: str, port: int, secret: str, ca_path: str, posts: int) -> dict:
    """Return the CPU ms per keep-alive POST of a requests session (what transport.py used before), of
    urllib3's pool alone, and of delivery.transport.post (urllib3 with the address guard)."""
    import requests
    import urllib3

    from delivery.signing import signed_headers

    def headers():
        h = signed_headers(secret=secret, msg_id=f"raw_{uuid.uuid4().hex}", timestamp=int(time.time()), body=BODY)
        h["Content-Type"] = "application/json"
        return h

    session = requests.Session()
    session.trust_env = False
    pool = urllib3.HTTPSConnectionPool("127.0.0.1", port, ca_certs=ca_path, cert_reqs="CERT_REQUIRED", maxsize=1)
    path = url.split(str(port), 1)[1]

    def via_requests():
        r = session.post(url, data=BODY, headers=headers(), verify=ca_path, timeout=(5, 10), stream=True,
                         allow_redirects=False)
        r.raw.read()
        r.close()

    def via_urllib3():
        r = pool.urlopen("POST", path, body=BODY, headers=headers(), timeout=urllib3.Timeout(connect=5, read=10),
                         redirect=False, preload_content=False)
        r.read()
        r.release_conn()

    def via_transport():  # our delivery.transport.post, as the workers call it
        from django.conf import settings

        from delivery import transport

        settings.WEBHOOKS_CA_BUNDLE = ca_path
        if not transport.post(url, BODY, headers()).ok:
            raise RuntimeError("the bench receiver refused a transport.post")

    figures = {}
    for name, send in (("requests", via_requests), ("urllib3", via_urllib3), ("transport", via_transport)):
        for _ in range(20):
            send()
        start = time.process_time()
        for _ in range(posts):
            send()
        figures[f"{name}_cpu_ms"] = (time.process_time() - start) * 1000 / posts
    return figures
