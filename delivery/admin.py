"""Superusers' read-only view of events, deliveries and attempts (the log is append-only everywhere)."""

from django.contrib import admin

from delivery.models import Attempt, Delivery, Event
from subscriptions.admin import ReadOnlyAdminMixin


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "organisation", "activity_type", "is_test", "created_at"]
    list_filter = ["activity_type", "is_test"]
    search_fields = ["id"]
    date_hierarchy = "created_at"
    show_full_result_count = False


class AttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Attempt
    extra = 0
    fields = ["number", "started_at", "duration_ms", "status_code", "error_kind", "error_message", "url"]
    readonly_fields = fields


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "subscription", "activity_type", "state", "attempt_count", "last_status_code", "created_at"]
    list_filter = ["state"]
    list_select_related = ["subscription"]
    search_fields = ["id", "event__id"]
    raw_id_fields = ["event", "subscription"]
    inlines = [AttemptInline]
    # Millions of rows: no COUNT(*) for the full result.
    show_full_result_count = False


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["delivery", "number", "status_code", "error_kind", "duration_ms", "started_at"]
    list_filter = ["error_kind"]
    raw_id_fields = ["delivery"]
    show_full_result_count = False
