import pytest
from pydantic import ValidationError

from shared.settings import ServiceSettings


def test_a_site_service_needs_its_site() -> None:
    with pytest.raises(ValidationError, match="KAPNET_SITE is required"):
        ServiceSettings(service="intake")


def test_only_outcomes_runs_in_the_network_role_and_it_has_no_site() -> None:
    network = ServiceSettings(service="outcomes", role="network", network_sites=["north"])
    assert network.instance == "outcomes@network"
    with pytest.raises(ValidationError, match="only outcomes"):
        ServiceSettings(service="intake", role="network", network_sites=["north"])
    with pytest.raises(ValidationError, match="belongs to no site"):
        ServiceSettings(service="outcomes", role="network", site="north", network_sites=["north"])


def test_the_network_names_its_member_sites_and_no_site_is_called_network() -> None:
    with pytest.raises(ValidationError, match="KAPNET_NETWORK_SITES"):
        ServiceSettings(service="outcomes", role="network")
    # kapnet.network.* are the network's topics: a site of that name would write into them.
    with pytest.raises(ValidationError, match="reserved"):
        ServiceSettings(service="intake", site="network")
    with pytest.raises(ValidationError, match="not a site name"):
        ServiceSettings(service="outcomes", role="network", network_sites=["North Site"])


def test_production_refuses_the_sqlite_fallback() -> None:
    with pytest.raises(ValidationError, match="KAPNET_DATABASE_URL is required"):
        ServiceSettings(service="intake", site="north", environment="production")


def test_settings_come_from_kapnet_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAPNET_SERVICE", "billing")
    monkeypatch.setenv("KAPNET_SITE", "south")
    monkeypatch.setenv("KAPNET_DATABASE_URL", "postgresql://kapnet@db/billing")
    settings = ServiceSettings()
    assert (settings.instance, settings.resolved_database_url()) == ("billing@south", "postgresql://kapnet@db/billing")
