"""The asyncpg read path: one round trip scopes and checks, one ends and resets."""

from __future__ import annotations

import pytest

from pane.db.tenant import NotAMember, RoleNotAllowed, begin_reading, end_reading
from pane.principal import Role


async def _visible_leads(app_db) -> int:
    return int(await app_db.fetchval("SELECT count(*) FROM leads"))


async def test_a_member_reads_only_their_workspace_and_the_connection_ends_clean(api, app_db):
    owner = await api.signup()
    other = await api.signup()
    vendor = await api.new_vendor()
    await api.seed_leads(owner.workspace_id, vendor, 3)
    await api.seed_leads(other.workspace_id, vendor, 2)

    await begin_reading(
        app_db, workspace_id=owner.workspace_id, user_id=owner.user_id, roles=tuple(Role)
    )
    assert app_db.is_in_transaction()
    assert await _visible_leads(app_db) == 3
    await end_reading(app_db, commit=False)

    assert not app_db.is_in_transaction()
    assert await _visible_leads(app_db) == 0
    assert await app_db.fetchval("SELECT current_setting('pane.workspace_id', true)") in ("", None)


async def test_a_stranger_is_refused_and_sees_nothing(api, app_db):
    owner = await api.signup()
    stranger = await api.signup()
    vendor = await api.new_vendor()
    await api.seed_leads(owner.workspace_id, vendor, 2)

    with pytest.raises(NotAMember):
        await begin_reading(
            app_db, workspace_id=owner.workspace_id, user_id=stranger.user_id, roles=tuple(Role)
        )
    await end_reading(app_db, commit=False)
    assert await _visible_leads(app_db) == 0


async def test_the_current_role_decides_not_the_one_in_the_token(api, app_db, http):
    owner = await api.signup()
    viewer = await api.member(owner, "viewer")
    with pytest.raises(RoleNotAllowed):
        await begin_reading(
            app_db,
            workspace_id=owner.workspace_id,
            user_id=viewer.user_id,
            roles=(Role.OWNER, Role.ADMIN, Role.MEMBER),
        )
    await end_reading(app_db, commit=False)

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
        assert await _visible_leads(app_db) == 0
