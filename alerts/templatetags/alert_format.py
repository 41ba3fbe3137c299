from django import template

from alerts.display import format_value, scope_label

register = template.Library()


@register.simple_tag
def alert_value(kind, value):
    return format_value(kind, value)


@register.simple_tag
def alert_scope(item):
    """The scope of a rule or event ("all requests", "model gpt-4o, API key team-a")."""
    return scope_label(model=item.model, api_key=item.api_key)
