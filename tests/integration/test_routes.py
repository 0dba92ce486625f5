"""The route checks (tests/lib/route_checks.py) through nginx, the web
server scripts/up starts by default."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
from route_checks import RouteChecks  # noqa: E402


class NginxRoutes(RouteChecks, harness.StackTestCase):
    stack_args = {"pool": "master", "extra_env": jh.pool_env()}
    web_name = "nginx"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.web_port = cls.stack.http_port


if __name__ == "__main__":
    import unittest
    unittest.main()
