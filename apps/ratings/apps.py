from django.apps import AppConfig


class RatingsConfig(AppConfig):
    name = "apps.ratings"
    label = "ratings"
    verbose_name = "Ratings and comparisons"

    def ready(self) -> None:
        from apps.core import nav
        from apps.experiments import experiment_links, score_notes
        from apps.ratings import evidence, summary
        from apps.reviews import evidence as review_evidence
        from apps.reviews import release_checks

        nav.register(nav.NavEntry(title="Rate", url_name="ratings:my_queues", min_role="viewer", order=45))
        experiment_links.register(
            experiment_links.ExperimentLink(title="Compare and rate", url_name="ratings:compare", order=10)
        )
        experiment_links.register(
            experiment_links.ExperimentLink(title="Statistics", url_name="ratings:stats", order=20)
        )
        score_notes.register(summary.judge_score_notes)
        review_evidence.register(
            review_evidence.EvidenceProvider(title="Experiments and ratings", collect=evidence.collect, order=20)
        )
        release_checks.register(evidence.release_checks)
