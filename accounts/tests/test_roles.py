"""Roles as groups, and the one permission layer (can_act / can_edit / RolePermission) built on them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core.management import call_command

from generation.models import BatchGenerationRun
from imagineer import permissions as perms
from imagineer.roles import role_permission_names, user_set_role
from imagineer.tests.factories import (
    AlbumFactory,
    AlbumImageFactory,
    BatchTemplateFactory,
    ImageFactory,
    LabelFactory,
    LabelingJobFactory,
    LoraFactory,
    ScrapeJobFactory,
    UserFactory,
)

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


def test_control_and_label_rules():
    owner, other = UserFactory(role="creator"), UserFactory(role="creator")
    viewer, curator = UserFactory(role="viewer"), UserFactory(role="curator")
    album = AlbumFactory(created_by=owner)
    work = [
        BatchGenerationRun.objects.create(created_by=owner),
        LoraFactory(created_by=owner),
        ScrapeJobFactory(album=album, created_by=owner),
        LabelingJobFactory(album=album, created_by=owner),
    ]
    for obj in work:
        assert perms.can_control(owner, obj) and perms.can_control(curator, obj), obj
        assert not perms.can_control(other, obj) and not perms.can_control(viewer, obj), obj
        assert not perms.can_control(AnonymousUser(), obj), obj
    # An album is not work: it is edited, never "controlled", even by its owner.
    assert not perms.can_control(owner, album) and perms.can_edit(owner, album)
    # Scrape jobs are their owner's to see; a labeling job is as visible as its album.
    assert perms.can_view(owner, work[2]) and perms.can_view(curator, work[2]) and not perms.can_view(other, work[2])
    assert perms.can_view(other, work[3])

    in_album, made, loose = ImageFactory(), ImageFactory(created_by=other), ImageFactory()
    AlbumImageFactory(album=album, image=in_album)
    assert perms.can_label_image(owner, in_album) and not perms.can_label_image(other, in_album)
    assert perms.can_label_image(other, made) and not perms.can_label_image(owner, made)
    assert not perms.can_label_image(owner, loose) and perms.can_label_image(curator, loose)
    assert not perms.can_label_image(viewer, loose)
    assert perms.can_label_album(owner, album) and perms.can_label_album(curator, album)
    assert not perms.can_label_album(other, album) and not perms.can_label_album(viewer, album)


def test_api_refusals_say_why(api_as):
    owner = api_as("creator")
    run = BatchGenerationRun.objects.create(template=BatchTemplateFactory(), created_by=owner.user)
    refused = api_as("creator").delete(f"/api/batch-templates/{run.template_id}/runs/{run.pk}")
    assert refused.status_code == 403
    assert (
        refused.json()["error"]["message"]
        == "Only a curator or whoever started it may change this batch generation run."
    )
    image = ImageFactory()
    refused = api_as("creator").post(f"/api/labeling/image/{image.pk}", {}, format="json")
    assert refused.status_code == 403
    assert "owner" in refused.json()["error"]["message"]


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
