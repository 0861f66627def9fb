from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "apps.experiments"
    label = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        from apps.core import nav

        nav.register(nav.NavEntry(title="Experiments", url_name="experiments:list", order=40))

        from apps.experiments import experiment_links

        compare = experiment_links.ExperimentLink(
            title="Compare with others on this dataset", url_name="experiments:compare_from", order=40
        )
        experiment_links.register(compare)

        from apps.datasets import counterfactual
        from apps.experiments.probes.paraphrase import paraphraser

        counterfactual.register_paraphraser(paraphraser)

        from apps.experiments.probes import governance
        from apps.reviews import evidence, release_checks

        evidence.register(
            evidence.EvidenceProvider(title="Responsible-AI probes", collect=governance.collect, order=30)
        )
        release_checks.register(governance.release_checks)
