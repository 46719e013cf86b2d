"""Errors raised at the call when an activity or a subscription is invalid."""


class ActivityError(ValueError):
    """An activity was recorded with something we cannot send."""


class UnknownActivityType(ActivityError):
    pass


class InvalidActivityData(ActivityError):
    pass
