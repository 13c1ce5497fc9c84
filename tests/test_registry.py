"""The registry: what each vendor-compatible API registers with the core, and how the core
reads it (settings, key kinds, filter names, demo hooks, routes)."""

from __future__ import annotations

import pytest

from sessionscope import registry
from sessionscope.compat import VENDORS
from sessionscope.compat.thousandeyes import RATE_LIMIT
from sessionscope.config import Settings, load_settings
from sessionscope.service import FILTERS


def _nothing(app: object) -> None:
    return None


def test_every_compat_module_is_registered_in_the_demo_order() -> None:
    assert registry.vendors() == VENDORS
    names = [v.name for v in registry.vendors()]
    assert names == ["ncp-livestation", "thousandeyes", "ncp-vpe", "ekran"]
    assert len(registry.demos()) == 4


def test_signing_key_kinds_are_asked_for_by_their_option() -> None:
    assert [k.name for k in registry.key_kinds()] == ["ncp"]
    assert registry.key_kind().name == "ncp"
    assert registry.key_kind_for({"ncp": True}) == "ncp"
    assert registry.key_kind_for({"ncp": False, "other": True}) == "api"
    with pytest.raises(registry.RegistryError, match="no single signing key kind"):
        registry.key_kind("nope")


def test_vendor_settings_come_from_the_environment_into_extra() -> None:
    env = {"SESSIONSCOPE_SECRET_KEY": "k"}
    assert load_settings(env).vendor(RATE_LIMIT) == 240
    limited = load_settings({**env, "SESSIONSCOPE_RATE_LIMIT_PER_MINUTE": "7"})
    assert limited.vendor(RATE_LIMIT) == 7 and limited.extra == {"rate_limit_per_minute": 7}
    assert Settings().vendor(RATE_LIMIT) == 240
    with pytest.raises(ValueError):
        load_settings({**env, "SESSIONSCOPE_RATE_LIMIT_PER_MINUTE": "many"})


def test_vendor_filter_names_follow_the_kind_own() -> None:
    assert FILTERS["endpoint"][-1] == "domain" and FILTERS["endpoint"][0] == "agent_id"
    assert "domain" not in FILTERS["player"] and FILTERS["channel"] == ("channel",)
    assert set(FILTERS) == {"player", "desktop", "endpoint", "channel"}


def test_a_name_taken_twice_is_refused() -> None:
    kind = registry.KeyKind("ncp", "other", "a second kind named ncp")
    with pytest.raises(registry.RegistryError, match="key kind 'ncp' is taken"):
        registry.register(registry.Vendor("other", _nothing, key_kinds=(kind,)))
    setting = registry.Setting("rate_limit_per_minute", 1, int, "again")
    with pytest.raises(registry.RegistryError, match="setting"):
        registry.register(registry.Vendor("other", _nothing, settings=(setting,)))
    alias = registry.FilterAlias("endpoint", "domain", "visited_site", "fuzzy")
    with pytest.raises(registry.RegistryError, match="no match 'fuzzy'"):
        registry.register(registry.Vendor("other", _nothing, filters=(alias,)))
    assert "other" not in [v.name for v in registry.vendors()]
