"""Running a gateway in a thread of the test process, for the server tests."""

from __future__ import annotations

import threading
import time

from costmw.server import Gateway, create_app


class RunningGateway:
    def __init__(self, gateway: Gateway) -> None:
        import uvicorn

        self.gateway = gateway
        config = uvicorn.Config(create_app(gateway), host="127.0.0.1", port=0, log_level="error",
                                access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RunningGateway:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("gateway did not start")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0]
        self.port = sock.getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
