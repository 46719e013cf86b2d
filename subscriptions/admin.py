"""Superusers' view of subscriptions: read-only, and never the signing secret.

Changes go through the Webhooks pages, whose services validate, keep the
activity trail and hand the secret over once.
"""

from django.contrib import admin

from subscriptions.models import SubscribedActivityType, Subscription, TrailEntry


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SubscribedActivityTypeInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SubscribedActivityType
    extra = 0


class TrailEntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TrailEntry
    extra = 0
    fields = ["at", "actor", "action", "detail"]
    readonly_fields = fields


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["url", "organisation", "state", "created_by", "created_at", "deleted_at"]
    list_filter = ["state", "organisation"]
    search_fields = ["url", "description", "organisation__name"]
    # secret_encrypted is deliberately absent: not even the ciphertext is shown.
    fields = ["id", "organisation", "url", "description", "state", "paused_reason", "paused_at",
              "secret_rotated_at", "created_by", "created_at", "updated_at", "deleted_at"]
    readonly_fields = fields
    inlines = [SubscribedActivityTypeInline, TrailEntryInline]
