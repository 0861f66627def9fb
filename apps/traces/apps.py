from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "apps.traces"
    label = "traces"
    verbose_name = "Production traces and feedback"

    def ready(self) -> None:
        from apps.core import nav
        from apps.prompts import page_panels
        from apps.traces import selectors

        nav.register(nav.NavEntry(title="Traces", url_name="traces:list", min_role="viewer", order=38))
        page_panels.register(
            page_panels.PromptPanel(
                template_name="traces/_prompt_volume.html",
                context=lambda prompt: {"prompt": prompt, "rows": selectors.volume_by_version(prompt_id=prompt.pk)},
                order=20,
            )
        )
