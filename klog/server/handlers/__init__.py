"""Request handlers, one module per API family; each exposes ``apis(node) -> list[Api]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from klog.server.handlers import admin, cluster, data, groups, producers
from klog.server.router import Api

if TYPE_CHECKING:
    from klog.server.node import Node

_FAMILIES = (admin, cluster, data, groups, producers)


def all_apis(node: Node) -> list[Api]:
    return [api for family in _FAMILIES for api in family.apis(node)]
