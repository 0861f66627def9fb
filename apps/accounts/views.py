from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts import selectors, services
from apps.accounts.forms import ApiKeyForm, MemberAddForm, MemberRoleForm, ProjectForm
from apps.accounts.models import ApiKey, Membership, Role
from apps.accounts.permissions import project_role_required


@require_http_methods(["GET", "POST"])
@login_required
def project_create(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(creator=request.user, **form.cleaned_data)
        except services.AccountError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Project {project.name} created. You are its admin.")
            return redirect("prompts:list", project_slug=project.slug)
    return render(request, "accounts/project_create.html", {"form": form})


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ADMIN)
def member_list(request: HttpRequest) -> HttpResponse:
    form = MemberAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.membership_add(project=request.project, actor=request.user, **form.cleaned_data)
        except services.AccountError as exc:
            form.add_error("username", str(exc))
        else:
            messages.success(request, f"{membership.user.username} added as {membership.get_role_display()}.")
            return redirect("accounts:members", project_slug=request.project.slug)
    return render(
        request,
        "accounts/member_list.html",
        {"form": form, "membership_list": selectors.membership_list(project=request.project), "roles": Role.choices},
    )


@require_POST
@project_role_required(Role.ADMIN)
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(Membership, pk=membership_id, project=request.project)
    form = MemberRoleForm(request.POST)
    if form.is_valid():
        try:
            services.membership_change_role(membership=membership, role=form.cleaned_data["role"], actor=request.user)
        except services.AccountError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{membership.user.username} is now {form.cleaned_data['role']}.")
    else:
        messages.error(request, "Choose a valid role.")
    return redirect("accounts:members", project_slug=request.project.slug)


@require_POST
@project_role_required(Role.ADMIN)
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(Membership, pk=membership_id, project=request.project)
    try:
        revoked = services.membership_remove(membership=membership, actor=request.user)
    except services.AccountError as exc:
        messages.error(request, str(exc))
    else:
        keys = f"; the {len(revoked)} API key(s) they created here were revoked" if revoked else ""
        messages.success(request, f"{membership.user.username} removed from the project{keys}.")
    return redirect("accounts:members", project_slug=request.project.slug)


@require_http_methods(["GET", "POST"])
@never_cache
@project_role_required(Role.ADMIN)
def api_key_list(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            api_key, raw_key = services.api_key_create(project=request.project, actor=request.user, **form.cleaned_data)
        except services.AccountError as exc:
            form.add_error("name", str(exc))
        else:
            # Rendered, not redirected: the full key is in this one response and never stored anywhere.
            new_key = {"key": api_key, "raw": raw_key}
            form = ApiKeyForm()
    context = {"form": form, "new_key": new_key, "api_key_list": selectors.api_key_list(project=request.project)}
    return render(request, "accounts/api_key_list.html", context)


@require_POST
@project_role_required(Role.ADMIN)
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=key_id, project=request.project)
    try:
        services.api_key_revoke(api_key=api_key, actor=request.user)
    except services.AccountError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Key {api_key.prefix}… ({api_key.name}) revoked; apps using it now get 401.")
    return redirect("accounts:api_keys", project_slug=request.project.slug)


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = selectors.project_list_for_user(user=request.user)
    if len(projects) == 1:
        return redirect("monitoring:dashboard", project_slug=projects[0].slug)  # the project's health
    return render(request, "core/home.html", {"project_list": projects})
