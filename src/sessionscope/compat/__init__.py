"""The vendor-compatible APIs: one module (or package) per vendor family, each parsing its
vendor's requests, calling the core and shaping the answers.

Importing this package registers each family's :class:`~sessionscope.registry.Vendor` with the
core (its routes, signing-key kinds, settings, filter names and demo part); the core names no
vendor and asks ``sessionscope.registry``, which imports this package on first use.
"""

from __future__ import annotations

from sessionscope import registry
from sessionscope.compat import ekran, ncp_livestation, ncp_vpe, thousandeyes

__all__ = ["VENDORS"]

#: Every vendor-compatible API, in the order the demo prints them.
VENDORS = (ncp_livestation.VENDOR, thousandeyes.VENDOR, ncp_vpe.VENDOR, ekran.VENDOR)

for _vendor in VENDORS:
    registry.register(_vendor)
