"""Client for Prompt Studio's REST API: `Studio(base_url, api_key).get_prompt(name).render(**variables)`."""

from prompt_studio.client import Prompt, RenderError, Studio, StudioError, StudioUnavailable
from prompt_studio.tracing import current_trace

__all__ = ["Prompt", "RenderError", "Studio", "StudioError", "StudioUnavailable", "current_trace"]
