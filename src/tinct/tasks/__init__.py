"""Tasks: one file per problem (model + loss + metrics), registered in :data:`TASKS` by name."""

from tinct.tasks.base import TASKS, Task
from tinct.tasks.illuminant import IlluminantConfig, IlluminantTask

__all__ = ["TASKS", "IlluminantConfig", "IlluminantTask", "Task"]
