"""Reading the integration catalog through both faces."""

from httpx import AsyncClient

from tests.factories import Factory, error_code


async def test_catalog_list_is_a_keyset_page_of_vendor_summaries(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")

    first = await client.get(
        "/v1/admin/integration-catalog", params={"limit": 2}, headers=viewer.headers
    )
    second = await client.get(
        "/v1/admin/integration-catalog",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=viewer.headers,
    )

    assert first.status_code == 200
    keys = [v["key"] for v in first.json()["data"] + second.json()["data"]]
    assert keys == sorted(keys)
    assert len(set(keys)) == 4
    assert first.json()["has_more"] is True
    assert "variants" not in first.json()["data"][0]


async def test_catalog_list_filters_by_category_status_and_name(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    url = "/v1/admin/integration-catalog"

    storage = await client.get(
        url, params={"category": "cloud_storage"}, headers=org.owner.headers
    )
    named = await client.get(
        url, params={"q": "ANALYTICS 4"}, headers=org.owner.headers
    )
    bad = await client.get(url, params={"category": "toys"}, headers=org.owner.headers)

    assert {v["key"] for v in storage.json()["data"]} == {
        "bigquery",
        "snowflake",
        "s3",
        "redshift",
    }
    assert [v["key"] for v in named.json()["data"]] == ["ga4"]
    assert bad.status_code == 422


async def test_one_vendor_comes_with_its_fields_and_variants(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(
        "/v1/admin/integration-catalog/ga4", headers=org.owner.headers
    )

    body = response.json()
    fields = {field["key"]: field for field in body["config_fields"]}
    default = next(v for v in body["variants"] if v["key"] == "default")
    assert response.status_code == 200
    assert fields["measurement_id"]["required"] is True
    assert fields["api_secret"]["type"] == "secret"
    assert default["default_config"]["envelope"]["events_path"] == "events[0]"
    assert (
        default["default_config"]["events"]["order_completed"]["vendor_event_name"]
        == "purchase"
    )


async def test_an_unknown_vendor_is_not_found(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.get(
        "/v1/admin/integration-catalog/nope", headers=org.owner.headers
    )

    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"


async def test_the_catalog_needs_a_token(client: AsyncClient) -> None:
    response = await client.get("/v1/admin/integration-catalog")

    assert response.status_code == 401


async def test_graphql_lists_vendors_and_reads_one(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")
    query = """
      { catalogVendors(filter: {category: "attribution"}) { key }
        catalogVendor(key: "ga4") {
          name configFields { key type required }
          variants { key defaultConfig } }
        missing: catalogVendor(key: "nope") { key } }
    """

    response = await client.post(
        "/v1/admin/graphql", json={"query": query}, headers=viewer.headers
    )

    data = response.json()["data"]
    assert [v["key"] for v in data["catalogVendors"]] == [
        "adjust",
        "appsflyer",
        "branch",
    ]
    assert data["catalogVendor"]["name"] == "Google Analytics 4"
    assert {"key": "api_secret", "type": "secret", "required": True} in data[
        "catalogVendor"
    ]["configFields"]
    variant = data["catalogVendor"]["variants"][0]
    assert variant["defaultConfig"]["events"]["order_completed"][
        "vendor_event_name"
    ] == ("purchase")
    assert data["missing"] is None


async def test_graphql_catalog_filter_is_validated(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        "/v1/admin/graphql",
        json={"query": '{ catalogVendors(filter: {status: "alpha"}) { key } }'},
        headers={**org.owner.headers, "Accept": "application/json"},
    )

    assert response.json()["errors"][0]["extensions"]["code"] == "VALIDATION_ERROR"


async def test_install_creates_a_template_and_revision_one_from_the_variant(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        "/v1/admin/integration-catalog/ga4/install",
        json={
            "name": "GA4 shop",
            "config": {
                "measurement_id": "G-ABC123",
                "api_secret": "ga-secret-value",
                "events": {"order_completed": {"vendor_event_name": "purchase_v2"}},
            },
        },
        headers=org.owner.headers,
    )

    body = response.json()
    config = body["revision"]["config"]
    assert response.status_code == 201
    assert body["template"]["catalog_vendor_key"] == "ga4"
    assert body["template"]["catalog_variant_key"] == "default"
    assert body["template"]["secret_fields"] == ["api_secret"]
    assert body["revision"]["revision_number"] == 1
    assert body["revision"]["delivery_mode"] == "server_side"
    assert config["api_secret"] == "***"
    assert config["measurement_id"] == "G-ABC123"
    # Objects merge key by key: the override keeps the variant's mappings.
    assert config["events"]["order_completed"]["vendor_event_name"] == "purchase_v2"
    assert config["events"]["order_completed"]["mappings"]
    assert config["events"]["page"]["vendor_event_name"] == "page_view"
    assert "ga-secret-value" not in response.text


async def test_install_names_every_missing_or_invalid_field(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()

    response = await client.post(
        "/v1/admin/integration-catalog/ga4/install",
        json={"name": "GA4", "config": {"measurement_id": "UA-123"}},
        headers=org.owner.headers,
    )

    details = {d["field"]: d["code"] for d in response.json()["error"]["details"]}
    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert details == {
        "config.measurement_id": "INVALID",
        "config.api_secret": "REQUIRED",
    }


async def test_install_of_an_unknown_vendor_or_variant_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    config = {"measurement_id": "G-ABC123", "api_secret": "x"}

    vendor = await client.post(
        "/v1/admin/integration-catalog/nope/install",
        json={"name": "X", "config": config},
        headers=org.owner.headers,
    )
    variant = await client.post(
        "/v1/admin/integration-catalog/ga4/install",
        json={"name": "X", "variant_key": "nope", "config": config},
        headers=org.owner.headers,
    )

    assert vendor.status_code == 404
    assert variant.status_code == 422
    assert variant.json()["error"]["details"][0]["field"] == "variant_key"


async def test_a_viewer_cannot_install(client: AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    viewer = await factory.member(org, "viewer")

    response = await client.post(
        "/v1/admin/integration-catalog/ga4/install",
        json={"name": "X"},
        headers=viewer.headers,
    )

    assert response.status_code == 403
