"""Third-party apps see aggregates and community sizes, never which houses are where."""


def test_third_party_sees_community_sizes_not_house_ids(client, world):
    for headers in (world.headers["api_key"], world.headers["partner"]):
        listed = client.get("/api/v1/communities", headers=headers).json["communities"]
        assert listed == [
            {
                "id": world.community,
                "name": "Solar Street",
                "house_count": 1,
                "timezone": None,
                "country": None,
            }
        ]
        one = client.get(f"/api/v1/communities/{world.community}", headers=headers).json
        assert "house_ids" not in one and "latitude" not in one  # nor where the houses are
    analyst = client.get("/api/v1/communities", headers=world.headers["analyst"]).json["communities"]
    assert analyst[0]["house_ids"] == [world.house1]
