"""A working day at CIM, for locust (run by bench/load_bench.py against the production stack).

Each simulated person signs in through the login page and then, with pauses, mostly reads — the customer list,
searches by name, pinyin and phone digits, customer pages — and sometimes writes through the API with their
token: creates and edits customers and logs calls. Requests are the ones the page itself sends: opening the list
loads the whole page; turning its pages and typing in its search box ask htmx for the results only. A website
sends batches of tracking events, and now and then someone exports a filtered list. Settings come from the
environment bench/load_bench.py sets: CIM_LOAD_USERS (username:password:token,...), CIM_LOAD_WRITE_KEY,
CIM_LOAD_NUMBERS (customer numbers) and CIM_LOAD_CA (the stack's certificate).
"""

import base64
import itertools
import os
import random
import re
import uuid

import gevent.ssl
from locust import FastHttpUser, between, task
from scenario import SEARCHES

ACCOUNTS = itertools.cycle([account.split(":", 2) for account in os.environ["CIM_LOAD_USERS"].split(",")])
NUMBERS = os.environ["CIM_LOAD_NUMBERS"].split(",")
WRITE_KEY = base64.b64encode(f"{os.environ['CIM_LOAD_WRITE_KEY']}:".encode()).decode()
# What htmx adds to the requests of the list page's search box and page links (hx-target="#results").
HTMX_RESULTS = {"HX-Request": "true", "HX-Target": "results"}
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Staff(FastHttpUser):
    """FastHttpUser (geventhttpclient), not HttpUser (requests): it needs a fraction of the CPU per request, and
    locust shares the two cores with the stack it measures."""

    wait_time = between(1, 4)
    insecure = False  # the certificate and its host name are checked
    ssl_context_factory = staticmethod(lambda **_: gevent.ssl.create_default_context(cafile=os.environ["CIM_LOAD_CA"]))

    def on_start(self):
        username, password, token = next(ACCOUNTS)
        self.api = {"Authorization": f"Bearer {token}"}
        page = self.client.get("/login/", name="login page")
        self.client.post(
            "/login/",
            {"login": username, "password": password, "csrfmiddlewaretoken": CSRF.search(page.text).group(1)},
            headers={"Referer": f"{self.host}/login/"},
            name="log in",
        )
        self.mine: list[str] = []

    @task(15)
    def customer_list(self):
        self.client.get("/", name="list")

    @task(15)
    def next_page(self):
        self.client.get(f"/?page={random.randint(2, 20)}", headers=HTMX_RESULTS, name="list page (htmx)")

    @task(25)
    def search(self):
        query = f"q={random.choice(SEARCHES)}&status=current&sort=-created&per_page=25"
        self.client.get(f"/?{query}", headers=HTMX_RESULTS, name="search (htmx)")

    @task(20)
    def customer_page(self):
        self.client.get(f"/customers/{random.choice(NUMBERS)}/", name="customer page")

    @task(5)
    def create(self):
        body = {"display_name": f"负载客户{uuid.uuid4().hex[:6]}", "phones": [{"number": _mobile()}]}
        with self.client.post(
            "/api/v1/customers", json=body, headers=self.api, name="create", catch_response=True
        ) as response:
            if response.status_code in (201, 409):  # 409: the phone already belongs to someone, a real answer
                response.success()
                if response.status_code == 201:
                    self.mine.append(response.json()["number"])

    @task(5)
    def edit(self):
        number = random.choice(self.mine or NUMBERS)
        alias = {"alias": f"别名{random.randint(1, 999)}"}
        self.client.patch(f"/api/v1/customers/{number}", json=alias, headers=self.api, name="edit")

    @task(5)
    def log_call(self):
        number = random.choice(NUMBERS)
        body = {"kind": "call", "direction": "outbound", "subject": "回访", "body": "客户对服务满意"}
        self.client.post(f"/api/v1/customers/{number}/interactions", json=body, headers=self.api, name="log call")

    @task(8)
    def website_events(self):
        batch = [
            {"type": "page", "anonymousId": uuid.uuid4().hex, "name": "产品页", "properties": {"path": "/p/1"}}
            for _ in range(20)
        ]
        self.client.post(
            "/ingest/v1/batch", json={"batch": batch}, headers={"Authorization": f"Basic {WRITE_KEY}"}, name="ingest"
        )

    @task(2)
    def export(self):
        self.client.get(f"/customers/export/?format=csv&q={random.choice(SEARCHES)}", name="export")


def _mobile() -> str:
    return f"13{random.randint(0, 9)}{random.randint(0, 99_999_999):08d}"
