"""The request transaction's one round trip: BEGIN with the scope, and the database checking a
member's membership and current role; the connection ends clean."""

from __future__ import annotations

import pytest

from pane.db.database import Database, NotAMember, RoleNotAllowed, member_scope
from pane.principal import Role, UserPrincipal
from pane.services.leads import LeadFilters, lead_list
from tests.conftest import running_app
from tests.factories import Api

ALL_ROLES = tuple(Role)


async def _visible_leads(database: Database) -> int:
    async with database.transaction() as tx:
        return int(await tx.connection.fetchval("SELECT count(*) FROM leads"))


async def test_a_member_reads_only_their_workspace_and_the_connection_ends_clean(
    api, one_connection
):
    owner = await api.signup()
    other = await api.signup()
    vendor = await api.new_vendor()
    await api.seed_leads(owner.workspace_id, vendor, 3)
    await api.seed_leads(other.workspace_id, vendor, 2)

    scope = member_scope(owner.workspace_id, owner.user_id, ALL_ROLES)
    async with one_connection.transaction(scope) as tx:
        assert tx.connection.is_in_transaction()
        assert int(await tx.connection.fetchval("SELECT count(*) FROM leads")) == 3
        pid = await tx.connection.fetchval("SELECT pg_backend_pid()")

    async with one_connection.transaction() as tx:
        assert await tx.connection.fetchval("SELECT pg_backend_pid()") == pid
        assert await tx.connection.fetchval("SELECT count(*) FROM leads") == 0
        setting = await tx.connection.fetchval("SELECT current_setting('pane.workspace_id', true)")
        assert setting in ("", None)


async def test_a_stranger_is_refused_and_sees_nothing(api, one_connection):
    owner = await api.signup()
    stranger = await api.signup()
    vendor = await api.new_vendor()
    await api.seed_leads(owner.workspace_id, vendor, 2)

    with pytest.raises(NotAMember):
        async with one_connection.transaction(
            member_scope(owner.workspace_id, stranger.user_id, ALL_ROLES)
        ):
            pytest.fail("a stranger's transaction must not open")
    assert await _visible_leads(one_connection) == 0


async def test_the_current_role_decides_not_the_one_in_the_token(api, one_connection, http):
    owner = await api.signup()
    viewer = await api.member(owner, "viewer")
    with pytest.raises(RoleNotAllowed):
        async with one_connection.transaction(
            member_scope(owner.workspace_id, viewer.user_id, (Role.OWNER, Role.ADMIN, Role.MEMBER))
        ):
            pytest.fail("a viewer's transaction must not open for members only")
    assert await _visible_leads(one_connection) == 0

    # An owner demoted after their token was issued still reads (every role may), and one
    # removed since gets 403 on the very next request.
    second_owner = await api.member(owner, "owner")
    demoted = await http.patch(
        f"/v1/members/{second_owner.user_id}", json={"role": "viewer"}, headers=owner.headers
    )
    assert demoted.status_code == 200
    assert (await http.get("/v1/leads", headers=second_owner.headers)).status_code == 200
    removed = await http.delete(f"/v1/members/{second_owner.user_id}", headers=owner.headers)
    assert removed.status_code == 204
    refused = await http.get("/v1/leads", headers=second_owner.headers)
    assert refused.status_code == 403
    assert "no workspace selected" in refused.json()["detail"]


async def test_a_user_setting_without_membership_hides_leads_even_with_a_workspace(api, app_db):
    """The policy itself requires membership for user principals, not just the API."""
    owner = await api.signup()
    stranger = await api.signup()
    vendor = await api.new_vendor()
    await api.seed_leads(owner.workspace_id, vendor, 2)
    async with app_db.transaction():
        await app_db.execute(
            "SELECT set_config('pane.workspace_id', $1, true),"
            " set_config('pane.user_id', $2, true)",
            str(owner.workspace_id),
            str(stranger.user_id),
        )
        assert await app_db.fetchval("SELECT count(*) FROM leads") == 0


async def test_owner_only_decisions_use_the_role_held_now(api, http):
    """A token issued while its holder was owner grants no owner powers after a demotion."""
    owner = await api.signup()
    former_owner = await api.member(owner, "owner")
    bystander = await api.member(owner, "member")
    demoted = await http.patch(
        f"/v1/members/{former_owner.user_id}", json={"role": "admin"}, headers=owner.headers
    )
    assert demoted.status_code == 200, demoted.text
    # Still an admin: admin work goes through with the old token...
    viewer = await http.patch(
        f"/v1/members/{bystander.user_id}", json={"role": "viewer"}, headers=former_owner.headers
    )
    assert viewer.status_code == 200, viewer.text
    # ...but granting owner, which only an owner may, does not.
    refused = await http.patch(
        f"/v1/members/{bystander.user_id}", json={"role": "owner"}, headers=former_owner.headers
    )
    assert refused.status_code == 403, refused.text
    assert "only an owner" in refused.json()["detail"]
    me = (await http.get("/v1/me", headers=former_owner.headers)).json()
    assert me["workspace"]["role"] == "admin"
    assert "workspace:write" not in me["permissions"]


