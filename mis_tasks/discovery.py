"""Make lmms-eval index mis-eval's tasks with no flag (`lmms-eval --tasks mis_hard`).

lmms-eval 0.7.3 indexes tasks only from its own folder and `--include_path`: it has no task
entry point, and its `LMMS_EVAL_PLUGINS` hook extends the path after the index is built.
The package therefore installs `mis_eval_tasks.pth`, which imports this module at
interpreter start. It imports nothing of lmms-eval's: it only registers a post-import
hook, and when `lmms_eval.tasks` is imported it wraps `TaskManager.initialize_tasks` so our
folder is indexed next to any `--include_path`. Every TaskManager sees the tasks: the eval
command, `python -m lmms_eval`, `lmms-eval tasks list` and `simple_evaluate` alike.

It also wraps `get_task_dict` to say whether the tasks it builds serve a chat model (lmms-eval's
`task_type="chat"`, e.g. its stock `huggingface` and `openai` models): lmms-eval gives those the
message-shaped requests of `ConfigurableMessagesTask`, but builds a task with a Python `class:`
(all of ours) as that class, so our task class makes the chat requests itself (`chat_requests()`).
"""

from __future__ import annotations

import contextvars
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

TARGET = "lmms_eval.tasks"
TASKS_DIR = os.path.dirname(os.path.abspath(__file__))
_MARK = "_mis_eval_tasks"
_CHAT = contextvars.ContextVar("mis_eval_chat_tasks", default=False)


def chat_requests() -> bool:
    """Whether the tasks being built now serve a chat model (lmms-eval's task_type "chat")."""
    return _CHAT.get()


def with_our_tasks(include_path: str | Sequence[str] | None) -> list[str]:
    """`include_path` as lmms-eval takes it, plus our task folder unless already there."""
    paths = (
        []
        if include_path is None
        else [include_path]
        if isinstance(include_path, str)
        else list(include_path)
    )
    ours = os.path.realpath(TASKS_DIR)
    if not any(os.path.realpath(p) == ours for p in paths):
        paths.append(TASKS_DIR)
    return paths


def _patch(module: ModuleType) -> None:
    manager = module.TaskManager
    original: Callable[..., Any] = manager.initialize_tasks
    if getattr(original, _MARK, False):
        return

    def initialize_tasks(self: Any, include_path: Any = None, include_defaults: bool = True) -> Any:
        return original(self, include_path=with_our_tasks(include_path), include_defaults=include_defaults)

    setattr(initialize_tasks, _MARK, True)
    initialize_tasks.__doc__ = original.__doc__
    manager.initialize_tasks = initialize_tasks

    build: Callable[..., Any] = module.get_task_dict

    def get_task_dict(task_name_list: Any, task_manager: Any = None, task_type: str = "simple") -> Any:
        token = _CHAT.set(task_type == "chat")
        try:
            return build(task_name_list, task_manager, task_type)
        finally:
            _CHAT.reset(token)

    get_task_dict.__doc__ = build.__doc__
    setattr(module, "get_task_dict", get_task_dict)  # noqa: B010 - the module is typed ModuleType


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds `lmms_eval.tasks` with the other finders and patches it right after it executes."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            _patch(module)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Idempotent; patches at once when lmms_eval.tasks is already imported."""
    if TARGET in sys.modules:
        _patch(sys.modules[TARGET])
    elif not active():
        sys.meta_path.insert(0, _PostImportFinder())


def active() -> bool:
    """Whether this interpreter will index our tasks (the .pth ran, or install() was called)."""
    module = sys.modules.get(TARGET)
    if module is not None:
        return bool(getattr(module.TaskManager.initialize_tasks, _MARK, False))
    return any(isinstance(f, _PostImportFinder) for f in sys.meta_path)
