"""``costmw serve``: an OpenAI-compatible gateway, so apps in any language get the chain.

Needs the ``server`` extra (``pip install 'costmw[server]'``).
"""

from __future__ import annotations

from ._app import Gateway, GatewaySettings, create_app, load_gateway
from ._keys import KeyStore, VirtualKey

__all__ = ["Gateway", "GatewaySettings", "KeyStore", "VirtualKey", "create_app", "load_gateway"]
