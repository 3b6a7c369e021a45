"""The sandbox card and bank processor: real behaviour, no real money (docs/gateways.md)."""

from pacioli.gateways.sandbox import magic
from pacioli.gateways.sandbox.delivery import DeliveryReport, QueuedEvent, Send, httpx_sender
from pacioli.gateways.sandbox.gateway import SandboxGateway
from pacioli.gateways.sandbox.runner import run_delivery_loop
from pacioli.gateways.sandbox.settings import SandboxSettings, get_sandbox_settings

__all__ = [
    "DeliveryReport",
    "QueuedEvent",
    "SandboxGateway",
    "SandboxSettings",
    "Send",
    "get_sandbox_settings",
    "httpx_sender",
    "magic",
    "run_delivery_loop",
]
