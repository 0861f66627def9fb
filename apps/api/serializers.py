"""Request validation and the shapes the OpenAPI schema documents."""

from __future__ import annotations

import decimal

from rest_framework import serializers

from apps.prompts.models import NAME_PATTERN
from apps.prompts.sandbox import VARIABLE_TYPES

# DRF coerces: 0 becomes "0", "5" becomes 5, "yes" becomes True. The schema promises JSON types, so the
# request fields take exactly the type the schema names and refuse the rest with a 400 that says so.


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictRegexField(serializers.RegexField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictFloatField(serializers.FloatField):
    """A JSON number (not a string)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictDecimalField(serializers.DecimalField):
    """A JSON number (not a string), kept as a Decimal."""

    def __init__(self, **kwargs):
        super().__init__(coerce_to_string=False, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        value = decimal.Decimal(str(data))
        if self.rounding is not None and value.is_finite():
            # Round first: 5e-324 is a valid JSON number, not one with 324 significant digits to refuse.
            value = value.quantize(decimal.Decimal(1).scaleb(-self.decimal_places), rounding=self.rounding)
        return super().to_internal_value(str(value))


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable, e.g. prompt_not_found, invalid_variable.")
    detail = serializers.CharField(help_text="What went wrong, for a person.")


class VariableSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=VARIABLE_TYPES)
    description = serializers.CharField(allow_blank=True)


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField()


class SnippetSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    template = serializers.CharField()
    includes = serializers.DictField(child=serializers.CharField(), help_text="The snippet's own pins.")


class CanaryVersionSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    type = serializers.ChoiceField(choices=["text", "chat"])
    template = serializers.CharField(allow_null=True)
    messages = MessageSerializer(many=True, allow_null=True)
    config = serializers.DictField()
    variables = VariableSerializer(many=True)
    labels = serializers.ListField(child=serializers.CharField())
    includes = serializers.DictField(child=serializers.CharField(), help_text="The canary's pins, as `includes` above.")
    snippets = serializers.DictField(child=SnippetSerializer(), help_text="The snippets the canary's pins reach.")
    content_hash = serializers.CharField()
    created_at = serializers.DateTimeField()


class SplitSerializer(serializers.Serializer):
    stable_version = serializers.IntegerField()
    canary_version = serializers.IntegerField()
    canary_weight = serializers.IntegerField(help_text="Basis points of `buckets` that get the canary.")
    buckets = serializers.IntegerField(help_text="10000: sha256('<prompt>:<label>:<key>') mod buckets < weight.")
    canary = CanaryVersionSerializer(required=False, help_text="The canary's document (answers without key=).")


class PromptVersionSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    type = serializers.ChoiceField(choices=["text", "chat"])
    template = serializers.CharField(allow_null=True, help_text="The template of a text prompt (null for chat).")
    messages = MessageSerializer(many=True, allow_null=True, help_text="The messages of a chat prompt (null for text).")
    config = serializers.DictField(help_text="Model config: model, temperature, max_tokens, top_p, stop, ...")
    variables = VariableSerializer(many=True)
    labels = serializers.ListField(child=serializers.CharField())
    includes = serializers.DictField(
        child=serializers.CharField(),
        help_text='Each {% include "name@label" %} -> the key in `snippets` of the version pinned when saved.',
    )
    snippets = serializers.DictField(
        child=SnippetSerializer(),
        help_text='"name:version" -> the text of every snippet version the includes reach (render offline).',
    )
    content_hash = serializers.CharField()
    created_at = serializers.DateTimeField()
    arm = serializers.ChoiceField(
        choices=["stable", "canary"], required=False, help_text="On a label split for a canary: the arm answered."
    )
    split = SplitSerializer(required=False, help_text="On a label split for a canary: the split.")


class PromptSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    latest_version = serializers.IntegerField(allow_null=True)
    labels = serializers.DictField(child=serializers.IntegerField(), help_text="label -> version number")


class PromptListSerializer(serializers.Serializer):
    prompts = PromptSummarySerializer(many=True)


class ReleasesSerializer(serializers.Serializer):
    project = serializers.CharField()
    label = serializers.CharField()
    prompts = serializers.DictField(child=PromptVersionSerializer(), help_text="prompt name -> released version")


class VersionSummarySerializer(serializers.Serializer):
    version = serializers.IntegerField()
    type = serializers.CharField()
    content_hash = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    author = serializers.CharField(allow_blank=True)
    parent_version = serializers.IntegerField(allow_null=True)
    labels = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()


class VersionListSerializer(serializers.Serializer):
    name = serializers.CharField()
    versions = VersionSummarySerializer(many=True)


class RenderRequestSerializer(serializers.Serializer):
    label = StrictRegexField(NAME_PATTERN, max_length=50, required=False)
    version = StrictIntegerField(min_value=1, max_value=2**31 - 1, required=False)
    variables = serializers.DictField(required=False, default=dict)


class RenderResponseSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    type = serializers.CharField()
    text = serializers.CharField(required=False, help_text="The rendered text (text prompts).")
    messages = MessageSerializer(many=True, required=False, help_text="The rendered messages (chat prompts).")
    config = serializers.DictField()


class VariableSpecSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    type = serializers.ChoiceField(choices=VARIABLE_TYPES, required=False)
    description = StrictCharField(max_length=500, required=False, allow_blank=True)
    sample = serializers.JSONField(required=False)


class VersionCreateSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["text", "chat"])
    template = StrictCharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    messages = MessageSerializer(many=True, required=False)
    config = serializers.DictField(required=False, default=dict)
    variables = VariableSpecSerializer(many=True, required=False, default=list)
    parent_version = StrictIntegerField(
        min_value=1,
        max_value=2**31 - 1,
        allow_null=True,
        help_text="The newest version you built on (null for the first); a newer one saved since is a 409.",
    )
    message = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    create_prompt = StrictBooleanField(
        required=False, default=False, help_text="Create the prompt when it does not exist yet."
    )


class VersionCreatedSerializer(PromptVersionSerializer):
    created = serializers.BooleanField(help_text="false when the content equals the newest version's (nothing saved)")


class LabelCanarySerializer(serializers.Serializer):
    version = StrictIntegerField(min_value=1, max_value=2**31 - 1, help_text="The canary version.")
    weight = StrictIntegerField(min_value=1, max_value=9999, help_text="Its share in basis points (1000 = 10%).")


class LabelMoveSerializer(serializers.Serializer):
    version = StrictIntegerField(min_value=1, max_value=2**31 - 1)
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    canary = LabelCanarySerializer(
        required=False, help_text="Split the label for a canary: `version` gets this version's share of the keys."
    )


class LabelMovedSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    version = serializers.IntegerField()
    previous_version = serializers.IntegerField(allow_null=True)
    moved = serializers.BooleanField(help_text="false when the label already pointed at that version")
    canary_version = serializers.IntegerField(required=False, help_text="The canary arm, when the label is split.")
    canary_weight = serializers.IntegerField(required=False)


class FieldChangeSerializer(serializers.Serializer):
    name = serializers.CharField()
    old = serializers.CharField(allow_blank=True)
    new = serializers.CharField(allow_blank=True)


class DiffSideSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    labels = serializers.ListField(child=serializers.CharField())


class DiffSerializer(serializers.Serializer):
    name = serializers.CharField()
    old = DiffSideSerializer(help_text="The version diffed from.")
    new = DiffSideSerializer(help_text="The version diffed to.")
    unchanged = serializers.BooleanField()
    type_changed = serializers.BooleanField()
    diff = serializers.CharField(allow_blank=True, help_text="A unified diff of the text or the messages.")
    config = FieldChangeSerializer(many=True, help_text="The config keys that changed.")
    variables = FieldChangeSerializer(many=True, help_text="The variables that were added, removed or changed.")


class CanaryGuardrailSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=["error_rate", "feedback", "score", "latency_p95", "cost"])

    tolerance = StrictFloatField(
        min_value=0, max_value=1000, required=False, default=0.0,
        help_text="The tolerated degradation: points of error rate (0.01), score units, or relative (latency, cost).",
    )  # fmt: skip
    name = StrictCharField(max_length=100, required=False, help_text="The score's name (metric score).")


class CanaryStartSerializer(serializers.Serializer):
    prompt = StrictRegexField(NAME_PATTERN, max_length=100)
    label = StrictRegexField(
        NAME_PATTERN.replace("{0,99}", "{0,49}"), max_length=50, required=False, default="production"
    )
    version = StrictIntegerField(min_value=1, max_value=2**31 - 1, help_text="The canary version.")
    steps = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=10_000), min_length=1, max_length=20, required=False,
        help_text="Rising canary weights in basis points ending at 10000 (default 500, 2500, 5000, 10000).",
    )  # fmt: skip
    min_volume = StrictIntegerField(min_value=1, max_value=10_000_000, required=False)
    min_minutes = StrictFloatField(min_value=0, max_value=100_000, required=False)
    guardrails = CanaryGuardrailSerializer(many=True, required=False, min_length=1, max_length=5)
    alpha = StrictFloatField(min_value=0.001, max_value=0.2, required=False)


class CanaryEventSerializer(serializers.Serializer):
    kind = serializers.CharField()
    from_weight = serializers.IntegerField()
    to_weight = serializers.IntegerField()
    automatic = serializers.BooleanField()
    actor = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    at = serializers.DateTimeField()


class CanarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    prompt = serializers.CharField()
    label = serializers.CharField()
    stable_version = serializers.IntegerField()
    canary_version = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["running", "paused", "promoted", "rolled_back"])
    weight = serializers.IntegerField(help_text="The canary's share now, in basis points.")
    steps = serializers.ListField(child=serializers.IntegerField())
    step_index = serializers.IntegerField()
    min_volume = serializers.IntegerField()
    min_minutes = serializers.FloatField()
    guardrails = serializers.ListField(child=serializers.DictField())
    alpha = serializers.FloatField()
    review = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    last_evidence = serializers.DictField(allow_null=True, help_text="What the watcher saw at its last look.")
    events = CanaryEventSerializer(many=True)


class CanaryListSerializer(serializers.Serializer):
    canaries = CanarySerializer(many=True)