async def test_a_list_plan_kept_for_reuse_still_follows_each_transactions_tenant(
    api, one_connection, servers
):
    """List statements carry their row count in the SQL so that PostgreSQL keeps one plan and
    reuses it; the tenant is read when the plan runs, never when it was made. (Behind a
    transaction pooler statements are not kept at all.)"""
    owner = await api.signup()
    other = await api.signup()
    vendor = await api.new_vendor()
    await api.seed_leads(owner.workspace_id, vendor, 3)
    await api.seed_leads(other.workspace_id, vendor, 2)
    statement = None
    for _ in range(8):  # past the five custom plans PostgreSQL makes before it keeps one
        async with one_connection.transaction(
            member_scope(owner.workspace_id, owner.user_id, ALL_ROLES)
        ) as tx:
            page = await lead_list(
                UserPrincipal(user_id=owner.user_id, workspace_id=owner.workspace_id),
                LeadFilters(),
            ).page(tx, cursor=None, limit=50)
            assert {item["workspace_id"] for item in page.items} == {owner.workspace_id}
            assert len(page.items) == 3
            statement = await tx.connection.fetchrow(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE 'SELECT % FROM leads%' ORDER BY prepare_time DESC LIMIT 1"
            )
    if not servers.pooled:
        assert statement is not None
        assert statement["generic_plans"] > 0, dict(statement)

    # the same kept plan, another workspace's member: a stranger to every lead above
    async with one_connection.transaction(
        member_scope(other.workspace_id, other.user_id, ALL_ROLES)
    ) as tx:
        page = await lead_list(
            UserPrincipal(user_id=other.user_id, workspace_id=owner.workspace_id), LeadFilters()
        ).page(tx, cursor=None, limit=50)
    assert page.items == []


async def _plans(tx, statement_start: str) -> tuple[int, int]:
    row = await tx.connection.fetchrow(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
        " WHERE statement LIKE $1 ORDER BY prepare_time DESC LIMIT 1",
        statement_start + "%",
    )
    assert row is not None
    return row["generic_plans"], row["custom_plans"]


async def test_a_read_on_kept_plans_plans_a_filtered_list_for_its_values_and_leaks_nothing(
    api, one_connection, servers
):
    """A transaction opened with ``kept_plans`` (an API read's) runs its lists on PostgreSQL's
    kept plan from the first run; a list filtered by a caller's value (a text here) is
    planned for that value, as PostgreSQL chooses; the setting ends with the transaction,
    committed or not. Behind a transaction pooler no statement is kept, so nothing is forced."""
    owner = await api.signup()
    vendor = await api.new_vendor()
    await api.seed_leads(owner.workspace_id, vendor, 3)
    principal = UserPrincipal(user_id=owner.user_id, workspace_id=owner.workspace_id)
    scope = member_scope(owner.workspace_id, owner.user_id, ALL_ROLES)
    forced = "auto" if servers.pooled else "force_generic_plan"

    async def setting_now() -> str:
        async with one_connection.transaction() as tx:
            return str(await tx.connection.fetchval("SELECT current_setting('plan_cache_mode')"))

    async with one_connection.transaction(scope, kept_plans=True) as tx:
        assert await tx.connection.fetchval("SELECT current_setting('plan_cache_mode')") == forced
        unfiltered = await lead_list(principal, LeadFilters()).page(tx, cursor=None, limit=7)
        assert len(unfiltered.items) == 3
        if not servers.pooled:
            assert await _plans(
                tx, "SELECT % FROM leads WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY"
            ) == (1, 0)
    assert await setting_now() == "auto"

    async with one_connection.transaction(scope, kept_plans=True) as tx:
        searched = await lead_list(principal, LeadFilters(q="zz-nobody")).page(
            tx, cursor=None, limit=7
        )
        assert searched.items == []
        assert await tx.connection.fetchval("SELECT current_setting('plan_cache_mode')") == "auto"
        if not servers.pooled:
            assert await _plans(tx, "SELECT % FROM leads WHERE % LIKE") == (0, 1)

    with pytest.raises(RuntimeError):
        async with one_connection.transaction(scope, kept_plans=True):
            raise RuntimeError("the request failed")
    assert await setting_now() == "auto"


async def test_the_leads_list_served_over_http_runs_on_its_kept_plan(servers):
    """What the API does with it: a pane whose pool is one connection serves the first page of
    leads on the kept plan from the first request, and a page filtered by status planned for
    its value."""
    async with running_app(servers, db_pool_size=1) as (app, client):
        api = Api(http=client, admin_url=servers.admin_url)
        owner = await api.signup()
        await api.seed_leads(owner.workspace_id, await api.new_vendor(), 3)
        for params in ({}, {}, {"status": "new"}):
            response = await client.get("/v1/leads", params=params, headers=owner.headers)
            assert response.status_code == 200, response.text
            assert len(response.json()["items"]) == 3
        if servers.pooled:  # behind a transaction pooler no statement is kept at all
            return
        async with app.state.runtime.database.transaction() as tx:
            assert await _plans(
                tx, "SELECT % FROM leads WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY"
            ) == (2, 0)
            assert await _plans(tx, "SELECT % FROM leads WHERE % AND status = $2") == (0, 1)
