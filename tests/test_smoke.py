async def test_signup_and_list_leads(api, http):
    owner = await api.signup()
    vendor = await api.new_vendor()
    await api.link(owner, vendor)
    ids = await api.seed_leads(owner.workspace_id, vendor, 3)
    response = await http.get("/v1/leads", headers=owner.headers)
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["items"]] == [str(i) for i in reversed(ids)]
