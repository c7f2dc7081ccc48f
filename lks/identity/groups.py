"""The directory's groups, as Microsoft Entra ID keeps them: security groups with a display name
and mail nickname, whose members are directory objects (service principals, other groups) named
by object id, kept in the service's store under `/identity/groups/<objectId>` so they survive a
restart.

`member_of` is the transitive membership Graph's `getMemberGroups` answers and Entra writes into
a token's `groups` claim (`lks.identity.issuer`); Azure RBAC then honours role assignments to
those groups (`lks.identity.rbac.Access`), and an Entra cluster's admin groups bind them to
cluster-admin (`lks.kube.entra`). The Graph subset (`lks.identity.graph`) and `lks ad group`
read and write through this module only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import orjson

from lks import store
from lks.clock import Clock
from lks.identity.principals import iso

PREFIX = "/identity/groups/"


class GroupNotFound(KeyError):
    """No group with that object id."""


class MemberExists(ValueError):
    """The object is a member of the group already (Graph refuses to add it again)."""


class NotAMember(KeyError):
    """The object is no member of the group."""


@dataclass(frozen=True, slots=True)
class Group:
    object_id: str
    display_name: str
    mail_nickname: str
    created: str  # ISO 8601 UTC
    description: str | None = None
    security_enabled: bool = True
    mail_enabled: bool = False
    members: tuple[str, ...] = ()  # object ids (lower case), in the order they were added

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> Group:
        d = orjson.loads(raw)
        d["members"] = tuple(d.get("members", ()))
        return cls(**d)


class Groups:
    """Async CRUD of groups and their members on a `lks.store` backend (the service's `lks.db`)."""

    def __init__(self, backend: store.Backend, *, clock: Clock | None = None):
        self.store = backend
        self.clock = clock or Clock()

    async def create(self, display_name: str, mail_nickname: str, *, description: str | None = None,
                     security_enabled: bool = True, mail_enabled: bool = False) -> Group:
        group = Group(object_id=str(uuid.uuid4()), display_name=display_name, mail_nickname=mail_nickname,
                      created=iso(self.clock.now()), description=description, security_enabled=security_enabled,
                      mail_enabled=mail_enabled)
        await self.store.create(_key(group.object_id), group.to_json())
        return group

    async def get(self, object_id: str) -> Group | None:
        kv = await self.store.get(_key(object_id))
        return Group.from_json(kv.value) if kv is not None else None

    async def list(self) -> list[Group]:
        return [Group.from_json(kv.value) for kv in (await self.store.list(PREFIX)).items]

    async def delete(self, object_id: str) -> Group:
        """Delete the group (raises `GroupNotFound`); it leaves the groups it was a member of."""
        group = await self.get(object_id)
        if group is None:
            raise GroupNotFound(object_id)
        try:
            await self.store.delete(_key(object_id))
        except store.NotFound:
            raise GroupNotFound(object_id) from None
        await self.forget(object_id)
        return group

    async def add_member(self, object_id: str, member_id: str) -> Group:
        """Raises `GroupNotFound`, `MemberExists`."""
        member = member_id.lower()

        def change(g: Group) -> Group:
            if member in g.members:
                raise MemberExists(member_id)
            return replace(g, members=(*g.members, member))
        return await self._change(object_id, change)

    async def remove_member(self, object_id: str, member_id: str) -> Group:
        """Raises `GroupNotFound`, `NotAMember`."""
        member = member_id.lower()

        def change(g: Group) -> Group:
            if member not in g.members:
                raise NotAMember(member_id)
            return replace(g, members=tuple(m for m in g.members if m != member))
        return await self._change(object_id, change)

    async def forget(self, member_id: str) -> None:
        """Take a deleted directory object out of every group, as Entra does."""
        member = member_id.lower()
        for group in await self.list():
            if member in group.members:
                try:
                    await self.remove_member(group.object_id, member)
                except (GroupNotFound, NotAMember):
                    pass

    async def member_of(self, object_id: str, *, security_only: bool = False) -> list[str]:
        """The object ids of the groups `object_id` is in, directly or through nested groups
        (Graph's getMemberGroups, a token's `groups` claim), each once."""
        groups = await self.list()
        parents: dict[str, list[Group]] = {}
        for g in groups:
            for m in g.members:
                parents.setdefault(m, []).append(g)
        found: dict[str, Group] = {}
        todo = [object_id.lower()]
        while todo:
            for g in parents.get(todo.pop(), ()):
                if g.object_id not in found:
                    found[g.object_id] = g
                    todo.append(g.object_id.lower())
        return [g.object_id for g in found.values() if g.security_enabled or not security_only]

    async def _change(self, object_id: str, change: Callable[[Group], Group]) -> Group:
        for _ in range(16):
            kv = await self.store.get(_key(object_id))
            if kv is None:
                raise GroupNotFound(object_id)
            new = change(Group.from_json(kv.value))
            try:
                await self.store.update(_key(object_id), new.to_json(), mod_revision=kv.mod_revision)
                return new
            except (store.RevisionConflict, store.NotFound):
                continue
        raise store.StoreError(f"group {object_id} keeps changing")


def _key(object_id: str) -> str:
    return PREFIX + object_id.lower()
