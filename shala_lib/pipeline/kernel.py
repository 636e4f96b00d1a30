"""The notebooks' kernel, as the runner starts it: ipykernel with one log line silenced.

ipykernel >= 7 logs "Kernel is running over TCP without encryption ..." at every start of a kernel
over local TCP, which is how papermill starts it; the runner executes every notebook that way, so the
warning would be printed once per notebook and bury the ones that matter. Only that line is dropped
(`TcpWarningFilter`); every other kernel log line and every Python warning is kept.

    python -m shala_lib.pipeline.kernel -f CONNECTION_FILE     # what `QuietKernelManager` launches
"""

from __future__ import annotations

import logging
from typing import Any

from jupyter_client.manager import AsyncKernelManager

TCP_WARNING = "Kernel is running over TCP without encryption"


class TcpWarningFilter(logging.Filter):
    """Drops ipykernel's "running over TCP without encryption" record, keeps every other one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return TCP_WARNING not in record.getMessage()


class QuietKernelManager(AsyncKernelManager):
    """papermill's kernel manager, launching this module in place of `ipykernel_launcher`."""

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd: list[str] = super().format_kernel_cmd(extra_arguments)
        return [__name__ if part == "ipykernel_launcher" else part for part in cmd]


def main() -> Any:
    from ipykernel.kernelapp import IPKernelApp

    class QuietKernelApp(IPKernelApp):  # type: ignore[misc]
        def init_sockets(self) -> None:
            self.log.addFilter(TcpWarningFilter())
            super().init_sockets()

    return QuietKernelApp.launch_instance()


if __name__ == "__main__":
    main()
