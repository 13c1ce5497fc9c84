"""Importers: pull sessions through a vendor's API and store them as events (``import``).

One module per vendor (``ncp_vpe``, ``ekran``, ``thousandeyes``) and the shared driver
(``driver``: the vendor's HTTP client, rate limits, the state file, deterministic ids).
"""
