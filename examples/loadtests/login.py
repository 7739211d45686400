"""Locust load test for the sample game: new-device logins plus occasional health checks."""

import uuid

from locust import HttpUser, between, task


class Player(HttpUser):
    wait_time = between(0.05, 0.2)

    @task(10)
    def login_device_id(self):
        with self.client.post(
            "/Login/LoginDeviceId",
            json={"DeviceId": str(uuid.uuid4())},
            name="LoginDeviceId",
            catch_response=True,
        ) as resp:
            try:
                ok = resp.status_code == 200 and "PlayerId" in resp.json()
            except ValueError:
                ok = False
            if ok:
                resp.success()
            else:
                resp.failure(f"no PlayerId in response (HTTP {resp.status_code})")

    @task(1)
    def healthz(self):
        self.client.get("/healthz", name="healthz")
