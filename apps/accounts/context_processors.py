from apps.accounts import selectors


def projects(request):
    """The project switcher's list, and the current project when a view set one."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_projects": selectors.project_list_for_user(user=user),
        "current_project": getattr(request, "project", None),
        "current_membership": getattr(request, "membership", None),
    }


def project_nav(request):
    """Navigation entries contributed by apps (datasets, experiments, ...) for the current project."""
    from django.urls import reverse

    from apps.core import nav

    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    items = [
        {"title": entry.title, "url": reverse(entry.url_name, args=[membership.project.slug])}
        for entry in nav.entries()
        if membership.has_role(entry.min_role)
    ]
    return {"project_nav_items": items}
