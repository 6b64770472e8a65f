"""Tasks: one file per problem (model + loss + metrics), registered in :data:`TASKS` by name."""

from tinct.tasks.base import TASKS, Task
from tinct.tasks.colorization import ColorizationConfig, ColorizationTask
from tinct.tasks.illuminant import IlluminantConfig, IlluminantTask
from tinct.tasks.illuminant_embedding import IlluminantEmbeddingConfig, IlluminantEmbeddingTask
from tinct.tasks.patch import PatchConfig, PatchTask

__all__ = [
    "TASKS",
    "ColorizationConfig",
    "ColorizationTask",
    "IlluminantConfig",
    "IlluminantEmbeddingConfig",
    "IlluminantEmbeddingTask",
    "IlluminantTask",
    "PatchConfig",
    "PatchTask",
    "Task",
]
