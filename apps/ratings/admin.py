from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.ratings.models import AnnotationQueue, Assignment, ExperimentLink, PairwiseJudgement, Rating, RatingForm

# Ratings, judgements and experiment links are release evidence: they change only through the
# studio's pages and services (checked and audited), so the admin shows them and changes nothing.


@admin.register(RatingForm)
class RatingFormAdmin(ReadOnlyAdmin):
    list_display = ["experiment", "updated_at", "updated_by"]


@admin.register(AnnotationQueue)
class AnnotationQueueAdmin(ReadOnlyAdmin):
    list_display = ["name", "experiment", "kind", "raters_per_item", "created_at"]
    list_filter = ["kind"]


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["item", "rater", "status", "created_at", "done_at"]
    list_filter = ["status"]
    raw_id_fields = ["item", "left_cell", "right_cell"]


@admin.register(Rating)
class RatingAdmin(ReadOnlyAdmin):
    list_display = ["cell", "rater", "score", "thumb_up", "updated_at"]
    raw_id_fields = ["cell", "assignment"]


@admin.register(PairwiseJudgement)
class PairwiseJudgementAdmin(ReadOnlyAdmin):
    list_display = ["experiment", "position", "rater", "choice", "created_at"]
    list_filter = ["choice"]
    raw_id_fields = ["left_cell", "right_cell", "assignment"]


@admin.register(ExperimentLink)
class ExperimentLinkAdmin(ReadOnlyAdmin):
    list_display = ["review", "experiment", "candidate", "baseline", "created_at"]
