"""Roles as groups, and the one permission layer (can_act / can_edit / RolePermission) built on them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core.management import call_command

from generation.models import BatchGenerationRun
from imagineer import permissions as perms
from imagineer.roles import role_permission_names, user_set_role
from imagineer.tests.factories import AlbumFactory, BatchTemplateFactory, ImageFactory, LabelFactory, UserFactory

pytestmark = pytest.mark.django_db


def granted(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


@pytest.mark.parametrize("role", perms.ROLES)
def test_each_role_group_holds_exactly_its_permissions(role):
    assert granted(role) == role_permission_names(role)


def test_roles_are_ordered_by_power():
    viewer, creator, curator = (granted(role) for role in perms.ROLES)
    assert viewer < creator < curator
    assert perms.GENERATE not in viewer and perms.CURATE not in creator
    assert {perms.GENERATE, perms.LABEL, perms.SCRAPE} <= creator


def test_migrate_restores_role_permissions_changed_by_hand():
    Group.objects.get(name=perms.VIEWER).permissions.clear()
    call_command("migrate", verbosity=0)
    assert granted(perms.VIEWER) == role_permission_names(perms.VIEWER)


@pytest.mark.django_db(transaction=True)
def test_roles_survive_a_database_flush():
    """Transactional tests flush the database after each test, data migrations' rows with it."""
    call_command("flush", interactive=False, verbosity=0)
    assert granted(perms.CREATOR) == role_permission_names(perms.CREATOR)


def test_ownership_rules():
    owner, other = UserFactory(role="creator"), UserFactory(role="creator")
    viewer, curator = UserFactory(role="viewer"), UserFactory(role="curator")
    owned = [
        BatchTemplateFactory(created_by=owner),
        AlbumFactory(created_by=owner),
        BatchGenerationRun.objects.create(created_by=owner),
    ]
    for obj in owned:
        assert perms.can_edit(owner, obj), obj
        assert not perms.can_edit(other, obj), obj
        assert not perms.can_edit(viewer, obj), obj
        assert perms.can_edit(curator, obj), obj
        assert not perms.can_edit(AnonymousUser(), obj), obj
    # Images and labels are curated: a creator does not edit them, even their own.
    for obj in (ImageFactory(created_by=owner), LabelFactory(created_by=owner)):
        assert not perms.can_edit(owner, obj) and perms.can_edit(curator, obj)


def test_can_act_follows_the_role_and_the_active_flag():
    user = UserFactory(role="viewer")
    assert not perms.can_act(user, perms.GENERATE)
    user_set_role(user=user, role="creator")
    assert perms.can_act(user, perms.GENERATE) and not perms.is_curator(user)
    user.is_active = False
    assert not perms.can_act(user, perms.GENERATE)


def test_user_set_role_keeps_exactly_one_role_and_staff_for_curators_only():
    user = UserFactory(role="curator")
    assert user.is_staff and perms.user_role(user) == "curator"
    user_set_role(user=user, role="creator")
    assert not user.is_staff
    assert list(user.groups.values_list("name", flat=True)) == ["creator"]
    with pytest.raises(ValueError, match="Unknown role 'admin'"):
        user_set_role(user=user, role="admin")


def test_superusers_can_do_everything(admin_user):
    assert perms.is_curator(admin_user)
    assert perms.can_act(admin_user, perms.TRAIN)
    assert perms.can_edit(admin_user, AlbumFactory())
